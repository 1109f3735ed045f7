"""The connection map in Redis: the stored doc, compare-and-set pushes, a replica following it."""

from __future__ import annotations

import gc
import json
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from connection_map import (
    ConnectionMap,
    ConnectionMapDocument,
    ConnectionMapError,
    load_connection_map,
    read_connection_map_document,
)
from connection_map.redis_follower import RedisConnectionMap
from connection_map.redis_store import (
    MapKeys,
    PushRefused,
    RedisMapStore,
    parse_map_doc,
    parse_served_doc,
    render_map_doc,
)
from tests.flags.redis_support import (
    PrivateRedis,
    RedisTarget,
    private_redis,  # noqa: F401  (registers the fixtures for this module)
    shared_redis,  # noqa: F401
    wait_until,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "connections.yaml"


def _document(version: int) -> ConnectionMapDocument:
    return read_connection_map_document(EXAMPLE).model_copy(update={"version": version})


@pytest.fixture
def store(shared_redis: RedisTarget) -> Iterator[RedisMapStore]:  # noqa: F811
    client = shared_redis.client()
    yield RedisMapStore(client, MapKeys(shared_redis.prefix), where="redis test")
    client.close()


def _follower(client: redis.Redis, prefix: str) -> RedisConnectionMap:
    return RedisConnectionMap(client, MapKeys(prefix), where="redis test", resync_seconds=0.2)


def test_the_stored_doc_is_compressed_json_that_reads_back_as_the_same_map() -> None:
    document = _document(4)
    data = render_map_doc(document)
    assert json.loads(zlib.decompress(data))["version"] == 4
    assert parse_map_doc(data, "here") == document


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"plain text", "here: not a zlib-compressed JSON document"),
        (zlib.compress(b"version: 1\n"), "here: not a JSON document"),
        (zlib.compress(b"[1, 2]"), "here: top level must be an object"),
        (
            zlib.compress(b'{"version": 1, "connections": [{"id": "a b", "protocol": "saml"}]}'),
            "here: key 'connections[0] (id 'a b').id': Value error, must be 1-256 characters",
        ),
        (zlib.compress(b'{"version": 1}')[:-3], "here: truncated"),
    ],
)
def test_a_doc_that_is_not_a_valid_map_is_refused_with_what_and_where(
    data: bytes, problem: str
) -> None:
    with pytest.raises(ConnectionMapError) as caught:
        parse_map_doc(data, "here")
    assert str(caught.value).startswith(problem)


def test_a_push_is_compare_and_set_on_the_live_version_and_audited(
    store: RedisMapStore,
) -> None:
    first = store.push(_document(1), expected_version=None, actor="ana", reason="OPS-1 first")
    with pytest.raises(PushRefused, match="version 1 is live, not None"):
        store.push(_document(2), expected_version=None, actor="bo", reason="raced")
    with pytest.raises(PushRefused, match="not newer than the live version 1"):
        store.push(_document(1), expected_version=1, actor="bo", reason="same again")
    second = store.push(_document(2), expected_version=1, actor="bo", reason="OPS-2")

    assert (first.previous_version, first.version, second.previous_version) == (None, 1, 1)
    assert store.version() == 2 and store.read() == _document(2)
    client = store._client
    audit = [fields for _, fields in client.xrange(store.keys.audit)]
    assert [(a[b"actor"], a[b"reason"], a[b"version"]) for a in audit] == [
        (b"ana", b"OPS-1 first", b"1"),
        (b"bo", b"OPS-2", b"2"),
    ]
    assert audit[1][b"previous_version"] == b"1" and audit[1][b"connections"] == b"3"


