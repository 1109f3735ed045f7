"""The service configuration: one YAML file, validated once at start-up."""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from connection_map.routes import Route, Strategy
from flags.settings import Flags as Flags  # re-exported: the flags block owns its models
from flags.settings import OpenFeatureFlag as OpenFeatureFlag
from flags.settings import OpenFeatureFlags as OpenFeatureFlags
from flags.settings import RedisFlags as RedisFlags
from flags.settings import provider_kwargs as provider_kwargs
from foundation.config_error import ConfigError as ConfigError  # re-exported for proxy
from foundation.env_overrides import EnvOverride, apply_overrides, env_overrides
from foundation.key_suggestion import did_you_mean
from foundation.redis_settings import RedisSettings
from foundation.secret_file import read_secret_file as read_secret_file  # re-exported
from foundation.strict_yaml import YamlDocumentError, load_yaml_mapping

# The broker owns its models.
from proxy.broker.config import Broker as Broker
from proxy.console.settings import ConsoleSettings
from proxy.outcomes.settings import OutcomesSettings
from proxy.shadow.settings import ShadowSettings


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


class ConnectionMapRedis(RedisSettings):
    """Replicas serve the map pushed to Redis (``authswitch connections push``), not the file."""

    config_key: ClassVar[str] = "connection_map_redis"

    resync_seconds: Annotated[float, Field(gt=0, le=300)] = 5.0
    # How many pushed maps (the live one included) Redis keeps whole, for `connections rollback`.
    history: Annotated[int, Field(ge=0, le=1000)] = 20


class FlowAffinity(_Model):
    """Flow affinity: the decision endpoint and the flow records callbacks follow."""

    enabled: bool = False
    # A file holding the shared secret the application sends in `secret_header`.
    secret_file: Path | None = None
    secret_header: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,64}$")] = "x-authswitch-secret"  # noqa: S105  (a header name, not a secret)
    ttl_seconds: Annotated[float, Field(ge=1, le=86_400)] = 600.0
    # memory: this process only (one replica, one worker); redis: flags.redis's server and
    # key prefix, shared by every replica. Default: redis when flags.backend is redis.
    store: Literal["memory", "redis"] | None = None
    # On a miss in memory while this replica may not have seen every live record (within one
    # TTL of (re)subscribing): one Redis GET, abandoned after this long.
    lookup_timeout_seconds: Annotated[float, Field(gt=0, le=1)] = 0.05
    max_records: Annotated[int, Field(ge=1, le=10_000_000)] = 200_000

    @model_validator(mode="after")
    def _enabled_needs_secret(self) -> FlowAffinity:
        if self.enabled and self.secret_file is None:
            raise ValueError("'secret_file' is required when flow affinity is enabled")
        return self

    def secret(self) -> bytes:
        """The shared secret from `secret_file`."""
        assert self.secret_file is not None
        return read_secret_file(self.secret_file, "flow_affinity.secret_file", min_bytes=16)


class BounceBack(_Model):
    """The query parameter a new provider adds when it hands a flow back to legacy."""

    param: Annotated[str, Field(min_length=1, max_length=128)] = "authswitch_fallback"
    value: Annotated[str, Field(min_length=1, max_length=128)] = "legacy"


class Limits(_Model):
    max_body_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 256 * 1024
    max_fields: Annotated[int, Field(ge=1, le=10_000)] = 64
    # An upstream answer's head: twice aiohttp's and nginx's 8 KiB line and 128 lines, so an
    # answer a default nginx passes is passed too; beyond them the client gets a clear 502.
    upstream_max_header_bytes: Annotated[int, Field(ge=1024, le=1024 * 1024)] = 16 * 1024
    upstream_max_headers: Annotated[int, Field(ge=16, le=10_000)] = 256
    # Requests upstream at once per worker (legacy and new provider together), one connection
    # each; more queue. Keep it well below the open-file limit (`ulimit -n`), which client
    # connections share.
    upstream_pool_size: Annotated[int, Field(ge=1, le=100_000)] = 100
    # Of those, how many requests that are not callbacks may never take: slow clients of the
    # legacy host (a body sent a byte at a time, an answer read as slowly) then can't hold
    # every upstream connection while callbacks queue. Unset: a quarter of the pool.
    upstream_pool_callback_reserve: Annotated[int | None, Field(ge=0, le=100_000)] = None

    @model_validator(mode="after")
    def _reserve_below_pool(self) -> Limits:
        reserve = self.upstream_pool_callback_reserve
        if reserve is not None and reserve >= self.upstream_pool_size:
            raise ValueError(
                f"limits.upstream_pool_callback_reserve ({reserve}) must be below "
                f"limits.upstream_pool_size ({self.upstream_pool_size}): requests that are not "
                "callbacks would never get an upstream connection"
            )
        return self

    @property
    def callback_reserve(self) -> int:
        """Upstream slots that only callbacks may take."""
        reserve = self.upstream_pool_callback_reserve
        return self.upstream_pool_size // 4 if reserve is None else reserve


