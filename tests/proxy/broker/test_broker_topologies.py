"""The broker on the Redis topologies every other Redis user takes: rate limits, replay
guards and provisioning locks against real Sentinels and a real three-master Cluster."""

from __future__ import annotations

from typing import Any

import pytest

from tests.foundation.redis_topology_support import (  # noqa: F401  (fixtures)
    MASTER_NAME,
    RedisClusterGroup,
    SentinelGroup,
    redis_cluster,
    sentinel_group,
)
from tests.proxy.broker.broker_support import ALICE, BOB, WRONG
from tests.proxy.broker.conftest import StartBroker


def _limited_then_provisioned(start_broker: StartBroker, redis: dict[str, Any]) -> None:
    env = start_broker(redis=redis, rate_limits={"per_identifier": "2/minute"})

    wrong = [env.call("generic", ALICE[0], WRONG) for _ in range(2)]
    limited = env.call("generic", *ALICE)
    bob = env.call("kratos", *BOB)

    assert [a.json() for a in wrong] == [{"verified": False}] * 2
    assert limited.status_code == 429, "the counters live in this Redis"
    assert bob.status_code == 200
    assert [user["userName"] for user in env.scim.users()] == [BOB[0]], "provisioned once"


def test_the_broker_runs_on_a_sentinel_master(
    start_broker: StartBroker,
    sentinel_group: SentinelGroup,  # noqa: F811
) -> None:
    _limited_then_provisioned(
        start_broker,
        {
            "url": "redis://sentinel-discovered/0",  # the Sentinels name the master
            "key_prefix": "authswitch-broker-sentinel",
            "topology": "sentinel",
            "sentinel": {"master_name": MASTER_NAME, "addresses": sentinel_group.addresses},
        },
    )
    master = sentinel_group.master.client()
    assert master.keys("authswitch-broker-sentinel:broker:*"), "written on the master"


def test_the_broker_runs_on_a_cluster(
    start_broker: StartBroker,
    redis_cluster: RedisClusterGroup,  # noqa: F811
) -> None:
    _limited_then_provisioned(
        start_broker,
        {"url": redis_cluster.url, "key_prefix": "{authswitch-broker}", "topology": "cluster"},
    )


def test_a_cluster_prefix_without_a_hash_tag_is_refused(start_broker: StartBroker) -> None:
    from proxy.config import ConfigError

    with pytest.raises(ConfigError, match=r"broker\.redis.*hash tag"):
        start_broker(redis={"url": "redis://127.0.0.1:6379/0", "topology": "cluster"})
