"""The configured connection map backend: the proxy's map in force and the CLI's Redis store."""

from __future__ import annotations

from connection_map import ConnectionMapFile
from connection_map.redis_follower import RedisConnectionMap
from connection_map.redis_store import MapKeys, RedisMapStore
from foundation.redis_client import redact_url
from proxy.config import Config, ConfigError, ConnectionMapRedis

MapSource = ConnectionMapFile | RedisConnectionMap


def map_source_for(config: Config) -> MapSource:
    """The file (read now; ConnectionMapError if bad) or a Redis follower (started later)."""
    settings = config.connection_map_redis
    if settings is None:
        return ConnectionMapFile(config.connection_map)
    return RedisConnectionMap(
        settings.client("authswitch-map"),
        MapKeys(settings.key_prefix),
        where=f"redis {redact_url(settings.url)}",
        resync_seconds=settings.resync_seconds,
    )


def open_map_store(config: Config, *, min_timeout: float) -> RedisMapStore:
    """The Redis store `connections push` writes; ConfigError when the map isn't in Redis."""
    settings: ConnectionMapRedis | None = config.connection_map_redis
    if settings is None:
        raise ConfigError(
            "the connection map is a file here: set 'connection_map_redis' to push it to Redis"
        )
    client = settings.client("authswitch-connections-cli", min_socket_timeout=min_timeout)
    return RedisMapStore(
        client, MapKeys(settings.key_prefix), where=f"redis {redact_url(settings.url)}"
    )
