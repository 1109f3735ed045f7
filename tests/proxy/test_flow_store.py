"""Flow records: bounded expiring memory, and replicas sharing records through a real Redis."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from proxy.flow_store import FLOW_LOOKUPS, FlowMemory, FlowRecord, RedisFlowStore, flow_key
from tests.flags.redis_support import (
    PrivateRedis,
    RedisTarget,
    private_redis,  # noqa: F401  (registers the fixtures for this module)
    shared_redis,  # noqa: F401
    wait_until,
)

ACME_NEW = FlowRecord("acme", "new")


def _store(url: str, prefix: str, *, ttl: float = 600.0, max_records: int = 1000) -> RedisFlowStore:
    return RedisFlowStore(
        url,
        key_prefix=prefix,
        ttl_seconds=ttl,
        max_records=max_records,
        socket_timeout_seconds=0.2,
        lookup_timeout_seconds=0.05,
    )


def _lookups(result: str) -> float:
    return FLOW_LOOKUPS.labels(result)._value.get()


def test_records_round_trip_and_malformed_ones_are_refused() -> None:
    assert FlowRecord.decode(ACME_NEW.encode()) == ACME_NEW
    assert FlowRecord.decode(b"legacy hooli") == FlowRecord("hooli", "legacy")
    for bad in ("shadow acme", "new", "new ", ""):
        assert FlowRecord.decode(bad) is None


def test_flow_keys_are_stable_hashes_that_do_not_contain_the_flow_id() -> None:
    state = "st4te-abc"
    assert flow_key(state) == flow_key(state) != flow_key(state + "x")
    assert len(flow_key(state)) == 64 and state not in flow_key(state)
    assert flow_key("\ud800lone-surrogate")  # whatever the query parser let through


def test_memory_forgets_expired_records_and_keeps_at_most_max_records() -> None:
    memory = FlowMemory(max_records=3)
    memory.put("short", ACME_NEW, 0.05)
    assert memory.get("short") == ACME_NEW
    time.sleep(0.06)
    assert memory.get("short") is None
    for key in ("a", "b", "c"):
        memory.put(key, ACME_NEW, 60)
    assert len(memory) == 3
    assert memory.evicted_alive_until == 0.0  # "short" went because it expired, not for room

    memory.put("d", ACME_NEW, 60)  # one too many live records: the oldest goes
    assert len(memory) == 3
    assert memory.get("a") is None and memory.get("d") == ACME_NEW
    assert memory.evicted_alive_until > time.monotonic() + 50  # a live record was evicted


def test_a_record_reaches_every_replica_through_pub_sub(
    shared_redis: RedisTarget,  # noqa: F811
) -> None:
    async def scenario() -> None:
        a, b = (
            _store(shared_redis.url, shared_redis.prefix),
            _store(shared_redis.url, shared_redis.prefix),
        )
        await a.start()
        await b.start()
        try:
            assert await a.record("flow-1", ACME_NEW) is True
            took = await asyncio.to_thread(
                wait_until, lambda: b.memory.get(flow_key("flow-1")) is not None, 2.0
            )
            hits = _lookups("memory_hit")
            assert await b.lookup("flow-1") == ACME_NEW
            assert _lookups("memory_hit") == hits + 1
            print(f"flow record replicated in {took * 1000:.1f} ms")
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(scenario())


def test_a_replica_that_just_subscribed_asks_redis_once_on_a_miss(
    shared_redis: RedisTarget,  # noqa: F811
) -> None:
    async def scenario() -> None:
        a = _store(shared_redis.url, shared_redis.prefix)
        await a.start()
        await a.record("before-b-started", ACME_NEW)
        b = _store(shared_redis.url, shared_redis.prefix)
        await b.start()
        try:
            assert not b.memory_complete  # it can't know what was published before it listened
            hits, misses = _lookups("redis_hit"), _lookups("redis_miss")
            assert await b.lookup("before-b-started") == ACME_NEW
            assert await b.lookup("never-recorded") is None
            assert (_lookups("redis_hit"), _lookups("redis_miss")) == (hits + 1, misses + 1)
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(scenario())


def test_after_one_ttl_of_listening_a_miss_is_answered_from_memory_alone(
    shared_redis: RedisTarget,  # noqa: F811
) -> None:
    async def scenario() -> None:
        store = _store(shared_redis.url, shared_redis.prefix, ttl=1.0)
        await store.start()
        try:
            # Written behind the store's back (no PUBLISH): only a GET could find it.
            client = shared_redis.client()
            client.set(f"{shared_redis.prefix}:flows:{flow_key('unannounced')}", b"new acme")
            client.close()
            await asyncio.sleep(1.1)
            assert store.memory_complete and store.health()["memory_complete"] is True
            misses, asked = _lookups("memory_miss"), _lookups("redis_miss") + _lookups("redis_hit")
            assert await store.lookup("unannounced") is None
            assert _lookups("memory_miss") == misses + 1
            assert _lookups("redis_miss") + _lookups("redis_hit") == asked
        finally:
            await store.stop()

    asyncio.run(scenario())


def test_a_frozen_redis_costs_a_callback_at_most_the_lookup_timeout(
    private_redis: PrivateRedis,  # noqa: F811
) -> None:
    async def scenario() -> None:
        store = _store(private_redis.url, "authswitch")
        await store.start()
        try:
            private_redis.freeze()
            errors = _lookups("redis_error")
            started = time.monotonic()
            assert await store.lookup("some-flow") is None  # the flag decides instead
            took = time.monotonic() - started
            assert took < 0.2, f"lookup took {took:.3f} s"
            assert _lookups("redis_error") == errors + 1
            started = time.monotonic()
            assert await store.record("another-flow", ACME_NEW) is False
            assert time.monotonic() - started < 0.5
            assert store.memory.get(flow_key("another-flow")) == ACME_NEW  # this replica knows
        finally:
            private_redis.thaw()
            await store.stop()

    asyncio.run(scenario())


def test_a_replica_starts_and_stops_promptly_while_redis_is_down(tmp_path: Path) -> None:
    down = PrivateRedis(tmp_path)  # never started: nothing listens on its port

    async def scenario() -> None:
        store = _store(down.url, "authswitch")
        started = time.monotonic()
        await store.start()
        assert time.monotonic() - started < 1.0
        assert await store.lookup("flow") is None
        assert store.health()["subscribed"] is False
        await store.stop()
        assert store.listener_thread is None

    asyncio.run(scenario())


@pytest.mark.parametrize("value", [b"garbage", b"0123 x y"])
def test_malformed_messages_on_the_channel_are_ignored(
    shared_redis: RedisTarget,  # noqa: F811
    value: bytes,
) -> None:
    async def scenario() -> None:
        store = _store(shared_redis.url, shared_redis.prefix)
        await store.start()
        try:
            client = shared_redis.client()
            client.publish(store.channel, value)
            client.close()
            await store.record("good", ACME_NEW)  # arrives after the bad one
            await asyncio.sleep(0.2)
            assert len(store.memory) == 1
        finally:
            await store.stop()

    asyncio.run(scenario())


def test_after_a_redis_outage_misses_ask_redis_again_for_one_ttl(
    private_redis: PrivateRedis,  # noqa: F811
) -> None:
    async def scenario() -> None:
        store = _store(private_redis.url, "authswitch", ttl=1.0)
        await store.start()
        try:
            await asyncio.to_thread(wait_until, lambda: store.memory_complete, 3.0)
            private_redis.stop()  # records published meanwhile are lost to this replica
            await asyncio.to_thread(wait_until, lambda: not store.health()["subscribed"], 3.0)
            assert not store.memory_complete
            private_redis.start()
            await asyncio.to_thread(wait_until, lambda: store.health()["subscribed"], 5.0)
            assert not store.memory_complete  # until it has listened for a whole TTL again
            await asyncio.to_thread(wait_until, lambda: store.memory_complete, 3.0)
        finally:
            await store.stop()

    asyncio.run(scenario())
