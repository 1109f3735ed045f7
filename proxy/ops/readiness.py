"""Readiness: whether a replica can route (map loaded, flag state known), and if not, why."""

from __future__ import annotations

from typing import TYPE_CHECKING

from openfeature.client import OpenFeatureClient
from openfeature.provider import FeatureProvider, ProviderStatus

from flags import ReportsFlagHealth
from foundation.version import authswitch_version

if TYPE_CHECKING:
    from proxy.broker.service import PasswordBroker
    from proxy.map_backend import MapSource


def readiness_report(
    *,
    started: bool,
    flags_client: OpenFeatureClient,
    flag_provider: FeatureProvider,
    ready_requires_redis: bool,
    connection_map: MapSource,
    broker: PasswordBroker | None,
) -> tuple[int, dict[str, object]]:
    """The /readyz status (200 or 503) and body: what is missing, what is degraded, the checks."""
    flag_status = flags_client.get_provider_status()
    flags: dict[str, object] = {"provider_status": flag_status.value}
    missing: list[str] = []
    if not started:
        missing.append("not started")
    if flag_status not in (ProviderStatus.READY, ProviderStatus.STALE, ProviderStatus.ERROR):
        missing.append(f"flag provider is {flag_status.value}")
    # Stale or in ERROR with a last known good state still routes: a flag backend outage
    # must not take replicas out of the load balancer (unless ready_requires_redis).
    if isinstance(flag_provider, ReportsFlagHealth):
        health = flag_provider.health()
        flags.update(health.as_dict())
        if not health.has_state:
            missing.append("no flag state known yet (every connection goes to legacy)")
        elif health.stale and ready_requires_redis:
            missing.append("flag backend unreachable (serving the last known state)")
    map_health = connection_map.health()
    if not map_health.loaded:
        missing.append("no connection map known yet (every callback goes to legacy)")
    checks: dict[str, object] = {
        "started": started,
        "connection_map": map_health.as_dict(),
        "flags": flags,
    }
    # Not routing, but serving less: the broker denies every hook without its Redis.
    degraded: list[str] = []
    if broker is not None and started:
        reachable = broker.redis_reachable
        checks["broker"] = {"redis_reachable": reachable}
        if not reachable:
            problem = "broker Redis unreachable (every password hook is denied)"
            requires = broker.config.redis.ready_requires_redis
            (missing if requires else degraded).append(problem)
    ready = not missing
    report = {
        "ready": ready,
        "version": authswitch_version(),
        "missing": missing,
        "degraded": degraded,
        "checks": checks,
    }
    return (200 if ready else 503), report
