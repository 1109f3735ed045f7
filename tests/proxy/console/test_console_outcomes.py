"""Live numbers on the console: callbacks per minute and success per side with the sample
size, the guard's verdict, the chart, and the shadow readiness gate on actions."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flags import FileRolloutStore
from flags.rollout_change import set_canary
from proxy.demo.loopback_server import LoopbackServer
from proxy.outcomes.counts import MemoryOutcomeStore, Observation
from tests.flags.redis_support import (
    RedisTarget,
    shared_redis,  # noqa: F401  (registers the fixture for this module)
)
from tests.proxy.console.console_env import OPERATOR, ConsoleEnv, hidden, running_console
from tests.proxy.console.console_env import trusted_header_console as console_settings
from tests.proxy.console.test_console_actions import as_person


def counts(now: float) -> MemoryOutcomeStore:
    store = MemoryOutcomeStore(retention_minutes=600, max_buckets=1000, max_event_ids=10)
    minute = int(now // 60)
    observations = []
    for back in range(10):  # the last 10 minutes: 9 good and 1 failed legacy logins a minute
        observations += [Observation("acme", "legacy", "proxy", "succeeded", minute - back)] * 9
        observations.append(Observation("acme", "legacy", "proxy", "failed", minute - back))
        observations += [Observation("acme", "new", "proxy", "forwarded", minute - back)] * 3
        observations += [Observation("acme", "new", "proxy", "succeeded", minute - back)] * 3
    store.add(observations)
    return store


@pytest.fixture
def env(tmp_path: Path, providers: dict[str, LoopbackServer]) -> Iterator[ConsoleEnv]:
    # The console's clock stops when the counts are written: the last 10 minutes stay the last
    # 10 minutes whenever the page is read (a minute turning in between dropped the oldest).
    now = time.time()
    with running_console(
        tmp_path,
        providers,
        console_settings(outcome_window_minutes=10),
        outcomes=counts(now),
        clock=lambda: now,
    ) as running:
        store = FileRolloutStore(tmp_path / "flags.yaml")
        store.write(0, set_canary("acme", True)(store.read()), actor="t", reason="r", action="a")
        yield running


def test_the_table_shows_rates_with_sample_sizes_and_says_no_data_where_there_is_none(
    env: ConsoleEnv,
) -> None:
    page = as_person(env, OPERATOR).get("/console/connections").text
    acme = re.search(r'<tr data-route="new"><th scope="row"><a [^>]+>acme</a>.*?</tr>', page)
    assert acme, page[:2000]
    row = acme.group(0)
    assert "10.0/min" in row  # legacy: 100 judged callbacks over 10 minutes
    assert "90.0%" in row and "(n=100)" in row
    assert "3.0/min" in row and "100.0%" in row and "(n=30)" in row
    globex = re.search(r"<a [^>]+>globex</a>.*?</tr>", page)
    assert globex and "no data" in globex.group(0) and "0.0/min" in globex.group(0)

    api = as_person(env, OPERATOR).get("/console/api/connections?q=acme").json()
    (row_json,) = api["connections"]
    assert row_json["legacy"]["success_rate"] == 0.9 and row_json["new"]["succeeded"] == 30
    assert row_json["guard"] is not None  # on the new side: the guard judges it


def test_the_detail_page_charts_callbacks_and_success_per_side(env: ConsoleEnv) -> None:
    page = as_person(env, OPERATOR).get("/console/connections/acme").text
    charts = re.findall(r"<svg role=\"img\".*?</svg>", page, re.S)
    assert len(charts) == 2
    assert "Callbacks per minute over 10 minutes (totals: legacy: 100; new: 30)" in page
    assert charts[0].count("<polyline") == 2 and "dashed" in charts[0]
    assert "Identified as acme" in page
    quiet = as_person(env, OPERATOR).get("/console/connections/globex").text
    assert "no data to chart" in quiet


def test_the_readiness_gate_refuses_unless_forced_and_the_audit_says_so(
    tmp_path: Path,
    providers: dict[str, LoopbackServer],
    shared_redis: RedisTarget,  # noqa: F811
) -> None:
    shadow = {
        "gate": True,
        "min_samples": 5,
        "redis": {"url": shared_redis.url, "key_prefix": shared_redis.prefix},
    }
    with running_console(tmp_path, providers, console_settings(), shadow=shadow) as env:
        operator = as_person(env, OPERATOR)
        page = operator.get("/console/actions/preview?action=enable&connection=globex").text
        assert "Not ready (shadow readiness): globex: 0 checked samples" in page
        fields = {
            "csrf_token": hidden(page, "csrf_token"),
            "action": "enable",
            "connection": "globex",
            "token": hidden(page, "token"),
            "reason": "customer asked",
            "confirm": "yes",
        }
        refused = operator.post("/console/actions/apply", data=fields)
        assert refused.status_code == 409 and "not ready to move" in refused.text
        store = FileRolloutStore(env.dir / "flags.yaml")
        assert store.read().overrides == {}
        forced = operator.post("/console/actions/apply", data={**fields, "force": "yes"})
        assert forced.status_code == 200
        record = store.history(1)[0]
        assert record.reason.startswith("customer asked [forced past the readiness gate - globex")
        assert "0 checked samples" in operator.get("/console/connections").text
