"""One settings model for every Redis authswitch talks to (flags, connection map, broker).

The sections of the config that use Redis (``flags.redis``, ``connection_map_redis``,
``broker.redis``) extend ``RedisSettings`` with what only they need (resync period, readiness
rule), so the server, its credentials, TLS and the timeout are spelled, validated and turned
into a client the same way everywhere.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from foundation.secret_file import read_secret_file

if TYPE_CHECKING:
    # The client library loads with the first client: a config that names no Redis (or a
    # process that only validates it) doesn't pay for it.
    import redis
    import redis.asyncio

    from foundation.redis_client import RedisTopology

KEY_PREFIX_PATTERN = r"^[A-Za-z0-9_.:{}-]{1,100}$"
"""A deployment's key namespace; ``{...}`` is a Redis Cluster hash tag."""
HASH_TAG_PATTERN = re.compile(r"\{[^{}]+\}")
SENTINEL_ADDRESS_PATTERN = r"^[A-Za-z0-9_.:\[\]-]{1,253}:[0-9]{1,5}$"


class SentinelSettings(BaseModel):
    """Where the Sentinels are and which master of theirs is authswitch's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    master_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")]
    addresses: Annotated[
        list[Annotated[str, Field(pattern=SENTINEL_ADDRESS_PATTERN)]],
        Field(min_length=1, max_length=16),
    ]
    # The Sentinels' own password (``requirepass`` of sentinel.conf), from a mounted file.
    password_file: Path | None = None
    tls: bool = False

    def parsed_addresses(self) -> tuple[tuple[str, int], ...]:
        pairs = (address.rsplit(":", 1) for address in self.addresses)
        return tuple((host.strip("[]"), int(port)) for host, port in pairs)


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
    # standalone: the url's server; sentinel: the master the Sentinels name; cluster: a Redis
    # Cluster the url's server belongs to (the key prefix must then hold a hash tag).
    topology: Literal["standalone", "sentinel", "cluster"] = "standalone"
    sentinel: SentinelSettings | None = None
    # A client certificate and its key (PEM) for servers that require mutual TLS.
    cert_file: Path | None = None
    key_file: Path | None = None
    # Send CLIENT SETNAME on connect (shows in CLIENT LIST); off: managed Redis may refuse it.
    client_name: bool = False
    # False for managed Redis that forbids pub/sub: followers poll the version every
    # poll_seconds instead of subscribing, writers don't PUBLISH.
    pubsub: bool = True
    poll_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        tls = self.url.startswith("rediss://")
        for name in ("ca_file", "cert_file", "key_file"):
            if getattr(self, name) is not None and not tls:
                raise ValueError(f"'{name}' is set but the url is not rediss:// (TLS)")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("'cert_file' and 'key_file' go together (a certificate and its key)")
        if self.topology == "sentinel" and self.sentinel is None:
            raise ValueError(
                "topology 'sentinel' needs a 'sentinel' block (master_name, addresses)"
            )
        if self.topology != "sentinel" and self.sentinel is not None:
            raise ValueError(f"a 'sentinel' block is set but the topology is {self.topology!r}")
        if self.topology == "cluster" and not HASH_TAG_PATTERN.search(self.key_prefix):
            raise ValueError(
                f"topology 'cluster' needs a hash tag in key_prefix (e.g. '{{{self.key_prefix}}}') "
                "so that every key of the deployment is in one slot"
            )
        if self.url.startswith("unix://") and self.topology != "standalone":
            raise ValueError(f"a unix:// url can't reach a {self.topology} topology")
        return self

    def redis_topology(self) -> RedisTopology:
        """How clients find the server (``ConfigError`` if a secret file is unreadable)."""
        from foundation.redis_client import RedisTopology

        sentinel = self.sentinel
        sentinel_password = None
        if sentinel is not None and sentinel.password_file is not None:
            key = f"{self.config_key}.sentinel.password_file"
            sentinel_password = read_secret_file(sentinel.password_file, key).decode()
        return RedisTopology(
            kind=self.topology,
            sentinel_master=sentinel.master_name if sentinel else None,
            sentinel_addresses=sentinel.parsed_addresses() if sentinel else (),
            sentinel_password=sentinel_password,
            sentinel_tls=sentinel.tls if sentinel else False,
            cert_file=self.cert_file,
            key_file=self.key_file,
            send_client_name=self.client_name,
        )

    def password(self) -> str | None:
        """The password from `password_file`, if one is set (``ConfigError`` if unreadable)."""
        if self.password_file is None:
            return None
        return read_secret_file(self.password_file, f"{self.config_key}.password_file").decode()

    def resolve_paths(self, base: Path) -> Self:
        """Relative file paths made relative to the config file's directory ``base``."""
        sentinel = self.sentinel
        if sentinel is not None and sentinel.password_file is not None:
            sentinel = sentinel.model_copy(update={"password_file": base / sentinel.password_file})
        return self.model_copy(
            update={
                name: base / path if (path := getattr(self, name)) else None
                for name in ("password_file", "ca_file", "cert_file", "key_file")
            }
            | {"sentinel": sentinel}
        )

    def client(self, client_name: str, *, min_socket_timeout: float = 0.0) -> redis.Redis:
        """A synchronous client; CLIs pass a more patient ``min_socket_timeout``."""
        from foundation.redis_client import connect_redis

        return connect_redis(
            self.url,
            socket_timeout=max(self.socket_timeout_seconds, min_socket_timeout),
            client_name=client_name,
            password=self.password(),
            ca_file=self.ca_file,
            topology=self.redis_topology(),
        )

    def async_client(
        self, client_name: str, *, socket_timeout: float | None = None
    ) -> redis.asyncio.Redis:
        """An asyncio client; ``socket_timeout`` overrides the setting (e.g. a lookup budget)."""
        from foundation.redis_client import connect_async_redis

        return connect_async_redis(
            self.url,
            socket_timeout=socket_timeout or self.socket_timeout_seconds,
            client_name=client_name,
            password=self.password(),
            ca_file=self.ca_file,
            topology=self.redis_topology(),
        )
