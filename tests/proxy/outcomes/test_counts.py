"""Outcome stores: counts by window, event ids counted once, bounded memory, Redis expiry."""

from __future__ import annotations

import pytest

from flags.redis.keys import connect
from proxy.config import ConfigError, parse_config
from proxy.outcomes.counts import MemoryOutcomeStore, Observation, OutcomeStore
from proxy.outcomes.redis_counts import RedisOutcomeStore
from tests.flags.redis_support import (
    RedisTarget,
    shared_redis,  # noqa: F401  (registers the fixture for this module)
)

MINUTE = 60 * 483_334  # the first minute of an hour in 2025


def _both(store: OutcomeStore) -> None:
    items = [
        Observation("acme", "new", "events", "failed", MINUTE, "workos:e1"),
        Observation("acme", "new", "events", "failed", MINUTE, "workos:e1"),  # same id
        Observation("acme", "new", "events", "succeeded", MINUTE + 59, "workos:e2"),
        Observation("acme", "legacy", "proxy", "succeeded", MINUTE + 61),
        Observation("acme", "legacy", "proxy", "succeeded", MINUTE + 61),
        Observation("globex", "new", "proxy", "forwarded", MINUTE),
    ]
    counted = store.add(items)
    assert len(counted) == 5
    assert len(store.add(items[:3])) == 0  # redelivered: nothing counted again
    window = store.tally("acme", MINUTE, MINUTE + 62)
    assert window.judged("new", "events") == (1, 1)
    assert window.judged("legacy", "proxy") == (2, 0)
    assert store.tally("acme", MINUTE + 60, MINUTE + 120).counts == {
        ("legacy", "proxy", "succeeded"): 2
    }
    assert store.tally("globex", MINUTE, MINUTE + 1).get("new", "proxy", "forwarded") == 1
    assert store.first_seen("workos:abc", 60, now=1000.0)
    assert not store.first_seen("workos:abc", 60, now=1001.0)


def test_memory_store_counts_and_deduplicates() -> None:
    _both(MemoryOutcomeStore(retention_minutes=1440, max_buckets=100, max_event_ids=100))


def test_redis_store_counts_deduplicates_and_expires(shared_redis: RedisTarget) -> None:  # noqa: F811
    client = connect(shared_redis.url, socket_timeout=2, client_name="test")
    store = RedisOutcomeStore(
        client, shared_redis.prefix, retention_seconds=3600, dedupe_seconds=600
    )
    _both(store)
    bucket = f"{shared_redis.prefix}:outcomes:c:acme:{MINUTE // 60}"
    assert 3500 < client.ttl(bucket) <= 3600
    assert 500 < client.ttl(f"{shared_redis.prefix}:outcomes:e:events:workos:e1") <= 600
    # Nothing personal is stored: only counts by minute, side, source and outcome.
    assert set(client.hgetall(bucket)) == {
        f"{MINUTE}:new:events:failed".encode(),
        f"{MINUTE + 59}:new:events:succeeded".encode(),
    }


def test_memory_store_is_bounded() -> None:
    store = MemoryOutcomeStore(retention_minutes=1440, max_buckets=100, max_event_ids=100)
    for number in range(1000):  # a flood of distinct connections and event ids
        store.add([Observation(f"c{number}", "new", "events", "failed", MINUTE, f"id{number}")])
    assert len(store._buckets) == 100 and len(store._event_ids) == 100
    assert store.dropped == 900
    # Buckets older than the retention go when newer ones arrive.
    store.add([Observation("late", "new", "events", "failed", MINUTE + 3 * 1440)])
    assert list(store._buckets) == [("late", (MINUTE + 3 * 1440) // 60)]


def test_config_errors_name_the_key(tmp_path: object) -> None:
    from pathlib import Path

    base = {
        "legacy": {"url": "http://legacy.example"},
        "connection_map": "c.yaml",
        "flags": {"file": "f.yaml"},
        "routes": [{"path": "/cb", "protocol": "oidc", "identify": ["query"]}],
    }
    with pytest.raises(ConfigError, match=r"key 'outcomes.workos': .*'api_key_file' is required"):
        parse_config(
            {**base, "outcomes": {"enabled": True, "workos": {"enabled": True, "poll": True}}},
            source=Path("a.yaml"),
        )
    with pytest.raises(ConfigError, match=r"key 'outcomes.proxy.default.error_location'"):
        parse_config(
            {**base, "outcomes": {"proxy": {"default": {"error_location": "("}}}},
            source=Path("a.yaml"),
        )
    with pytest.raises(ConfigError, match=r"key 'outcomes.guard.mode'"):
        parse_config({**base, "outcomes": {"guard": {"mode": "kill"}}}, source=Path("a.yaml"))
