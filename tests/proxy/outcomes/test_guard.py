"""The guard's rounds with an injected clock: real flag stores, real Redis where it matters."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connection_map import ConnectionMap, ForwardMode, Protocol, ServedConnection, ServedTarget
from flags import FileRolloutStore, RedisKeys, RedisRolloutStore, RolloutState, RolloutStore
from flags.redis.keys import connect
from flags.rollout_store import write_with_cas
from proxy.ops import metrics
from proxy.outcomes.counts import MemoryOutcomeStore, Observation, OutcomeStore, Side, Source
from proxy.outcomes.guard import RolloutGuard
from proxy.outcomes.lease import ProcessLease, RedisLease
from proxy.outcomes.redis_counts import RedisOutcomeStore
from proxy.outcomes.settings import OutcomesSettings
from tests.flags.redis_support import (
    PrivateRedis,
    RedisTarget,
    private_redis,  # noqa: F401  (registers the fixtures for this module)
    shared_redis,  # noqa: F401
)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).timestamp()

    def __call__(self) -> float:
        return self.now


def _map(*ids: str) -> ConnectionMap:
    records = [
        ServedConnection(
            cid,
            Protocol.OIDC,
            new_provider=ServedTarget(
                f"https://new.example/{cid}", ForwardMode.REDIRECT, f"c_{cid}"
            ),
        )
        for cid in ids
    ]
    return ConnectionMap.from_records(1, records)


CONNECTIONS = _map("acme", "globex")


def _settings(mode: str, **guard: object) -> OutcomesSettings:
    return OutcomesSettings.model_validate(
        {
            "enabled": True,
            "workos": {"enabled": True, "webhook_secret_file": "x"},
            "guard": {"mode": mode, **guard},
        }
    )


def _add(
    store: OutcomeStore,
    clock: Clock,
    connection: str,
    side: Side,
    source: Source,
    outcome: str,
    number: int,
    *,
    minutes_ago: float = 0,
) -> None:
    minute = int((clock.now - minutes_ago * 60) // 60)
    store.add([Observation(connection, side, source, outcome, minute) for _ in range(number)])  # type: ignore[arg-type]


def _enabled(tmp_path: Path) -> FileRolloutStore:
    store = FileRolloutStore(tmp_path / "flags.yaml")
    store.write(
        0,
        RolloutState(overrides={"acme": "on", "globex": "on"}),
        actor="sre",
        reason="canary",
        action="enable",
    )
    return store


def _guard(
    settings: OutcomesSettings,
    outcomes: OutcomeStore,
    rollout: RolloutStore,
    clock: Clock,
    **extra: object,
) -> RolloutGuard:
    return RolloutGuard(
        settings,
        outcomes,
        rollout,
        lambda: CONNECTIONS,
        ProcessLease(),
        clock=clock,
        **extra,  # type: ignore[arg-type]
    )


def _memory() -> MemoryOutcomeStore:
    return MemoryOutcomeStore(retention_minutes=14 * 1440, max_buckets=1000, max_event_ids=1000)


def test_enforce_turns_off_only_the_failing_connection_and_says_why(tmp_path: Path) -> None:
    clock, outcomes, rollout = Clock(), _memory(), _enabled(tmp_path)
    _add(outcomes, clock, "acme", "legacy", "proxy", "succeeded", 980, minutes_ago=60 * 24)
    _add(outcomes, clock, "acme", "legacy", "proxy", "failed", 20, minutes_ago=60 * 24)
    _add(outcomes, clock, "acme", "new", "events", "failed", 4)
    _add(outcomes, clock, "globex", "new", "events", "succeeded", 40)
    guard = _guard(_settings("enforce"), outcomes, rollout, clock)

    verdicts = {d.connection: d.judgement.verdict for d in guard.round()}

    assert verdicts == {"acme": "failing", "globex": "healthy"}
    assert rollout.read().overrides == {"acme": "off", "globex": "on"}
    record = rollout.history(1)[0]
    assert record.actor == "guard"
    assert "legacy baseline 20 failed of 1000" in record.reason
    assert "new side 4 failed of 4" in record.reason
    # Off stays off, and a second round changes nothing more.
    assert guard.round() == [d for d in guard.round() if d.connection == "globex"]
    assert len(rollout.history(10)) == 2


def test_observe_mode_changes_nothing(tmp_path: Path) -> None:
    clock, outcomes, rollout = Clock(), _memory(), _enabled(tmp_path)
    _add(outcomes, clock, "acme", "new", "events", "failed", 10)
    before = metrics.GUARD_KILLS.labels("acme", "observe")._value.get()
    guard = _guard(_settings("observe"), outcomes, rollout, clock)

    decisions = guard.round()

    verdicts = {d.connection: (d.judgement.verdict, d.acted) for d in decisions}
    assert verdicts["acme"] == ("failing", False)
    assert rollout.read().version == 1 and rollout.read().overrides["acme"] == "on"
    assert len(rollout.history(10)) == 1
    assert metrics.GUARD_KILLS.labels("acme", "observe")._value.get() == before + 1
    assert metrics.GUARD_CONCLUSIVE.labels("acme", "observe")._value.get() == 1
    guard.round()  # still failing: reported once, the gauge stays up
    assert metrics.GUARD_KILLS.labels("acme", "observe")._value.get() == before + 1
    assert metrics.GUARD_CONCLUSIVE.labels("acme", "observe")._value.get() == 1
    assert rollout.read().version == 1


def test_enforce_with_outcomes_unavailable_changes_nothing(
    tmp_path: Path,
    private_redis: PrivateRedis,  # noqa: F811
) -> None:
    clock, rollout = Clock(), _enabled(tmp_path)
    client = connect(private_redis.url, socket_timeout=0.5, client_name="test")
    outcomes = RedisOutcomeStore(client, "t", retention_seconds=3600, dedupe_seconds=3600)
    _add(outcomes, clock, "acme", "new", "events", "failed", 10)
    guard = _guard(_settings("enforce"), outcomes, rollout, clock)
    private_redis.stop()
    skipped = metrics.GUARD_SKIPPED.labels("outcomes_unreadable")._value.get()

    assert guard.round() == []

    assert rollout.read().overrides == {"acme": "on", "globex": "on"}
    assert metrics.GUARD_SKIPPED.labels("outcomes_unreadable")._value.get() == skipped + 1


def test_a_reenabled_connection_is_judged_on_evidence_after_its_flip(tmp_path: Path) -> None:
    clock, outcomes, rollout = Clock(), _memory(), _enabled(tmp_path)
    _add(outcomes, clock, "acme", "new", "events", "failed", 10)
    guard = _guard(_settings("enforce"), outcomes, rollout, clock)
    guard.round()
    assert rollout.read().overrides["acme"] == "off"

    # Ten minutes later the SRE has fixed the provider and turns acme back on. (The audit
    # record's time is set to the injected clock's: the flag store stamps wall time.)
    clock.now += 600
    state = rollout.read()
    write_with_cas(
        rollout._transaction(),
        state.version,
        RolloutState.model_validate(
            {**state.model_dump(), "overrides": {"acme": "on", "globex": "on"}}
        ),
        actor="sre",
        reason="fixed",
        action="enable",
        now=datetime.fromtimestamp(clock.now, UTC),
    )
    decisions = {d.connection: d for d in guard.round()}
    assert decisions["acme"].judgement.verdict == "unproven"
    assert rollout.read().overrides["acme"] == "on"


def test_silence_with_a_live_source_is_a_kill(tmp_path: Path) -> None:
    clock, outcomes, rollout = Clock(), _memory(), _enabled(tmp_path)
    clock.now += 3600  # the flip was an hour ago
    _add(outcomes, clock, "acme", "new", "proxy", "forwarded", 12, minutes_ago=10)
    _add(outcomes, clock, "globex", "new", "proxy", "forwarded", 12, minutes_ago=10)
    _add(outcomes, clock, "globex", "new", "events", "succeeded", 1, minutes_ago=8)
    settings = _settings("enforce", act_on_proxy_counts=True)
    guard = _guard(settings, outcomes, rollout, clock, silence_sources=["workos"])

    # The event source itself is silent: nothing is concluded.
    assert {d.judgement.verdict for d in guard.round()} == {"unproven"}
    assert rollout.read().overrides["acme"] == "on"

    outcomes.mark_source_alive("workos", clock.now - 30)
    verdicts = {d.connection: d.judgement.verdict for d in guard.round()}
    assert verdicts == {"acme": "silent", "globex": "unproven"}
    assert rollout.read().overrides == {"acme": "off", "globex": "on"}


@pytest.fixture
def redis_rollout(shared_redis: RedisTarget) -> Iterator[tuple[RedisRolloutStore, RedisTarget]]:  # noqa: F811
    client = connect(shared_redis.url, socket_timeout=2, client_name="test")
    store = RedisRolloutStore(client, RedisKeys(shared_redis.prefix))
    store.write(
        0, RolloutState(overrides={"acme": "on"}), actor="sre", reason="canary", action="enable"
    )
    yield store, shared_redis
    client.close()


def test_one_guard_acts_at_a_time(redis_rollout: tuple[RedisRolloutStore, RedisTarget]) -> None:
    rollout, target = redis_rollout
    clock, outcomes = Clock(), _memory()
    _add(outcomes, clock, "acme", "new", "events", "succeeded", 50)
    client = target.client()
    key = f"{target.prefix}:outcomes:lease:guard"
    guards = [
        RolloutGuard(
            _settings("observe"),
            outcomes,
            rollout,
            lambda: CONNECTIONS,
            RedisLease(client, key, seconds=5),
            clock=clock,
        )
        for _ in range(2)
    ]
    first, second = (guard.round() for guard in guards)
    assert len(first) == 1 and second == []
    guards[0]._lease.release()  # the holder stops (or dies and the lease expires)
    assert len(guards[1].round()) == 1
    assert guards[0].round() == []


def test_only_changes_that_can_move_a_connection_restart_its_evidence() -> None:
    from flags import AuditRecord
    from flags.bucketing import bucket
    from proxy.outcomes.guard import routing_changed

    state = RolloutState(stage_percent=100, overrides={"pinned": "on"})
    low = next(f"c{n}" for n in range(1000) if bucket(state.salt, f"c{n}") < 500)
    high = next(f"c{n}" for n in range(1000) if bucket(state.salt, f"c{n}") >= 2500)

    def record(before: dict[str, object], after: dict[str, object]) -> AuditRecord:
        return AuditRecord(
            version=2, time="2026-01-01T00:00:00.000Z", actor="sre", action="stage",
            reason="r", before=before, after=after,
        )  # fmt: skip

    to_five = record({"stage_percent": 0.0}, {"stage_percent": 5.0})
    assert routing_changed(to_five, low, state)  # moved in at 5 %
    assert not routing_changed(to_five, high, state)  # stays out
    assert not routing_changed(to_five, "pinned", state)  # its override decides
    assert routing_changed(
        record({"overrides": {"pinned": None}}, {"overrides": {"pinned": "on"}}), "pinned", state
    )
    assert routing_changed(record({"kill_all": False}, {"kill_all": True}), high, state)
    assert not routing_changed(record({"canary": []}, {"canary": [low]}), high, state)


def test_forgeable_counts_are_reported_but_never_acted_on_by_default(tmp_path: Path) -> None:
    """Anyone can send callbacks: forwarded counts (silence) and the answers the proxy saw
    (a new provider refusing forged responses) must not let a stranger turn a connection off."""
    clock, outcomes, rollout = Clock(), _memory(), _enabled(tmp_path)
    clock.now += 3600
    _add(outcomes, clock, "acme", "new", "proxy", "forwarded", 50, minutes_ago=10)
    outcomes.mark_source_alive("workos", clock.now - 30)
    silence = _guard(_settings("enforce"), outcomes, rollout, clock, silence_sources=["workos"])
    assert {d.connection: d.judgement.verdict for d in silence.round()}["acme"] == "silent"
    assert rollout.read().overrides["acme"] == "on"

    (tmp_path / "proxy-answers").mkdir()
    clock2, outcomes2, rollout2 = Clock(), _memory(), _enabled(tmp_path / "proxy-answers")
    _add(outcomes2, clock2, "acme", "new", "proxy", "failed", 40)
    by_answers = _guard(_settings("enforce", new_side_source="proxy"), outcomes2, rollout2, clock2)
    assert {d.connection: d.judgement.verdict for d in by_answers.round()}["acme"] == "failing"
    assert rollout2.read().overrides["acme"] == "on"


def test_no_verdict_on_fewer_new_side_logins_than_min_new_samples(tmp_path: Path) -> None:
    """Five failures in five would convict by the test alone; ten are required, so no kill."""
    clock, outcomes, rollout = Clock(), _memory(), _enabled(tmp_path)
    _add(outcomes, clock, "acme", "legacy", "proxy", "succeeded", 990, minutes_ago=60 * 24)
    _add(outcomes, clock, "acme", "legacy", "proxy", "failed", 10, minutes_ago=60 * 24)
    _add(outcomes, clock, "acme", "new", "events", "failed", 5)
    guard = _guard(_settings("enforce", min_new_samples=10), outcomes, rollout, clock)

    verdicts = {d.connection: d.judgement.verdict for d in guard.round()}

    assert verdicts["acme"] == "unproven"
    assert rollout.read().overrides.get("acme") == "on"
    _add(outcomes, clock, "acme", "new", "events", "failed", 5)  # ten now: convicted
    assert {d.connection: d.judgement.verdict for d in guard.round()}["acme"] == "failing"
    assert rollout.read().overrides["acme"] == "off"
