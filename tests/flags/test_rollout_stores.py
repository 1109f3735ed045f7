"""The RolloutStore contract, on the file backend and on a real Redis alike.

Compare-and-set on the version, an audit record per change, and no lost update when writers race.
"""

from __future__ import annotations

import fcntl
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from flags import (
    AuditInputError,
    FileRolloutStore,
    RedisKeys,
    RedisRolloutStore,
    RolloutState,
    RolloutStore,
    StoredStateInvalid,
    StoreUnavailable,
    VersionConflict,
    load_rollout_state,
)
from flags.redis.keys import connect
from tests.flags.redis_support import PrivateRedis, RedisTarget, free_port


def _redis_store(target: RedisTarget) -> RedisRolloutStore:
    client = connect(target.url, socket_timeout=2, client_name="authswitch-test")
    return RedisRolloutStore(client, RedisKeys(target.prefix), url=target.url)


StoreFactory = Callable[[], RolloutStore]


@pytest.fixture(params=["file", "redis"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """A factory of stores on one shared state (each call is a separate writer)."""
    if request.param == "file":
        return lambda: FileRolloutStore(tmp_path / "flags.yaml")
    target: RedisTarget = request.getfixturevalue("shared_redis")
    return lambda: _redis_store(target)


def test_a_fresh_store_reads_the_default_state_and_has_no_history(
    make_store: StoreFactory,
) -> None:
    store = make_store()

    assert store.read() == RolloutState()
    assert store.history(10) == []


def test_write_stores_the_next_version_with_an_audit_record(
    make_store: StoreFactory,
) -> None:
    store = make_store()
    first = store.write(
        0, RolloutState(canary=("acme",)), actor="alice", reason="OPS-1", action="canary_add"
    )
    second = store.write(
        1,
        RolloutState(canary=("acme",), overrides={"globex": "off"}, stage_percent=5),
        actor="bob",
        reason="OPS-2 first 5 %",
        action="stage",
    )

    state = store.read()
    assert (state.version, state.stage_percent, state.overrides) == (2, 5.0, {"globex": "off"})
    assert (first.version, second.version) == (1, 2)
    assert second.before == {"stage_percent": 0.0, "overrides": {"globex": None}}
    assert second.after == {"stage_percent": 5.0, "overrides": {"globex": "off"}}
    assert second.time.endswith("Z")
    history = store.history(10)
    assert [r.version for r in history] == [2, 1]
    assert history[0] == second
    assert [(r.actor, r.reason, r.action) for r in history] == [
        ("bob", "OPS-2 first 5 %", "stage"),
        ("alice", "OPS-1", "canary_add"),
    ]
    assert [r.version for r in store.history(1)] == [2]


def test_a_write_based_on_an_old_version_is_refused_and_changes_nothing(
    make_store: StoreFactory,
) -> None:
    store = make_store()
    store.write(0, RolloutState(stage_percent=5), actor="alice", reason="r", action="stage")

    with pytest.raises(VersionConflict) as raised:
        store.write(0, RolloutState(kill_all=True), actor="bob", reason="r", action="kill_all")

    assert (raised.value.expected, raised.value.actual) == (0, 1)
    assert store.read().kill_all is False
    assert len(store.history(10)) == 1


@pytest.mark.parametrize(
    ("actor", "reason", "problem"),
    [
        ("", "why", "actor must not be empty"),
        ("alice", "   ", "reason must not be empty"),
        ("alice", "line one\nline two", "reason must not contain control characters"),
        ("al\x1b[31mice", "why", "actor must not contain control characters"),
        ("alice", "x" * 501, "reason must be at most 500 characters"),
    ],
)
def test_a_write_without_a_usable_actor_or_reason_is_refused(
    make_store: StoreFactory, actor: str, reason: str, problem: str
) -> None:
    store = make_store()

    with pytest.raises(AuditInputError, match=problem):
        store.write(0, RolloutState(kill_all=True), actor=actor, reason=reason, action="kill_all")

    assert store.read() == RolloutState()


def test_concurrent_writers_never_lose_an_update(make_store: StoreFactory) -> None:
    """Eight writers, each adding its own canaries with read -> CAS -> retry: all land."""
    writers, per_writer = 8, 5
    errors: list[BaseException] = []
    conflicts = [0]

    def writer(number: int) -> None:
        store = make_store()  # its own client / its own lock file descriptor
        try:
            for item in range(per_writer):
                while True:
                    state = store.read()
                    wanted = RolloutState.model_validate(
                        {**state.model_dump(), "canary": [*state.canary, f"w{number}-{item}"]}
                    )
                    try:
                        store.write(
                            state.version, wanted, actor=f"w{number}", reason="race", action="x"
                        )
                        break
                    except VersionConflict:
                        conflicts[0] += 1
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert not errors, errors
    store = make_store()
    final = store.read()
    expected = {f"w{n}-{i}" for n in range(writers) for i in range(per_writer)}
    assert set(final.canary) == expected
    assert len(final.canary) == writers * per_writer
    assert final.version == writers * per_writer
    history = store.history(1000)
    assert sorted(r.version for r in history) == list(range(1, writers * per_writer + 1))
    # Each record's "after" adds exactly one canary to its "before": nothing was overwritten.
    for record in history:
        added = set(record.after["canary"]) - set(record.before["canary"])
        assert len(added) == 1 and set(record.before["canary"]) <= set(record.after["canary"])
    assert conflicts[0] > 0, "the writers never actually raced"


def test_file_backend_writes_the_watched_file_and_a_jsonl_audit_trail(tmp_path: Path) -> None:
    store = FileRolloutStore(tmp_path / "flags.yaml")
    store.write(0, RolloutState(overrides={"acme": "on"}), actor="alice", reason="r", action="a")

    assert load_rollout_state(tmp_path / "flags.yaml").overrides == {"acme": "on"}
    lines = (tmp_path / "flags.audit.jsonl").read_text().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert set(record) == {"version", "time", "actor", "action", "reason", "before", "after"}
    assert record["after"] == {"overrides": {"acme": "on"}}


def test_file_backend_refuses_a_broken_file_and_a_broken_audit_line(tmp_path: Path) -> None:
    (tmp_path / "flags.yaml").write_text("stage_percent: 250\n")
    store = FileRolloutStore(tmp_path / "flags.yaml")
    with pytest.raises(StoredStateInvalid, match="stage_percent"):
        store.read()

    (tmp_path / "flags.audit.jsonl").write_text('{"not": "a record"}\n')
    with pytest.raises(StoredStateInvalid, match="line 1 is not an audit record"):
        store.history(5)


def test_file_backend_gives_up_on_a_lock_held_too_long(tmp_path: Path) -> None:
    store = FileRolloutStore(tmp_path / "flags.yaml", lock_timeout_seconds=0.2)
    with open(store.lock_path, "w") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        with pytest.raises(StoreUnavailable, match="another writer has held it"):
            store.write(0, RolloutState(kill_all=True), actor="a", reason="r", action="kill_all")
    assert store.read() == RolloutState()


def test_redis_backend_key_layout_and_change_message(shared_redis: RedisTarget) -> None:
    client = shared_redis.client()
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(f"{shared_redis.prefix}:flags:changed")
    pubsub.get_message(timeout=1)
    store = _redis_store(shared_redis)

    store.write(0, RolloutState(stage_percent=25), actor="alice", reason="r", action="stage")

    prefix = shared_redis.prefix
    assert int(client.get(f"{prefix}:flags:version") or 0) == 1
    assert json.loads(client.get(f"{prefix}:flags:doc") or b"")["stage_percent"] == 25.0
    entries = client.xrange(f"{prefix}:flags:audit")
    assert len(entries) == 1
    fields = {k.decode(): v.decode() for k, v in entries[0][1].items()}
    assert (fields["version"], fields["actor"], fields["action"]) == ("1", "alice", "stage")
    assert json.loads(fields["after"]) == {"stage_percent": 25.0}
    message = pubsub.get_message(timeout=2)
    assert message is not None and message["data"] == b"1"
    pubsub.close()


def test_redis_backend_refuses_an_invalid_document(shared_redis: RedisTarget) -> None:
    shared_redis.client().set(f"{shared_redis.prefix}:flags:doc", b'{"stage_percent": "lots"}')

    with pytest.raises(StoredStateInvalid, match="stage_percent"):
        _redis_store(shared_redis).read()


def test_redis_unreachable_is_reported_fast_and_without_the_password() -> None:
    url = f"redis://:hunter2-SEEKRIT@127.0.0.1:{free_port()}/0"
    store = RedisRolloutStore(
        connect(url, socket_timeout=0.5, client_name="t"), RedisKeys("x"), url=url
    )

    for call in (
        store.read,
        lambda: store.history(1),
        lambda: store.write(0, RolloutState(), actor="a", reason="r", action="x"),
    ):
        with pytest.raises(StoreUnavailable) as raised:
            call()
        assert "hunter2" not in str(raised.value)
        assert "127.0.0.1" in str(raised.value)
    assert "hunter2" not in store.description


def test_redis_client_does_not_retry_a_timed_out_command(private_redis: PrivateRedis) -> None:
    """redis-py retries 3 times by default; a frozen Redis must cost one timeout, not four."""
    client = connect(private_redis.url, socket_timeout=0.3, client_name="t")
    client.ping()
    private_redis.freeze()
    try:
        started = time.monotonic()
        with pytest.raises(redis.TimeoutError):
            client.get("anything")
        assert time.monotonic() - started < 0.9
    finally:
        private_redis.thaw()
