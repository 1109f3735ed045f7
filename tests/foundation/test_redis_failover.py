"""Losing the Redis master in the middle of the day: Sentinel and Cluster, for real.

Two proxy replicas (in-process apps over loopback) route callbacks continuously while the
master is killed (SIGKILL). No callback fails; until a flip is made after the failover, every
callback routes on the last known state; the flip, written through the new master, reaches
both replicas; the compare-and-set history has no lost update. Figures print with ``-s``.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import redis

from flags import RedisKeys, RedisRolloutStore, RolloutState
from flags.rollout_store import StoreUnavailable, VersionConflict
from proxy.app import AuthSwitch
from proxy.config import RedisFlags, load_config
from proxy.demo.loopback_server import LoopbackServer
from tests.conftest import write_proxy_files
from tests.flags.redis_support import PrivateRedis, wait_until
from tests.foundation.redis_topology_support import (  # noqa: F401
    MASTER_NAME,
    RedisClusterGroup,
    SentinelGroup,
    redis_cluster_with_replicas,
    sentinel_group,
)
from tests.proxy.test_redis_flags_serve import Callbacks, _route_of

PREFIX = "{authswitch-failover}"
FOLLOWER_OPTIONS = {
    "key_prefix": PREFIX,
    "resync_seconds": 0.2,
    "socket_timeout_seconds": 0.2,
    "stale_error_after_seconds": 0.5,
}


def _proxy(directory: Path, providers: dict[str, LoopbackServer], redis: dict[str, Any]) -> Any:
    directory.mkdir()
    config = write_proxy_files(
        directory,
        providers["legacy"].url,
        providers["new"].url,
        flags={"backend": "redis", "redis": redis},
    )
    return AuthSwitch(load_config(config, environ={}))


def _write_until_it_lands(store: RedisRolloutStore, deadline: float = 30.0) -> int:
    """The flip after the failover, retried as an operator would; the attempts it took."""
    attempts = 0
    started = time.monotonic()
    while True:
        attempts += 1
        try:
            store.write(1, RolloutState(), actor="sre", reason="after the failover", action="x")
            return attempts
        except StoreUnavailable:
            assert time.monotonic() - started < deadline, "the new master was never reached"
            time.sleep(0.05)
        except VersionConflict:
            # An attempt whose answer was lost did land: exactly once, not twice.
            assert store.read().version == 2
            return attempts


def _lose_the_master(
    tmp_path: Path,
    providers: dict[str, LoopbackServer],
    redis: dict[str, Any],
    master: PrivateRedis,
) -> dict[str, float]:
    writer_settings = RedisFlags.model_validate(redis)
    store = RedisRolloutStore(
        writer_settings.client("authswitch-test", min_socket_timeout=1.0), RedisKeys(PREFIX)
    )
    store.write(0, RolloutState(overrides={"hooli": "on"}), actor="sre", reason="r", action="x")
    # Redis replicates asynchronously: a master killed before its replica has the state takes
    # the state with it (the promoted replica starts empty, and the write-guard rightly refuses
    # to write over that). The failover tested here is of a replicated state.
    _wait_until_replicated(master)
    apps = [_proxy(tmp_path / f"replica{n}", providers, redis) for n in (1, 2)]
    with (
        LoopbackServer(apps[0], name="replica1") as one,
        LoopbackServer(apps[1], name="replica2") as two,
        Callbacks(one.url) as traffic_one,
        Callbacks(two.url) as traffic_two,
    ):
        traffics = (traffic_one, traffic_two)
        for server in (one, two):
            wait_until(lambda server=server: _route_of(server.url) == "new")
        assert master.process is not None
        master.process.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        attempts = _write_until_it_lands(store)
        written_at = time.monotonic()
        for server in (one, two):
            wait_until(lambda server=server: _route_of(server.url) == "legacy", deadline=5)
        honoured_at = time.monotonic()
        during = [len(traffic.routes) for traffic in traffics]
        wait_until(
            lambda: all(len(t.routes) > n + 5 for t, n in zip(traffics, during, strict=True))
        )

    for traffic in traffics:
        failed = [route for route in traffic.routes if route not in ("new", "legacy")]
        assert failed == [], failed[:3]
        first_legacy = traffic.routes.index("legacy")
        assert set(traffic.routes[:first_legacy]) == {"new"}
        assert set(traffic.routes[first_legacy:]) == {"legacy"}, "a replica flapped back"
    assert [record.version for record in store.history(10)] == [2, 1]
    assert store.read() == RolloutState(version=2)
    return {
        "new master took the flip after (s)": written_at - killed_at,
        "write attempts during the failover": attempts,
        "both replicas honoured the flip after (s)": honoured_at - written_at,
        "callbacks routed": sum(len(traffic.routes) for traffic in traffics),
        "callbacks failed": 0,
    }


def _wait_until_replicated(master: PrivateRedis, deadline: float = 10.0) -> None:
    """Until every replica of `master` has acknowledged all it has written."""
    client = redis.Redis(host="127.0.0.1", port=master.port, socket_timeout=2)
    started = time.monotonic()
    try:
        while True:
            info = client.info("replication")
            replicas = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
            if replicas and all(r["offset"] >= info["master_repl_offset"] for r in replicas):
                return
            assert time.monotonic() - started < deadline, f"replicas never caught up: {info}"
            time.sleep(0.05)
    finally:
        client.close()


def _print(topology: str, figures: dict[str, float]) -> None:
    print(f"\n{topology} failover:")
    print("\n".join(f"  {name}: {value:.3f}" for name, value in figures.items()))


def test_losing_the_sentinel_master_fails_no_callback(
    tmp_path: Path,
    providers: dict[str, LoopbackServer],
    sentinel_group: SentinelGroup,  # noqa: F811
) -> None:
    redis = {
        "url": "redis://sentinel-discovered/0",
        "topology": "sentinel",
        "sentinel": {"master_name": MASTER_NAME, "addresses": sentinel_group.addresses},
        **FOLLOWER_OPTIONS,
    }
    figures = _lose_the_master(tmp_path, providers, redis, sentinel_group.master)

    assert sentinel_group.master_port() == sentinel_group.replica.port
    _print("sentinel", figures)


def test_losing_a_cluster_master_fails_no_callback(
    tmp_path: Path,
    providers: dict[str, LoopbackServer],
    redis_cluster_with_replicas: RedisClusterGroup,  # noqa: F811
) -> None:
    cluster = redis_cluster_with_replicas
    redis = {"url": cluster.url, "topology": "cluster", **FOLLOWER_OPTIONS}
    master = cluster.master_of(PREFIX)

    figures = _lose_the_master(tmp_path, providers, redis, master)

    assert cluster.master_of(PREFIX) is not master
    _print("cluster", figures)
