"""The service configuration: one YAML file, validated once at start-up."""

from __future__ import annotations

import os
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from connection_map.yaml_document import YamlDocumentError, load_yaml_mapping
from flags.redis_keys import KEY_PREFIX_PATTERN

_TEMPLATE_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::path)?\}")


class ConfigError(Exception):
    """The configuration can't be used; the message names the file, the key and the problem."""


class Strategy(StrEnum):
    """A way to tell which connection a callback belongs to."""

    PATH = "path"  # the {connection} segment of the route path
    QUERY = "query"  # a query parameter (route.query_param)
    SAML_ISSUER = "saml_issuer"  # the Issuer of the SAMLResponse
    CALLBACK_PATH = "callback_path"  # the request path is a connection's own OIDC callback path


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Listen(_Model):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080


class Legacy(_Model):
    url: AnyHttpUrl
    preserve_host: bool = True

    @field_validator("url")
    @classmethod
    def _no_query(cls, value: AnyHttpUrl) -> AnyHttpUrl:
        if value.query or value.fragment:
            raise ValueError("must not have a query or fragment")
        return value


class RedisFlags(_Model):
    """Where the shared rollout state lives when ``flags.backend`` is ``redis``."""

    url: Annotated[str, Field(pattern=r"^(rediss?|unix)://", max_length=2048)] = (
        "redis://127.0.0.1:6379/0"
    )
    key_prefix: Annotated[str, Field(pattern=KEY_PREFIX_PATTERN)] = "authswitch"
    resync_seconds: Annotated[float, Field(gt=0, le=300)] = 5.0
    socket_timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 0.5
    stale_error_after_seconds: Annotated[float, Field(ge=0, le=86_400)] = 60.0
    # A file holding the Redis password (a mounted Secret), so it never sits in the config.
    password_file: Path | None = None
    # false (default): a replica serving its last known good state stays ready while Redis is
    # unreachable, so an outage of Redis can't take every replica out of the load balancer.
    # true: /readyz answers 503 while Redis is unreachable.
    ready_requires_redis: bool = False

    def password(self) -> str | None:
        """The password from `password_file` (trailing newline removed), if one is set."""
        if self.password_file is None:
            return None
        try:
            return self.password_file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(
                f"flags.redis.password_file '{self.password_file}': cannot read: {exc.strerror}"
            ) from None


class Flags(_Model):
    backend: Literal["file", "redis"] = "file"
    file: Path | None = None
    poll_interval_seconds: Annotated[float, Field(gt=0, le=60)] = 0.5
    audit_file: Path | None = None  # file backend; default: <file stem>.audit.jsonl beside it
    redis: RedisFlags = RedisFlags()

    @model_validator(mode="after")
    def _file_backend_needs_file(self) -> Flags:
        if self.backend == "file" and self.file is None:
            raise ValueError("'file' is required when backend is 'file'")
        return self

    def resolve_paths(self, base: Path) -> Flags:
        return self.model_copy(
            update={
                "file": base / self.file if self.file is not None else None,
                "audit_file": base / self.audit_file if self.audit_file is not None else None,
                "redis": self.redis.model_copy(
                    update={
                        "password_file": base / self.redis.password_file
                        if self.redis.password_file is not None
                        else None
                    }
                ),
            }
        )


class Route(_Model):
    """A legacy callback URL authswitch intercepts."""

    path: Annotated[str, Field(pattern=r"^/", max_length=1024)]
    protocol: Literal["saml", "oidc"]
    identify: Annotated[tuple[Strategy, ...], Field(min_length=1)]
    query_param: Annotated[str, Field(min_length=1, max_length=128)] = "connection"
    methods: tuple[Literal["GET", "POST"], ...] = ("GET", "POST")

    @model_validator(mode="after")
    def _check_strategies(self) -> Route:
        params = _TEMPLATE_PARAM.findall(self.path)
        repeated = sorted({p for p in params if params.count(p) > 1})
        if repeated:  # the route table compiles each to a named group: names must be unique
            raise ValueError(f"'{{{repeated[0]}}}' appears more than once in the path")
        if Strategy.PATH in self.identify and "connection" not in params:
            raise ValueError("strategy 'path' needs a '{connection}' segment in the path")
        if Strategy.SAML_ISSUER in self.identify and self.protocol != "saml":
            raise ValueError("strategy 'saml_issuer' only applies to saml routes")
        if len(set(self.identify)) != len(self.identify):
            raise ValueError("a strategy is listed twice in 'identify'")
        return self


