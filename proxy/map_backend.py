"""The configured connection map backend: the proxy's map in force and the CLI's Redis store."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeAlias

from connection_map import (
    ConnectionMapDocument,
    ConnectionMapError,
    ConnectionMapFile,
    read_connection_map_document,
)
from proxy.config import Config, ConfigError, ConnectionMapRedis

if TYPE_CHECKING:
    # The Redis side (and its client library) is imported where it is used, so a replica that
    # serves the map from a file doesn't load it.
    from redis.exceptions import RedisError

    from connection_map.redis_follower import RedisConnectionMap
    from connection_map.redis_store import RedisMapStore

MapSource: TypeAlias = "ConnectionMapFile | RedisConnectionMap"
log = logging.getLogger("authswitch")


def map_source_for(config: Config) -> MapSource:
    """The file (read now; ConnectionMapError if bad) or a Redis follower (started later)."""
    settings = config.connection_map_redis
    if settings is None:
        return ConnectionMapFile(config.connection_map)
    from connection_map.redis_follower import RedisConnectionMap
    from connection_map.redis_store import MapKeys
    from foundation.redis_client import redact_url

    return RedisConnectionMap(
        settings.client("authswitch-map"),
        MapKeys(settings.key_prefix),
        where=f"redis {redact_url(settings.url)}",
        resync_seconds=settings.resync_seconds,
        poll_seconds=None if settings.pubsub else settings.poll_seconds,
    )


async def follow_connection_map(source: MapSource) -> None:
    """Keep the map in force current until cancelled: a Redis follower, or the file re-read."""
    if not isinstance(source, ConnectionMapFile):
        # A RedisConnectionMap: its own thread follows Redis, and builds and swaps the map
        # off the event loop.
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
    from connection_map.redis_store import MapKeys, RedisMapStore
    from foundation.redis_client import redact_url

    client = settings.client("authswitch-connections-cli", min_socket_timeout=min_timeout)
    where = f"redis {redact_url(settings.url)}"
    return RedisMapStore(
        client,
        MapKeys(settings.key_prefix),
        where=where,
        publish=settings.pubsub,
        keep_history=settings.history,
    )


class MapBackendUnavailable(Exception):
    """The Redis holding the served map did not answer; the message names where (redacted)."""


def served_map_document(config: Config, *, min_timeout: float) -> ConnectionMapDocument:
    """The whole map the proxy serves: the file, or the one pushed to Redis when it follows that.

    ConnectionMapError when it is invalid or nothing was pushed yet; MapBackendUnavailable when
    Redis does not answer. For tools (CLIs, the shadow checks), never the event loop.
    """
    if config.connection_map_redis is None:
        return read_connection_map_document(config.connection_map)
    store = open_map_store(config, min_timeout=min_timeout)
    try:
        return RedisMapSource(store).read()
    finally:
        store.close()


def _unavailable(where: str, exc: RedisError) -> MapBackendUnavailable:
    # redis-py's messages name the host and port, never the password (the URL is redacted).
    return MapBackendUnavailable(f"{where}: {type(exc).__name__}: {exc}")


def served_map_name(config: Config) -> str:
    """Where the served map lives, for messages."""
    if config.connection_map_redis is None:
        return str(config.connection_map)
    return f"key prefix {config.connection_map_redis.key_prefix!r} in Redis"


class ServedMapSource(Protocol):
    """The whole served map for tools that need more than the routing records."""

    where: str

    def stamp(self) -> Hashable:
        """What changes when the map does; MapBackendUnavailable / ConnectionMapError if unknown."""

    def read(self) -> ConnectionMapDocument:
        """The document; ConnectionMapError (invalid, or none pushed) or MapBackendUnavailable."""


class MapFileSource:
    """The map file: its modification time, size and inode say when to read it again."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self.where = str(path)

    def stamp(self) -> Hashable:
        try:
            stat = self._path.stat()
        except OSError as exc:
            raise ConnectionMapError(f"connection map '{self._path}': {exc.strerror}") from None
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino)

    def read(self) -> ConnectionMapDocument:
        return read_connection_map_document(self._path)


class RedisMapSource:
    """The map pushed to Redis: its version, asked at most once per `interval` seconds."""

    def __init__(
        self,
        store: RedisMapStore,
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._interval = interval
        self._clock = clock
        self._asked_at: float | None = None
        self._version: int | None = None
        self.where = store.where

    def stamp(self) -> Hashable:
        from redis.exceptions import RedisError

        now = self._clock()
        if self._asked_at is None or now - self._asked_at >= self._interval:
            try:
                self._version = self._store.version()
            except RedisError as exc:
                raise _unavailable(self.where, exc) from None
            self._asked_at = now
        return self._version

    def read(self) -> ConnectionMapDocument:
        from redis.exceptions import RedisError

        try:
            document = self._store.read()
        except RedisError as exc:
            raise _unavailable(self.where, exc) from None
        if document is None:
            raise ConnectionMapError(
                f"no connection map in {self.where} yet: push one with "
                "'authswitch connections push'"
            )
        return document


def served_map_source(
    config: Config, *, interval: float = 1.0, clock: Callable[[], float] = time.monotonic
) -> ServedMapSource:
    """The served map, in full, for a long-lived reader (the shadow checks, the console)."""
    if config.connection_map_redis is None:
        return MapFileSource(config.connection_map)
    return RedisMapSource(open_map_store(config, min_timeout=1.0), interval=interval, clock=clock)
