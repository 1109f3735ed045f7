"""The rate limits' storage on the broker's own Redis client, whatever the topology.

The `limits` library builds its Redis clients from a URL by default, which knows nothing of
authswitch's settings (Sentinel, password and CA files, client certificates). So it is handed
the client `broker.redis` describes: its connection pool for a standalone server or a Sentinel
master (the library's documented `connection_pool` option), the RedisCluster client itself for
a cluster (limits' cluster storage keeps both keys of a sliding window in one slot).
"""

from __future__ import annotations

from typing import cast

import redis.asyncio
import redis.asyncio.cluster
from limits.aio.storage import RedisClusterStorage, RedisStorage

from proxy.broker.config import BrokerRedis


class _OnClusterClient(RedisClusterStorage):
    """limits' cluster storage, on a RedisCluster client built from authswitch's settings."""

    def __init__(self, client: redis.asyncio.cluster.RedisCluster, key_prefix: str) -> None:
        self._client = client
        # The URL only selects the cluster code path; no client is built from it.
        super().__init__(
            "async+redis+cluster://configured-client:6379",
            implementation="redispy",
            key_prefix=key_prefix,
        )

    def configure_bridge(self) -> None:
        client = self._client
        self.bridge.storage = client  # type: ignore[attr-defined]
        self.bridge.connection_getter = lambda _: client  # type: ignore[attr-defined]


def rate_limit_storage(settings: BrokerRedis, client: redis.asyncio.Redis) -> RedisStorage:
    """Storage for the broker's rate limits on `client` (from `settings.async_client`)."""
    key_prefix = f"{settings.key_prefix}:broker:rl"
    if settings.topology == "cluster":
        cluster = cast(redis.asyncio.cluster.RedisCluster, client)
        return _OnClusterClient(cluster, key_prefix)
    return RedisStorage(
        "async+redis://configured-client:6379",
        implementation="redispy",
        key_prefix=key_prefix,
        connection_pool=client.connection_pool,  # type: ignore[arg-type]
    )
