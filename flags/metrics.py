"""Prometheus gauges for the flag state a process routes with: version, staleness, backend up.

Plain gauges set by the providers (on every sync, every failed attempt and every file poll),
so that prometheus-client's multiprocess mode can add up the workers of `authswitch serve`:
``liveall`` keeps one series per live worker (label ``pid``). While Redis is unreachable the
staleness is refreshed on each reconnect attempt, at least every ``resync_seconds``.
"""

from __future__ import annotations

from prometheus_client import Gauge

from flags.route_provider import FlagSourceHealth

FLAGS_VERSION = Gauge(
    "authswitch_flags_version",
    "Version of the rollout state this process routes with (-1: none known).",
    ["backend"],
    multiprocess_mode="liveall",
)
FLAGS_STALE_SECONDS = Gauge(
    "authswitch_flags_stale_seconds",
    "While the flag backend can't be read: seconds since the state in memory was last "
    "confirmed against it (0 when fresh).",
    ["backend"],
    multiprocess_mode="liveall",
)
FLAGS_STATE_KNOWN = Gauge(
    "authswitch_flags_state_known",
    "1 when a rollout state is known; 0 while every connection gets legacy because none ever was.",
    ["backend"],
    multiprocess_mode="liveall",
)
REDIS_UP = Gauge(
    "authswitch_redis_up",
    "1 when the flag provider's last Redis operation succeeded, 0 when it failed.",
    multiprocess_mode="liveall",
)


def publish_health(health: FlagSourceHealth) -> None:
    """Set the gauges from a provider's health."""
    backend = health.backend
    FLAGS_VERSION.labels(backend).set(health.version if health.version is not None else -1)
    FLAGS_STALE_SECONDS.labels(backend).set((health.stale_seconds or 0.0) if health.stale else 0.0)
    FLAGS_STATE_KNOWN.labels(backend).set(1 if health.has_state else 0)
