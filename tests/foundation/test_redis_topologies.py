"""Sentinel, Cluster and restricted managed Redis, against real redis-server processes."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest
import redis
from openfeature.evaluation_context import EvaluationContext
from pydantic import ValidationError

from connection_map import read_connection_map_document
from connection_map.redis_follower import RedisConnectionMap
from connection_map.redis_store import MapKeys, RedisMapStore
from flags import RedisFlagProvider
from flags.redis.keys import RedisKeys
from flags.redis.rollout_store import RedisRolloutStore
from flags.rollout_store import VersionConflict
from flags.state import RolloutState
from foundation.redis_settings import RedisSettings
from proxy.broker.config import BrokerRedis
from proxy.config import Flags
from proxy.flag_backend import provider_for
from proxy.flow_store import FlowRecord, RedisFlowStore
from tests.flags.redis_support import PrivateRedis, wait_until
from tests.foundation.redis_topology_support import (  # noqa: F401
    MASTER_NAME,
    RedisClusterGroup,
    SentinelGroup,
    redis_cluster,
    sentinel_group,
)

EXAMPLE_MAP = Path(__file__).resolve().parents[2] / "examples" / "connections.yaml"


def test_a_server_that_refuses_client_commands_still_serves_authswitch(tmp_path: Path) -> None:
    # Restricted managed Redis renames CLIENT away; CLIENT SETNAME on connect failed everything.
    server = PrivateRedis(tmp_path, ("--rename-command", "CLIENT", "")).start()
    try:
        settings = RedisSettings(url=server.url)
        client = settings.client("authswitch-test")
        assert client.set("authswitch-restricted:key", b"v")
        assert client.get("authswitch-restricted:key") == b"v"

        async def round_trip() -> bytes | None:
            async_client = settings.async_client("authswitch-test")
            try:
                return await async_client.get("authswitch-restricted:key")
            finally:
                await async_client.aclose()

        assert asyncio.run(round_trip()) == b"v"
    finally:
        server.stop()


def test_the_settings_refuse_inconsistent_topologies(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="hash tag in key_prefix"):
        RedisSettings(topology="cluster", key_prefix="authswitch")
    with pytest.raises(ValidationError, match="needs a 'sentinel' block"):
        RedisSettings(topology="sentinel")
    with pytest.raises(ValidationError, match="'cert_file' and 'key_file' go together"):
        RedisSettings(url="rediss://127.0.0.1:6380/0", cert_file=tmp_path / "cert.pem")
    with pytest.raises(ValidationError, match="'cert_file' is set but the url is not rediss"):
        RedisSettings(cert_file=tmp_path / "c.pem", key_file=tmp_path / "k.pem")
    assert RedisSettings(topology="cluster", key_prefix="{authswitch}").key_prefix == "{authswitch}"
    # the broker takes the same block (tests/proxy/broker/test_broker_topologies.py)
    assert BrokerRedis(topology="cluster", key_prefix="{authswitch}").topology == "cluster"
    with pytest.raises(ValidationError, match="needs a hash tag"):
        BrokerRedis(topology="cluster", key_prefix="authswitch")


def _sentinel_settings(group: SentinelGroup, tmp_path: Path) -> RedisSettings:
    return RedisSettings(
        # the url's host is unused: the Sentinels name the master
        url="redis://sentinel-discovered/0",
        key_prefix="authswitch-sentinel-test",
        topology="sentinel",
        sentinel={"master_name": MASTER_NAME, "addresses": group.addresses},
        socket_timeout_seconds=1,
    )


def test_sentinel_failover_is_followed_and_compare_and_set_stays_correct(
    sentinel_group: SentinelGroup,  # noqa: F811
    tmp_path: Path,
) -> None:
    settings = _sentinel_settings(sentinel_group, tmp_path)
    client = settings.client("authswitch-test")
    store = RedisRolloutStore(client, RedisKeys(settings.key_prefix))
    before = store.write(0, RolloutState(stage_percent=1), actor="sre", reason="r", action="set")
    assert before.version == 1
    # the replica has version 1 before the master dies
    assert sentinel_group.master.client().wait(1, 5000) == 1
    old_master = sentinel_group.master_port()

    assert sentinel_group.master.process is not None
    sentinel_group.master.process.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    failed_writes = 0
    while True:
        try:
            store.write(1, RolloutState(stage_percent=2), actor="sre", reason="r", action="set")
            break
        except Exception:
            failed_writes += 1
            assert time.monotonic() - killed_at < 30, "the new master was not followed"
            time.sleep(0.1)
    followed_after = time.monotonic() - killed_at
    print(f"sentinel failover followed after {followed_after:.2f} s, {failed_writes} retries")

    # The write was accepted, so the node that took it is a master now: the promoted replica.
    # (Asking one Sentinel would race: the others learn the new master a little later.)
    assert sentinel_group.replica.client().info("replication")["role"] == "master"
    assert sentinel_group.replica.port != old_master
    assert store.read().version == 2
    # compare-and-set across the failover: a writer that still expects version 1 is refused
    with pytest.raises(VersionConflict):
        store.write(1, RolloutState(stage_percent=2), actor="sre", reason="r", action="set")
    assert [record.version for record in store.history(10)] == [2, 1]


def test_a_cluster_serves_every_key_of_a_deployment_with_transactions_and_pubsub(
    redis_cluster: RedisClusterGroup,  # noqa: F811
) -> None:
    settings = RedisSettings(
        url=redis_cluster.url, key_prefix="{authswitch-test}", topology="cluster"
    )
    client = settings.client("authswitch-test")
    listener = settings.client("authswitch-test").pubsub(ignore_subscribe_messages=True)
    keys = RedisKeys(settings.key_prefix)
    listener.subscribe(keys.changed)
    store = RedisRolloutStore(client, keys)

    store.write(0, RolloutState(stage_percent=1), actor="sre", reason="r", action="set")
    store.write(1, RolloutState(stage_percent=2), actor="sre", reason="r", action="set")
    with pytest.raises(VersionConflict):
        store.write(1, RolloutState(stage_percent=2), actor="sre", reason="r", action="set")

    assert store.read().version == 2
    assert [record.version for record in store.history(10)] == [2, 1]
    published = []
    deadline = time.monotonic() + 5
    while len(published) < 2 and time.monotonic() < deadline:
        message = listener.get_message(timeout=0.2)
        if message is not None:
            published.append(int(message["data"]))
    assert published == [1, 2]
    # every node owns part of the slots; the client follows redirections for the others
    for index in range(20):
        client.set(f"authswitch-test-spread:{index}", index)
    assert [int(client.get(f"authswitch-test-spread:{i}") or -1) for i in range(20)] == list(
        range(20)
    )
    listener.close()
    assert isinstance(client, redis.cluster.RedisCluster)


def test_without_pubsub_writes_succeed_and_replicas_poll_the_change(tmp_path: Path) -> None:
    # A managed Redis that forbids pub/sub and CLIENT: PUBLISH inside MULTI aborted the whole
    # write (EXECABORT) and subscribing replicas never saw a change.
    restricted = ("PUBLISH", "SUBSCRIBE", "PSUBSCRIBE", "CLIENT")
    renames = tuple(arg for name in restricted for arg in ("--rename-command", name, ""))
    server = PrivateRedis(tmp_path, renames).start()
    flags = Flags(
        backend="redis",
        redis={
            "url": server.url,
            "key_prefix": "authswitch-nopubsub-test",
            "pubsub": False,
            "poll_seconds": 0.1,
            "resync_seconds": 300,
        },
    )
    providers = [provider_for(flags) for _ in range(2)]
    try:
        for provider in providers:
            provider.initialize(EvaluationContext())
        settings = flags.redis  # as open_rollout_store builds the CLI's store
        store = RedisRolloutStore(
            settings.client("authswitch-test"),
            RedisKeys(settings.key_prefix),
            publish=settings.pubsub,
        )

        store.write(0, RolloutState(kill_all=True), actor="sre", reason="r", action="kill_all")

        for provider in providers:
            assert isinstance(provider, RedisFlagProvider)
            wait_until(lambda provider=provider: provider.health().version == 1, deadline=3)
            assert provider.state.kill_all is True
        _the_map_is_pushed_and_polled(settings)
    finally:
        for provider in providers:
            provider.shutdown()
        server.stop()


def _the_map_is_pushed_and_polled(settings: RedisSettings) -> None:
    keys = MapKeys(settings.key_prefix)
    follower = RedisConnectionMap(
        settings.client("authswitch-test"), keys, where="redis test", poll_seconds=0.1
    )
    follower.start()
    try:
        store = RedisMapStore(settings.client("authswitch-test"), keys, publish=settings.pubsub)
        document = read_connection_map_document(EXAMPLE_MAP).model_copy(update={"version": 3})
        store.push(document, expected_version=None, actor="sre", reason="r")
        wait_until(lambda: follower.loaded and len(follower.current) > 0, deadline=3)
        assert len(follower.current) == len(document.connections)
    finally:
        follower.stop()


def _flow_store(settings: RedisSettings) -> RedisFlowStore:
    return RedisFlowStore(
        settings.url,
        key_prefix=settings.key_prefix,
        ttl_seconds=600,
        max_records=100,
        socket_timeout_seconds=1,
        lookup_timeout_seconds=1,
        topology=settings.redis_topology(),
        pubsub=settings.pubsub,
    )


async def _a_flow_recorded_on_one_replica_is_found_on_the_other(settings: RedisSettings) -> None:
    a, b = _flow_store(settings), _flow_store(settings)
    await a.start()
    await b.start()
    try:
        assert await a.record("flow-1", FlowRecord("acme", "new")) is True
        assert await b.lookup("flow-1") == FlowRecord("acme", "new")
    finally:
        await a.stop()
        await b.stop()


def test_flow_records_are_shared_on_a_cluster(
    redis_cluster: RedisClusterGroup,  # noqa: F811
) -> None:
    settings = RedisSettings(url=redis_cluster.url, key_prefix="{flows-test}", topology="cluster")
    asyncio.run(_a_flow_recorded_on_one_replica_is_found_on_the_other(settings))


def test_flow_records_are_shared_without_pubsub(tmp_path: Path) -> None:
    restricted = ("PUBLISH", "SUBSCRIBE", "PSUBSCRIBE", "CLIENT")
    renames = tuple(arg for name in restricted for arg in ("--rename-command", name, ""))
    server = PrivateRedis(tmp_path, renames).start()
    try:
        settings = RedisSettings(url=server.url, key_prefix="flows-test", pubsub=False)
        asyncio.run(_a_flow_recorded_on_one_replica_is_found_on_the_other(settings))
    finally:
        server.stop()