class ServerLimits(_Model):
    """The client side of authswitch: what a client may hold open or send before a request."""

    # Above load balancers' idle timeouts (ALB 60 s, nginx upstream keepalive 60 s): the
    # balancer, not authswitch, must close an idle connection, or a request meets a closing one.
    idle_seconds: Annotated[int, Field(ge=1, le=3600)] = 75
    header_seconds: Annotated[float, Field(gt=0, le=300)] = 10.0
    max_header_bytes: Annotated[int, Field(ge=1024, le=1024 * 1024)] = 32 * 1024
    max_headers: Annotated[int, Field(ge=8, le=1000)] = 100
    max_connections: Annotated[int, Field(ge=1, le=1_000_000)] = 2048


class Timeouts(_Model):
    connect_seconds: Annotated[float, Field(gt=0, le=60)] = 3.0
    read_seconds: Annotated[float, Field(gt=0, le=600)] = 30.0
    body_seconds: Annotated[float, Field(gt=0, le=600)] = 15.0
    # A forwarded exchange whose client stops sending its streamed body, or stops reading the
    # answer, for this long is cut within one more such period (nginx's client_body_timeout
    # and send_timeout): it would hold an upstream connection and its pool slot for as long
    # as the client likes.
    client_idle_seconds: Annotated[float, Field(gt=0, le=3600)] = 60.0
    # Below the upstream's own idle timeout, so a pooled connection is never reused just as
    # the upstream closes it (a single-use callback can't be retried).
    upstream_keepalive_seconds: Annotated[float, Field(ge=0, le=300)] = 4.0
    # How long a request queues for a pooled upstream connection before it gets 503
    # `upstream_busy` (never sent upstream, so a client may safely try again).
    upstream_pool_wait_seconds: Annotated[float, Field(gt=0, le=300)] = 10.0


_CSP_SOURCE = r"^(https?:|https?://[A-Za-z0-9.*-]+(:[0-9]{1,5})?)$"


class Forwarding(_Model):
    trust_forwarded_headers: bool = False
    forward_cookies_to_new_provider: bool = False
    # CSP form-action sources besides the new provider's own origin: where its ACS redirects
    # after the auto-posted form (Chrome enforces form-action on those redirects too).
    form_post_redirect_sources: tuple[Annotated[str, Field(pattern=_CSP_SOURCE)], ...] = ("https:",)


class Logging(_Model):
    level: Literal["debug", "info", "warning", "error"] = "info"
    # Field names of the JSON lines: authswitch's own (ts, level, event, request_id, ...) or
    # the Elastic Common Schema's (@timestamp, log.level, message, http.request.id, ...).
    format: Literal["authswitch", "ecs"] = "authswitch"


class Tracing(_Model):
    """Request correlation (request id, W3C trace context) and OpenTelemetry spans."""

    # Header whose value (when 1-128 safe characters) becomes the request id of the log line
    # and of answers; what a load balancer sets (nginx $request_id, Envoy, Heroku, ...).
    request_id_header: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,64}$")] = "x-request-id"
    # Add the request id authswitch made to upstream requests that arrived without one. Off:
    # legacy receives exactly what it would have without authswitch.
    send_request_id: bool = False
    # OpenTelemetry spans per callback and passed-through request (`authswitch[tracing]`);
    # the exporter, sampler and resource come from the standard OTEL_* environment variables.
    enabled: bool = False
    # With tracing on, upstreams get authswitch's span as their parent in `traceparent`
    # (their spans nest under authswitch's). Off: they get the caller's trace context as it
    # arrived, so their spans are siblings of authswitch's under the load balancer's span.
    propagate: bool = False

    @model_validator(mode="after")
    def _opentelemetry_installed(self) -> Tracing:
        if self.enabled and importlib.util.find_spec("opentelemetry.sdk") is None:
            raise ValueError(
                "tracing.enabled needs OpenTelemetry: pip install 'authswitch[tracing]'"
            )
        if self.propagate and not self.enabled:
            raise ValueError("tracing.propagate needs tracing.enabled: true")
        return self


class Metrics(_Model):
    """What the metrics say; they are served by the ops listener (``ops``), added up over all
    workers."""

    # Connections beyond this many distinct ids share the label value "other".
    max_connection_labels: Annotated[int, Field(ge=1, le=100_000)] = 500

    @model_validator(mode="before")
    @classmethod
    def _moved_to_ops(cls, data: Any) -> Any:
        # An old config's metrics port would silently stop meaning anything (and `port: null`
        # used to publish the metrics on the public listener, which nothing does any more).
        if isinstance(data, dict):
            moved = [key for key in ("host", "port") if key in data]
            if moved:
                keys = " and ".join(f"'metrics.{key}'" for key in moved)
                new = " and ".join(f"'ops.{key}'" for key in moved)
                raise ValueError(
                    f"{keys} moved to {new}: the ops listener serves /metrics, /livez and "
                    "/readyz; the public listener serves none of them"
                )
        return data