class BounceBack(_Model):
    """The query parameter a new provider adds when it hands a flow back to legacy."""

    param: Annotated[str, Field(min_length=1, max_length=128)] = "authswitch_fallback"
    value: Annotated[str, Field(min_length=1, max_length=128)] = "legacy"


class Limits(_Model):
    max_body_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 256 * 1024
    max_fields: Annotated[int, Field(ge=1, le=10_000)] = 64


class Timeouts(_Model):
    connect_seconds: Annotated[float, Field(gt=0, le=60)] = 3.0
    read_seconds: Annotated[float, Field(gt=0, le=600)] = 30.0
    body_seconds: Annotated[float, Field(gt=0, le=600)] = 15.0
    # Below the upstream's own idle timeout, so a pooled connection is never reused just as
    # the upstream closes it (a single-use callback can't be retried).
    upstream_keepalive_seconds: Annotated[float, Field(ge=0, le=300)] = 4.0


_CSP_SOURCE = r"^(https?:|https?://[A-Za-z0-9.*-]+(:[0-9]{1,5})?)$"


class Forwarding(_Model):
    trust_forwarded_headers: bool = False
    forward_cookies_to_new_provider: bool = False
    # CSP form-action sources besides the new provider's own origin: where its ACS redirects
    # after the auto-posted form (Chrome enforces form-action on those redirects too).
    form_post_redirect_sources: tuple[Annotated[str, Field(pattern=_CSP_SOURCE)], ...] = ("https:",)


class Logging(_Model):
    level: Literal["debug", "info", "warning", "error"] = "info"


class Metrics(_Model):
    """Prometheus metrics on a port of their own, aggregated over all workers."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] | None = 9464  # None: only under ops_prefix
    # Connections beyond this many distinct ids share the label value "other".
    max_connection_labels: Annotated[int, Field(ge=1, le=100_000)] = 500


class Config(_Model):
    """Everything `authswitch serve` needs, validated."""

    listen: Listen = Listen()
    legacy: Legacy
    connection_map: Path
    flags: Flags
    routes: Annotated[tuple[Route, ...], Field(min_length=1)]
    bounce_back: BounceBack = BounceBack()
    limits: Limits = Limits()
    timeouts: Timeouts = Timeouts()
    forwarding: Forwarding = Forwarding()
    logging: Logging = Logging()
    metrics: Metrics = Metrics()
    ops_prefix: Annotated[str, Field(pattern=r"^/[A-Za-z0-9_.-]+$")] = "/_authswitch"

    @field_validator("routes")
    @classmethod
    def _unique_routes(cls, routes: tuple[Route, ...]) -> tuple[Route, ...]:
        paths = [r.path for r in routes]
        duplicates = sorted({p for p in paths if paths.count(p) > 1})
        if duplicates:
            raise ValueError(f"route path {duplicates[0]!r} is listed more than once")
        return routes

    def resolve_paths(self, base: Path) -> Config:
        """Make relative file paths relative to the config file's directory."""
        return self.model_copy(
            update={
                "connection_map": base / self.connection_map,
                "flags": self.flags.resolve_paths(base),
            }
        )


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a configuration file; raise ConfigError naming file, key and problem."""
    file = Path(path)
    try:
        raw = load_yaml_mapping(file.read_bytes())
    except OSError as exc:
        raise ConfigError(f"config '{file}': cannot read file: {exc.strerror}") from None
    except YamlDocumentError as exc:
        raise ConfigError(f"config '{file}': {exc}") from None
    return parse_config(raw, source=file)


def parse_config(raw: Any, *, source: Path) -> Config:
    """Validate an already-parsed configuration mapping."""
    if not isinstance(raw, dict):
        raise ConfigError(f"config '{source}': top level must be a mapping")
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        problems = [
            f"key '{'.'.join(str(p) for p in err['loc']) or '(top level)'}': {err['msg']}"
            for err in exc.errors(include_url=False, include_input=False)
        ]
        raise ConfigError(f"config '{source}': " + "; ".join(problems)) from None
    return config.resolve_paths(source.parent)
