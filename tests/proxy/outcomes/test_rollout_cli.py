"""`authswitch rollout status` as a process, reading a real Redis."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from flags import RedisKeys, RedisRolloutStore, RolloutState
from flags.redis.keys import connect
from proxy.outcomes.counts import Observation
from proxy.outcomes.redis_counts import RedisOutcomeStore
from tests.flags.redis_support import (
    RedisTarget,
    shared_redis,  # noqa: F401  (registers the fixture for this module)
)
from tests.proxy.outcomes.outcome_env import write_outcome_files


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "proxy", "rollout", "status", "--config", str(config), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_rollout_status_shows_each_side_and_the_guard(
    tmp_path: Path,
    shared_redis: RedisTarget,  # noqa: F811
) -> None:
    config = write_outcome_files(
        tmp_path,
        "http://legacy.example",
        "http://new.example",
        outcomes={"workos": {"enabled": True, "webhook_secret_file": "webhook-secret"}},
        flags={
            "backend": "redis",
            "redis": {"url": shared_redis.url, "key_prefix": shared_redis.prefix},
        },
    )
    client = connect(shared_redis.url, socket_timeout=2, client_name="test")
    RedisRolloutStore(client, RedisKeys(shared_redis.prefix)).write(
        0, RolloutState(overrides={"contoso": "on"}), actor="sre", reason="canary", action="enable"
    )
    minute = int(time.time() // 60)
    store = RedisOutcomeStore(client, shared_redis.prefix, retention_seconds=600, dedupe_seconds=60)
    store.add(
        [Observation("contoso", "legacy", "proxy", "succeeded", minute - 30)] * 57
        + [Observation("contoso", "legacy", "proxy", "failed", minute - 30)] * 3
        + [Observation("contoso", "new", "events", "succeeded", minute)] * 9
        + [Observation("contoso", "new", "events", "failed", minute)] * 6
        + [Observation("contoso", "new", "proxy", "forwarded", minute)] * 15
    )

    done = _cli(config, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    rows = {row["connection"]: row for row in report["connections"]}
    assert set(rows) == {"northwind", "contoso", "fabrikam"}
    contoso = rows["contoso"]
    assert (contoso["route"], contoso["reason"]) == ("new", "override_on")
    assert contoso["legacy"] == {
        "callbacks_per_minute": 1.0,
        "succeeded": 57,
        "failed": 3,
        "success_rate": 0.95,
    }
    assert contoso["new"]["success_rate"] == 0.6 and contoso["new"]["callbacks_per_minute"] == 0.25
    assert contoso["guard"]["verdict"] == "failing"
    assert 0 <= contoso["seconds_since_routing_change"] < 60
    assert rows["northwind"]["route"] == "legacy" and rows["northwind"]["guard"] is None

    table = _cli(config, "--connection", "contoso")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[1].split()[:3] == ["CONNECTION", "ROUTE", "WHY"]
    assert lines[2].split()[:7] == [
        "contoso",
        "new",
        "override_on",
        "1.00",
        "0.25",
        "95.0%",
        "60.0%",
    ]
    assert "failing" in lines[2]

    unknown = _cli(config, "--connection", "nobody")
    assert unknown.returncode == 2 and "no connection 'nobody'" in unknown.stderr


def test_rollout_status_without_redis_says_why(tmp_path: Path) -> None:
    config = write_outcome_files(tmp_path, "http://l.example", "http://n.example", outcomes={})
    done = _cli(config)
    assert done.returncode == 2
    assert "kept in the proxy's memory" in done.stderr
