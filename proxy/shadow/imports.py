"""The full map entries the shadow checks compare with (certificates, accepted values).

A replica routes from the slim served records; the checks need the whole import, so the map
the proxy serves is read here in full (``map_backend.served_map_source``: the map file, or the
document pushed to Redis when the proxy follows `connection_map_redis`), again when it changes,
in the worker threads and never on the event loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Hashable

from connection_map import Connection, ConnectionMapError
from proxy.map_backend import MapBackendUnavailable, ServedMapSource

log = logging.getLogger("authswitch.shadow")


class ImportedConnections:
    """Connections by id from the map the proxy serves, re-read when it changes."""

    def __init__(self, source: ServedMapSource) -> None:
        self._source = source
        self._lock = threading.Lock()
        self._stamp: Hashable | None = None
        self._by_id: dict[str, Connection] = {}

    def get(self, connection_id: str) -> Connection | None:
        with self._lock:
            self._refresh()
            return self._by_id.get(connection_id)

    def _refresh(self) -> None:
        try:
            stamp = self._source.stamp()
            if stamp == self._stamp and self._stamp is not None:
                return
            document = self._source.read()
        except (ConnectionMapError, MapBackendUnavailable) as exc:
            # Keep what was read last; the proxy's own map watch reports the map's health.
            fields = {"problem": str(exc)}
            log.warning("shadow checks keep the previous map", extra={"fields": fields})
            return
        self._by_id = {c.id: c for c in document.connections}
        self._stamp = stamp
