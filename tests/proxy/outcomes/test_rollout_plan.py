"""`authswitch rollout plan` (gated promotion) and `rollout evidence`, as processes, real Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from connection_map import read_connection_map_document
from connection_map.redis_store import MapKeys, RedisMapStore
from flags import RedisKeys, RedisRolloutStore, RolloutState
from flags.redis.keys import connect
from proxy.config import load_config
from proxy.outcomes.counts import Observation
from proxy.outcomes.redis_counts import RedisOutcomeStore
from proxy.shadow.readiness_store import import_digest
from proxy.shadow.saml_check import Verdict
from proxy.shadow.service import readiness_store_for
from tests.flags.redis_support import (
    RedisTarget,
    shared_redis,  # noqa: F401  (registers the fixture for this module)
)
from tests.proxy.outcomes.outcome_env import write_outcome_files


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "proxy", "rollout", *args, "--config", str(config)]
    env = {**os.environ, "AUTHSWITCH_ACTOR": "sre-on-call"}
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)


@pytest.fixture
def rollout(
    tmp_path: Path,
    shared_redis: RedisTarget,  # noqa: F811
) -> tuple[Path, RedisRolloutStore, RedisOutcomeStore]:
    config = write_outcome_files(
        tmp_path,
        "http://legacy.example",
        "http://new.example",
        outcomes={
            "workos": {"enabled": True, "webhook_secret_file": "webhook-secret"},
            "promotion": {"steps": [5, 25, 100], "soak_minutes": 0},
        },
        flags={
            "backend": "redis",
            "redis": {"url": shared_redis.url, "key_prefix": shared_redis.prefix},
        },
    )
    client = connect(shared_redis.url, socket_timeout=2, client_name="test")
    store = RedisRolloutStore(client, RedisKeys(shared_redis.prefix))
    store.write(
        0, RolloutState(overrides={"contoso": "on"}), actor="sre", reason="first", action="enable"
    )
    outcomes = RedisOutcomeStore(
        client, shared_redis.prefix, retention_seconds=3600, dedupe_seconds=60
    )
    return config, store, outcomes


def _succeed(outcomes: RedisOutcomeStore, connection: str, number: int) -> None:
    minute = int(time.time() // 60)
    outcomes.add([Observation(connection, "new", "events", "succeeded", minute)] * number)


def test_plan_pauses_on_an_unproven_connection_then_promotes(
    rollout: tuple[Path, RedisRolloutStore, RedisOutcomeStore],
) -> None:
    config, store, outcomes = rollout
    _succeed(outcomes, "contoso", 5)

    paused = _cli(config, "plan", "--preview")
    assert paused.returncode == 5, paused.stderr
    assert "contoso is unproven: unproven: new side 0 failed of 5" in paused.stdout
    paused_token = json.loads(_cli(config, "plan", "--preview", "--json").stdout)["plan"]["token"]
    refused = _cli(config, "plan", "--apply", paused_token, "--reason", "go")
    assert refused.returncode == 5 and "the rollout pauses" in refused.stderr
    assert store.read().stage_percent == 0

    _succeed(outcomes, "contoso", 60)  # enough evidence that it fails no more than legacy
    preview = _cli(config, "plan", "--preview", "--json")
    assert preview.returncode == 0, preview.stderr
    document = json.loads(preview.stdout)
    assert document["ready"] and document["next_percent"] == 5
    assert document["verdicts"] == {"contoso": "healthy"}
    token = document["plan"]["token"]

    applied = _cli(config, "plan", "--apply", token, "--reason", "contoso healthy for a day")
    assert applied.returncode == 0, applied.stderr
    assert store.read().stage_percent == 5
    record = store.history(1)[0]
    assert (record.actor, record.action, record.after) == (
        "sre-on-call",
        "stage",
        {"stage_percent": 5.0},
    )
    # The same token again: the state moved on since its preview.
    again = _cli(config, "plan", "--apply", token, "--reason", "twice")
    assert again.returncode == 4 and "preview again" in again.stderr


def test_plan_waits_for_the_soak_time_and_after_a_guard_kill(
    rollout: tuple[Path, RedisRolloutStore, RedisOutcomeStore],
) -> None:
    config, store, outcomes = rollout
    text = config.read_text().replace("soak_minutes: 0", "soak_minutes: 60")
    config.write_text(text)
    state = store.read()
    store.write(
        state.version,
        RolloutState.model_validate({**state.model_dump(), "stage_percent": 5}),
        actor="sre",
        reason="5 %",
        action="stage",
    )
    _succeed(outcomes, "contoso", 60)
    state = store.read()
    store.write(
        state.version,
        RolloutState.model_validate({**state.model_dump(), "overrides": {"fabrikam": "off"}}),
        actor="guard",
        reason="rollout guard: failing",
        action="disable",
    )
    paused = _cli(config, "plan", "--preview")
    assert paused.returncode == 5
    assert "stage 5 % has soaked 0 of 60 minutes" in paused.stdout
    assert "the guard turned contoso, fabrikam off" in paused.stdout


def test_evidence_shows_history_counts_and_the_guard(
    rollout: tuple[Path, RedisRolloutStore, RedisOutcomeStore],
) -> None:
    config, _, outcomes = rollout
    _succeed(outcomes, "contoso", 7)
    done = _cli(config, "evidence", "contoso", "--json", "--days", "3")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["facts"]["new_provider"] == {
        "mode": "redirect",
        "connection_id": "conn_01CONTOSO",
    }
    assert [r["actor"] for r in document["flag_history"]] == ["sre"]
    assert document["guard_now"]["new"] == {"succeeded": 7, "failed": 0}
    days = document["outcomes_per_day"]
    assert len(days) == 3 and days[-1]["phase"] == "change"
    assert days[-1]["counts"]["new"] == {"events": {"succeeded": 7}}

    text = _cli(config, "evidence", "contoso")
    assert text.returncode == 0 and "new events 7/0/0" in text.stdout
    assert _cli(config, "evidence", "nobody").returncode == 2


def test_plan_pauses_for_connections_the_readiness_gate_refuses(
    rollout: tuple[Path, RedisRolloutStore, RedisOutcomeStore],
    shared_redis: RedisTarget,  # noqa: F811
) -> None:
    config, store, outcomes = rollout
    settings = yaml.safe_load(config.read_text())
    settings["outcomes"]["promotion"]["steps"] = [100]
    settings["shadow"] = {
        "gate": True,
        "min_samples": 3,
        "redis": {"url": shared_redis.url, "key_prefix": shared_redis.prefix},
    }
    config.write_text(yaml.safe_dump(settings))
    _succeed(outcomes, "contoso", 60)  # the moved connection is healthy

    paused = _cli(config, "plan", "--preview", "--json")
    assert paused.returncode == 5, paused.stderr
    reasons = json.loads(paused.stdout)["paused"]
    # 100 % would move northwind and fabrikam, which have no shadow samples yet.
    assert sorted(reasons) == [
        f"{cid} is not ready (shadow readiness): 0 checked samples of its current import, 3 needed"
        for cid in ("fabrikam", "northwind")
    ]
    token = json.loads(paused.stdout)["plan"]["token"]
    refused = _cli(config, "plan", "--apply", token, "--reason", "go")
    assert refused.returncode == 5 and "not ready (shadow readiness)" in refused.stderr
    assert store.read().stage_percent == 0

    loaded = load_config(config)
    readiness = readiness_store_for(loaded.shadow)
    for connection in read_connection_map_document(loaded.connection_map).connections:
        digest = import_digest(connection, loaded.shadow.for_connection(connection.id))
        for _ in range(3):
            readiness.record(connection.id, digest, Verdict(accepted=True), time.time())
    ready = _cli(config, "plan", "--preview", "--json")
    assert ready.returncode == 0, ready.stderr
    token = json.loads(ready.stdout)["plan"]["token"]
    applied = _cli(config, "plan", "--apply", token, "--reason", "all ready")
    assert applied.returncode == 0, applied.stderr
    assert store.read().stage_percent == 100


def test_rollout_reads_the_map_the_proxy_serves_from_redis(
    rollout: tuple[Path, RedisRolloutStore, RedisOutcomeStore],
    shared_redis: RedisTarget,  # noqa: F811
) -> None:
    config, _store, _outcomes = rollout
    settings = yaml.safe_load(config.read_text())
    settings["connection_map_redis"] = {"url": shared_redis.url, "key_prefix": shared_redis.prefix}
    config.write_text(yaml.safe_dump(settings))
    nothing_pushed = _cli(config, "status", "--json")
    assert nothing_pushed.returncode == 2
    assert "no connection map in redis" in nothing_pushed.stderr

    # Replicas serve what was pushed (contoso alone), not the file beside the config.
    document = read_connection_map_document(load_config(config).connection_map)
    pushed = document.model_copy(
        update={"connections": tuple(c for c in document.connections if c.id == "contoso")}
    )
    client = connect(shared_redis.url, socket_timeout=2, client_name="test")
    RedisMapStore(client, MapKeys(shared_redis.prefix)).push(
        pushed, expected_version=None, actor="sre", reason="contoso only"
    )
    status = _cli(config, "status", "--json")
    assert status.returncode == 0, status.stderr
    assert [row["connection"] for row in json.loads(status.stdout)["connections"]] == ["contoso"]
