"""Building the shadow checks from the config: the sampler for `serve`, the store for the CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxy.map_backend import served_map_source
from proxy.shadow.imports import ImportedConnections
from proxy.shadow.readiness_store import (
    MemoryReadinessStore,
    ReadinessStore,
    RedisReadinessStore,
)
from proxy.shadow.sampler import ShadowSampler
from proxy.shadow.settings import ShadowSettings

if TYPE_CHECKING:
    from proxy.config import Config


def readiness_store_for(settings: ShadowSettings, *, cli: bool = False) -> ReadinessStore:
    """Redis when `shadow.redis` is set (shared by replicas and the CLI), else memory."""
    if settings.redis is None:
        return MemoryReadinessStore()
    client = settings.redis.client(
        "authswitch-shadow-cli" if cli else "authswitch-shadow",
        min_socket_timeout=5.0 if cli else 0.0,
    )
    return RedisReadinessStore(client, settings.redis.key_prefix)


def shadow_sampler_for(config: Config) -> ShadowSampler | None:
    """The sampler, or None while no connection has a sample rate above 0 (the default)."""
    if not config.shadow.sampling:
        return None
    return ShadowSampler(
        config.shadow,
        ImportedConnections(served_map_source(config)),
        readiness_store_for(config.shadow),
        max_connection_labels=config.metrics.max_connection_labels,
    )
