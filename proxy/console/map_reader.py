"""The connection map the proxy serves, as the console reads it: the file, or the one pushed to
Redis; parsed again only when it changed (a 1 000-connection map takes ~100 ms to validate)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from connection_map import (
    ConnectionMap,
    ConnectionMapDocument,
    ConnectionMapError,
    Triage,
    TriageSettings,
    triage_connections,
)
from proxy.config import Config
from proxy.map_backend import MapBackendUnavailable, served_map_source

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
    """Reads the map when it changed (file modification time, or the version in Redis, asked
    at most every 2 s)."""

    def __init__(self, config: Config, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._source = served_map_source(config, interval=_REDIS_REREAD_SECONDS, clock=clock)
        self._lock = threading.Lock()
        self._view: MapView | None = None
        self._stamp: Hashable = None

    def current(self) -> MapView:
        with self._lock:
            try:
                stamp = self._source.stamp()
                if self._view is None or stamp != self._stamp:
                    self._view = self._build(self._source.read())
                    self._stamp = stamp
            except (ConnectionMapError, MapBackendUnavailable) as exc:
                raise MapUnavailable(str(exc)) from None
            return self._view

    def _build(self, document: ConnectionMapDocument) -> MapView:
        where = self._source.where
        return MapView(
            document,
            ConnectionMap.build(document, source=where),
            triage_connections(document.connections, TriageSettings(routes=self._config.routes)),
            where,
        )
