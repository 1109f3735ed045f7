"""The configured connection map backend: the proxy's map in force and the CLI's Redis store."""

from __future__ import annotations

import asyncio
import logging

from connection_map import ConnectionMapError, ConnectionMapFile
from connection_map.redis_follower import RedisConnectionMap
from connection_map.redis_store import MapKeys, RedisMapStore
from foundation.redis_client import redact_url
from proxy.config import Config, ConfigError, ConnectionMapRedis

MapSource = ConnectionMapFile | RedisConnectionMap
log = logging.getLogger("authswitch")


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
        poll_seconds=None if settings.pubsub else settings.poll_seconds,
    )


async def follow_connection_map(source: MapSource) -> None:
    """Keep the map in force current until cancelled: a Redis follower, or the file re-read."""
    if isinstance(source, RedisConnectionMap):
        # Its own thread follows Redis, and builds and swaps the map off the event loop.
        await asyncio.to_thread(source.start)
        try:
            await asyncio.Event().wait()
        finally:
            source.close()
        return
    source.health().publish()
    while True:
        await asyncio.sleep(1.0)
        try:
            if await asyncio.to_thread(source.reload_if_changed):
                log.info("connection map reloaded", extra={"connections": len(source.current)})
        except ConnectionMapError as exc:
            log.warning("connection map not reloaded, keeping the last good one: %s", exc)
        source.health().publish()


def open_map_store(config: Config, *, min_timeout: float) -> RedisMapStore:
    """The Redis store `connections push` writes; ConfigError when the map isn't in Redis."""
    settings: ConnectionMapRedis | None = config.connection_map_redis
    if settings is None:
        raise ConfigError(
            "the connection map is a file here: set 'connection_map_redis' to push it to Redis"
        )
    client = settings.client("authswitch-connections-cli", min_socket_timeout=min_timeout)
    where = f"redis {redact_url(settings.url)}"
    return RedisMapStore(
        client,
        MapKeys(settings.key_prefix),
        where=where,
        publish=settings.pubsub,
        keep_history=settings.history,
    )
