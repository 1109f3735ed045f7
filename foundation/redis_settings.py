"""One settings model for every Redis authswitch talks to (flags, connection map, broker).

The sections of the config that use Redis (``flags.redis``, ``connection_map_redis``,
``broker.redis``) extend ``RedisSettings`` with what only they need (resync period, readiness
rule), so the server, its credentials, TLS and the timeout are spelled, validated and turned
into a client the same way everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Self

import redis
import redis.asyncio
from pydantic import BaseModel, ConfigDict, Field, model_validator

from foundation.redis_client import connect_async_redis, connect_redis
from foundation.secret_file import read_secret_file

KEY_PREFIX_PATTERN = r"^[A-Za-z0-9_.:{}-]{1,100}$"
"""A deployment's key namespace; ``{...}`` is a Redis Cluster hash tag."""


class RedisSettings(BaseModel):
    """A Redis server, how to log in and verify it, and how long a command may take."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    config_key: ClassVar[str] = "redis"
    """Where the section sits in the config file, for error messages."""

    url: Annotated[str, Field(pattern=r"^(rediss?|unix)://", max_length=2048)] = (
        "redis://127.0.0.1:6379/0"
    )
    key_prefix: Annotated[str, Field(pattern=KEY_PREFIX_PATTERN)] = "authswitch"
    # A file holding the Redis password (a mounted Secret), so it never sits in the config.
    password_file: Path | None = None
    # The CA bundle (PEM) that verifies a rediss:// server's certificate; default: the system's.
    ca_file: Path | None = None
    socket_timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 0.5

    @model_validator(mode="after")
    def _ca_file_needs_tls(self) -> Self:
        if self.ca_file is not None and not self.url.startswith("rediss://"):
            raise ValueError("'ca_file' is set but the url is not rediss:// (TLS)")
        return self

    def password(self) -> str | None:
        """The password from `password_file`, if one is set (``ConfigError`` if unreadable)."""
        if self.password_file is None:
            return None
        return read_secret_file(self.password_file, f"{self.config_key}.password_file").decode()

    def resolve_paths(self, base: Path) -> Self:
        """Relative file paths made relative to the config file's directory ``base``."""
        return self.model_copy(
            update={
                "password_file": base / self.password_file if self.password_file else None,
                "ca_file": base / self.ca_file if self.ca_file else None,
            }
        )

    def client(self, client_name: str, *, min_socket_timeout: float = 0.0) -> redis.Redis:
        """A synchronous client; CLIs pass a more patient ``min_socket_timeout``."""
        return connect_redis(
            self.url,
            socket_timeout=max(self.socket_timeout_seconds, min_socket_timeout),
            client_name=client_name,
            password=self.password(),
            ca_file=self.ca_file,
        )

    def async_client(
        self, client_name: str, *, socket_timeout: float | None = None
    ) -> redis.asyncio.Redis:
        """An asyncio client; ``socket_timeout`` overrides the setting (e.g. a lookup budget)."""
        return connect_async_redis(
            self.url,
            socket_timeout=socket_timeout or self.socket_timeout_seconds,
            client_name=client_name,
            password=self.password(),
            ca_file=self.ca_file,
        )
