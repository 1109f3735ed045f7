"""The full map entries the shadow checks compare with (certificates, accepted values).

A replica routes from the slim served records; the checks need the whole import, so the map
the proxy serves is read here in full (the map file, or the document pushed to Redis when the
proxy follows `connection_map_redis`), again when it changes, in the worker threads and never
on the event loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Protocol

from redis.exceptions import RedisError

from connection_map import (
    Connection,
    ConnectionMapDocument,
    ConnectionMapError,
    read_connection_map_document,
)
from connection_map.redis_store import RedisMapStore

log = logging.getLogger("authswitch.shadow")


class MapSource(Protocol):
    def stamp(self) -> Hashable | None:
        """What changes when the map does (None: can't tell now, keep what was read)."""

    def read(self) -> ConnectionMapDocument | None: ...


class MapFileSource:
    """The map file: its modification time and size say when to read it again."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def stamp(self) -> Hashable | None:
        try:
            stat = self._path.stat()
        except OSError:
            return None  # the proxy's own map watch reports the file
        return (stat.st_mtime_ns, stat.st_size)

    def read(self) -> ConnectionMapDocument | None:
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

    def stamp(self) -> Hashable | None:
        now = self._clock()
        if self._asked_at is None or now - self._asked_at >= self._interval:
            self._asked_at = now
            try:
                self._version = self._store.version()
            except (RedisError, ConnectionMapError) as exc:
                log.warning(
                    "shadow checks keep the previous map",
                    extra={"fields": {"problem": type(exc).__name__}},
                )
                return None
        return self._version

    def read(self) -> ConnectionMapDocument | None:
        return self._store.read()


class ImportedConnections:
    """Connections by id from the map the proxy serves, re-read when it changes."""

    def __init__(self, source: MapSource) -> None:
        self._source = source
        self._lock = threading.Lock()
        self._stamp: Hashable | None = None
        self._by_id: dict[str, Connection] = {}

    def get(self, connection_id: str) -> Connection | None:
        with self._lock:
            self._refresh()
            return self._by_id.get(connection_id)

    def _refresh(self) -> None:
        stamp = self._source.stamp()
        if stamp is None or stamp == self._stamp:
            return
        try:
            document = self._source.read()
        except (ConnectionMapError, RedisError) as exc:
            problem = str(exc) if isinstance(exc, ConnectionMapError) else type(exc).__name__
            log.warning(
                "shadow checks keep the previous map", extra={"fields": {"problem": problem}}
            )
            return
        if document is None:
            return
        self._by_id = {c.id: c for c in document.connections}
        self._stamp = stamp