def test_a_replica_follows_pushes_and_never_takes_a_bad_doc(
    store: RedisMapStore,
    shared_redis: RedisTarget,  # noqa: F811
) -> None:
    follower = _follower(shared_redis.client(), shared_redis.prefix)
    follower.start()
    try:
        before = follower.health()
        assert (before.loaded, len(follower.current)) == (False, 0)
        assert "no map pushed yet" in (before.last_error or "")

        store.push(_document(1), expected_version=None, actor="a", reason="r")
        wait_until(lambda: follower.health().version == 1)
        first_map = follower.current
        assert first_map.get("acme") is not None

        client = store._client
        client.set(store.keys.served, zlib.compress(b'{"version": 2, "connections": [{}]}'))
        client.set(store.keys.version, 2)
        client.publish(store.keys.changed, 2)
        wait_until(lambda: follower.health().last_error is not None)
        assert follower.current is first_map
        health = follower.health()
        assert "connections[0]" in (health.last_error or "")
        assert "refused; keeping version 1" in (health.last_error or "")

        client.delete(store.keys.version)  # as if the bad doc never was
        store.push(_document(3), expected_version=None, actor="a", reason="fixed")
        wait_until(lambda: follower.health().version == 3)
        assert follower.health().last_error is None
    finally:
        follower.close()


def test_a_redis_outage_keeps_the_last_good_map_and_says_it_is_stale(
    private_redis: PrivateRedis,  # noqa: F811
) -> None:
    client = private_redis.client()
    RedisMapStore(client, MapKeys("p")).push(
        _document(7), expected_version=None, actor="a", reason="r"
    )
    follower = RedisConnectionMap(
        redis.Redis(port=private_redis.port, socket_timeout=0.2, socket_connect_timeout=0.2),
        MapKeys("p"),
        where="redis test",
        resync_seconds=0.2,
    )
    follower.start()
    try:
        assert follower.health().version == 7
        private_redis.stop()
        wait_until(lambda: follower.health().stale)
        health = follower.health()
        assert (health.loaded, health.version, len(follower.current)) == (True, 7, 3)
        assert "ConnectionError" in (health.last_error or "")

        private_redis.start()  # back, but empty: no persistence
        wait_until(lambda: not follower.health().stale)
        health = follower.health()
        assert health.version == 7 and "is missing; keeping version 7" in (health.last_error or "")
    finally:
        follower.close()
        client.close()


def test_loading_a_map_leaves_the_garbage_collector_as_it_found_it(
    store: RedisMapStore,
    shared_redis: RedisTarget,  # noqa: F811
) -> None:
    store.push(_document(1), expected_version=None, actor="a", reason="r")
    follower = _follower(shared_redis.client(), shared_redis.prefix)
    try:
        for enabled in (True, False):
            (gc.enable if enabled else gc.disable)()
            load_connection_map(EXAMPLE)
            follower.sync_now()
            assert gc.isenabled() is enabled
    finally:
        gc.enable()
        follower.close()


def test_replicas_read_the_routing_fields_and_tools_the_whole_map(
    store: RedisMapStore,
    shared_redis: RedisTarget,  # noqa: F811
) -> None:
    document = _document(1)
    store.push(document, expected_version=None, actor="a", reason="r")
    client = store._client
    served, full = client.get(store.keys.served), client.get(store.keys.doc)
    assert served is not None and full is not None

    # Only what the proxy routes by; the tools' copy keeps every fact.
    assert b"assessment_reasons" not in zlib.decompress(served)
    assert b"assessment_reasons" in zlib.decompress(full)
    assert store.read() == document
    expected = sorted(ConnectionMap.build(document), key=lambda c: c.id)
    assert sorted(parse_served_doc(served, "x"), key=lambda c: c.id) == expected

    follower = _follower(shared_redis.client(), shared_redis.prefix)
    try:
        assert follower.sync_now() and follower.health().version == 1
        assert sorted(follower.current, key=lambda c: c.id) == expected
        # A map with no served copy (pushed by an older release) is followed from the doc.
        store.push(_document(2), expected_version=1, actor="a", reason="r")
        client.delete(store.keys.served)
        assert follower.sync_now() and follower.health().version == 2
        assert sorted(follower.current, key=lambda c: c.id) == expected
    finally:
        follower.close()
