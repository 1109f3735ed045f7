"""The full map entries the shadow checks compare with (certificates, accepted values).

A replica routes from the slim served records; the checks need the whole import, so the map
file (`connection_map:`, the file the `connections` commands import into) is read here, again
when it changes, in the worker threads and never on the event loop.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from connection_map import Connection, ConnectionMapError, read_connection_map_document

log = logging.getLogger("authswitch.shadow")


class ImportedConnections:
    """Connections by id from the map file, re-read when its modification time changes."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._by_id: dict[str, Connection] = {}

    def get(self, connection_id: str) -> Connection | None:
        with self._lock:
            self._refresh()
            return self._by_id.get(connection_id)

    def _refresh(self) -> None:
        try:
            stat = self._path.stat()
        except OSError:
            return  # keep what was read last; the proxy's own map watch reports the file
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        try:
            document = read_connection_map_document(self._path)
        except ConnectionMapError as exc:
            log.warning(
                "shadow checks keep the previous map", extra={"fields": {"problem": str(exc)}}
            )
            return
        self._by_id = {c.id: c for c in document.connections}
        self._stamp = stamp
