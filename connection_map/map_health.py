"""What a process knows about the connection map it routes with: for ``/readyz`` and metrics."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from prometheus_client import Gauge

MAP_VERSION = Gauge(
    "authswitch_connection_map_version",
    "Version of the connection map this process routes with (-1: none known).",
    ["backend"],
    multiprocess_mode="liveall",
)
MAP_CONNECTIONS = Gauge(
    "authswitch_connection_map_connections",
    "Connections in the map this process routes with.",
    ["backend"],
    multiprocess_mode="liveall",
)
MAP_STALE_SECONDS = Gauge(
    "authswitch_connection_map_stale_seconds",
    "While the map's backend can't be read: seconds since the map in memory was last "
    "confirmed against it (0 when fresh).",
    ["backend"],
    multiprocess_mode="liveall",
)


@dataclass(frozen=True, slots=True)
class MapHealth:
    """The map in force and the state of its source."""

    backend: str  # "file" or "redis"
    source: str  # the file, or the Redis URL (no password) and key
    loaded: bool  # False only before any map was ever loaded: every callback goes to legacy
    version: int | None
    connections: int
    stale: bool  # the backend can't be read; the last good map keeps routing
    stale_seconds: float | None
    last_error: str | None  # unreachable backend, or a map that was refused (the old one stays)

    def as_dict(self) -> dict[str, Any]:
        report = asdict(self)
        if self.stale_seconds is not None:
            report["stale_seconds"] = round(self.stale_seconds, 3)
        report["reload_error"] = self.last_error  # the key /readyz had before the Redis backend
        return report

    def publish(self) -> None:
        """Set the gauges (one series per live worker in multiprocess mode)."""
        MAP_VERSION.labels(self.backend).set(self.version if self.version is not None else -1)
        MAP_CONNECTIONS.labels(self.backend).set(self.connections)
        stale = (self.stale_seconds or 0.0) if self.stale else 0.0
        MAP_STALE_SECONDS.labels(self.backend).set(stale)
