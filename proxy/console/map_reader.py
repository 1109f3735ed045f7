"""The connection map the proxy serves, as the console reads it: the file, or the one pushed to
Redis; parsed again only when it changed (a 1 000-connection map takes ~100 ms to validate)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.exceptions import RedisError

from connection_map import (
    ConnectionMap,
    ConnectionMapDocument,
    ConnectionMapError,
    Triage,
    TriageSettings,
    read_connection_map_document,
    triage_connections,
)
from proxy.config import Config
from proxy.map_backend import open_map_store

_REDIS_REREAD_SECONDS = 2.0


class MapUnavailable(Exception):
    """The map can't be read now; the message says where and why (never a credential)."""


@dataclass(frozen=True, slots=True)
class MapView:
    """One version of the map with everything the pages derive from it, computed once."""

    document: ConnectionMapDocument
    index: ConnectionMap
    triage: dict[str, Triage]
    where: str


class MapReader:
    """Reads the map when it changed (file modification time, or every 2 s from Redis)."""

    def __init__(self, config: Config, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._view: MapView | None = None
        self._stamp: object = None

    def current(self) -> MapView:
        with self._lock:
            stamp = self._freshness()
            if self._view is None or stamp != self._stamp:
                self._view = self._build(self._read())
                self._stamp = stamp
            return self._view

    def _freshness(self) -> object:
        if self._config.connection_map_redis is not None:
            return int(self._clock() // _REDIS_REREAD_SECONDS)
        try:
            stat = self._config.connection_map.stat()
        except OSError as exc:
            raise MapUnavailable(f"{self._config.connection_map}: {exc.strerror}") from None
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino)

    def _read(self) -> ConnectionMapDocument:
        if self._config.connection_map_redis is None:
            try:
                return read_connection_map_document(self._config.connection_map)
            except ConnectionMapError as exc:
                raise MapUnavailable(str(exc)) from None
        store = open_map_store(self._config, min_timeout=1.0)
        try:
            document = store.read()
        except (ConnectionMapError, RedisError) as exc:
            raise MapUnavailable(f"{store.where}: {type(exc).__name__}") from None
        finally:
            store.close()
        if document is None:
            raise MapUnavailable(f"no connection map in {store.where} yet")
        return document

    def _build(self, document: ConnectionMapDocument) -> MapView:
        where = (
            str(self._config.connection_map)
            if self._config.connection_map_redis is None
            else "Redis"
        )
        return MapView(
            document,
            ConnectionMap.build(document, source=where),
            triage_connections(document.connections, TriageSettings(routes=self._config.routes)),
            where,
        )
