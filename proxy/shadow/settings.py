"""The `shadow:` block of the config file: sampling, the worker pool, the gate's threshold."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from foundation.redis_settings import RedisSettings

Rate = Annotated[float, Field(ge=0, le=1)]
Url = Annotated[str, Field(min_length=1, max_length=2048)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ShadowConnection(_Model):
    """One connection's sampling rate and what its new-provider import accepts."""

    sample_rate: Rate | None = None  # None: `default_sample_rate`
    # Empty: the map's legacy.callback_url (Destination/Recipient), legacy.sp_entity_id (Audience).
    accepted_destinations: tuple[Url, ...] = ()
    accepted_audiences: tuple[Url, ...] = ()
    # SAML attribute names the new provider's mapping needs, beyond the map's saml.attributes.
    required_attributes: tuple[Annotated[str, Field(min_length=1, max_length=256)], ...] = ()


class ShadowRedis(RedisSettings):
    """Readiness counts shared by every replica and the CLI."""

    config_key: ClassVar[str] = "shadow.redis"


class ShadowSettings(_Model):
    """Shadow checks of fall-through SAML callbacks; off unless a rate is above 0."""

    default_sample_rate: Rate = 0.0
    connections: dict[str, ShadowConnection] = Field(default_factory=dict)
    # Samples waiting for a worker; beyond this they are dropped (and counted).
    queue_size: Annotated[int, Field(ge=1, le=100_000)] = 256
    workers: Annotated[int, Field(ge=1, le=64)] = 2
    # CPU the checks may take, as a share of one core per proxy process, averaged (bursts of
    # 0.1 CPU-second); a sample drawn beyond it is dropped and counted (`cpu_budget`).
    max_cpu_share: Annotated[float, Field(gt=0, le=64)] = 0.25
    redis: ShadowRedis | None = None  # None: counts in this process's memory
    # The gate: enabling a connection needs at least this many samples at this ratio.
    # The gate (`flags enable`, `flags stage`): off by default; needs `redis`, where the counts
    # of every replica meet. A connection needs this many samples at this ratio to move.
    gate: bool = False
    min_samples: Annotated[int, Field(ge=0, le=1_000_000)] = 50
    min_accept_ratio: Rate = 0.99

    @model_validator(mode="after")
    def _gate_needs_redis(self) -> ShadowSettings:
        if self.gate and self.redis is None:
            raise ValueError("'gate' needs 'redis': the CLI reads the replicas' counts there")
        return self

    def for_connection(self, connection_id: str) -> ShadowConnection:
        return self.connections.get(connection_id) or ShadowConnection()

    def rate(self, connection_id: str) -> float:
        entry = self.connections.get(connection_id)
        if entry is not None and entry.sample_rate is not None:
            return entry.sample_rate
        return self.default_sample_rate

    @property
    def sampling(self) -> bool:
        return self.default_sample_rate > 0 or any(c.sample_rate for c in self.connections.values())

    def resolve_paths(self, base: Path) -> ShadowSettings:
        if self.redis is None:
            return self
        return self.model_copy(update={"redis": self.redis.resolve_paths(base)})