class Ops(_Model):
    """The ops listener: /livez, /readyz, /metrics and the console, never on the public port."""

    # Loopback by default: readyz names files and map sources, the metrics name every
    # connection. A container binds 0.0.0.0 (AUTHSWITCH__OPS__HOST) behind a NetworkPolicy.
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 9464
    header_seconds: Annotated[float, Field(gt=0, le=300)] = 5.0
    max_connections: Annotated[int, Field(ge=1, le=100_000)] = 256


class Config(_Model):
    """Everything `authswitch serve` needs, validated."""

    listen: Listen = Listen()
    legacy: Legacy
    connection_map: Path
    # Set: replicas serve the map pushed to Redis; `connection_map` is then the file the
    # `connections` commands import into and push from.
    connection_map_redis: ConnectionMapRedis | None = None
    flags: Flags
    routes: Annotated[tuple[Route, ...], Field(min_length=1)]
    bounce_back: BounceBack = BounceBack()
    limits: Limits = Limits()
    server: ServerLimits = ServerLimits()
    timeouts: Timeouts = Timeouts()
    forwarding: Forwarding = Forwarding()
    logging: Logging = Logging()
    metrics: Metrics = Metrics()
    ops: Ops = Ops()
    tracing: Tracing = Tracing()
    flow_affinity: FlowAffinity = FlowAffinity()
    # Where the public listener serves the broker's hooks and the flow-start endpoint; every
    # other path under it is the legacy host's (nothing operational is served there).
    ops_prefix: Annotated[str, Field(pattern=r"^/[A-Za-z0-9_.-]+$")] = "/_authswitch"
    broker: Broker = Broker()
    outcomes: OutcomesSettings = OutcomesSettings()
    shadow: ShadowSettings = ShadowSettings()
    console: ConsoleSettings = ConsoleSettings()

    @model_validator(mode="after")
    def _oidc_state_needs_flow_affinity(self) -> Config:
        for index, route in enumerate(self.routes):
            if Strategy.OIDC_STATE in route.identify and not self.flow_affinity.enabled:
                raise ValueError(
                    f"routes[{index}]: strategy 'oidc_state' needs flow_affinity.enabled: true"
                )
        return self

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
                "connection_map_redis": self.connection_map_redis.resolve_paths(base)
                if self.connection_map_redis is not None
                else None,
                "flags": self.flags.resolve_paths(base),
                "flow_affinity": self.flow_affinity.model_copy(
                    update={
                        "secret_file": base / self.flow_affinity.secret_file
                        if self.flow_affinity.secret_file is not None
                        else None
                    }
                ),
                "broker": self.broker.resolve_paths(base),
                "outcomes": self.outcomes.resolve_paths(base),
                "shadow": self.shadow.resolve_paths(base),
                "console": self.console.resolve_paths(base),
            }
        )


def load_config(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
) -> Config:
    """Read and validate a configuration file, with the ``AUTHSWITCH__...`` environment
    variables of ``environ`` (default: this process's) over it; raise ConfigError naming file,
    key (or variable) and problem."""
    file = Path(path)
    try:
        raw = load_yaml_mapping(file.read_bytes())
    except OSError as exc:
        raise ConfigError(f"config '{file}': cannot read file: {exc.strerror}") from None
    except YamlDocumentError as exc:
        raise ConfigError(f"config '{file}': {exc}") from None
    overrides = env_overrides(os.environ if environ is None else environ)
    return parse_config(apply_overrides(raw, overrides), source=file, overrides=overrides)


def parse_config(raw: Any, *, source: Path, overrides: Sequence[EnvOverride] = ()) -> Config:
    """Validate an already-parsed configuration mapping."""
    if not isinstance(raw, dict):
        raise ConfigError(f"config '{source}': top level must be a mapping")
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        problems = [
            _describe_problem(err["loc"], err["type"], err["msg"], overrides)
            for err in exc.errors(include_url=False, include_input=False)
        ]
        raise ConfigError(f"config '{source}': " + "; ".join(problems)) from None
    return config.resolve_paths(source.parent)


def _describe_problem(
    loc: tuple[str | int, ...], kind: str, message: str, overrides: Sequence[EnvOverride]
) -> str:
    key = ".".join(str(p) for p in loc) or "(top level)"
    hint = ""
    if kind == "extra_forbidden" and loc and isinstance(loc[-1], str):
        hint = did_you_mean(loc[-1], Config, loc[:-1])
    origin = next((o.variable for o in overrides if loc[: len(o.path)] == o.path), None)
    where = f" (set by {origin})" if origin else ""
    return f"key '{key}'{where}: {message}{hint}"
