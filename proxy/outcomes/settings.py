"""The `outcomes:` block of the config file: where counts live, their sources and the guard.

Validated once at start-up with the rest of the config; secrets stay in files named here and
are read when a source starts (``read_secret_file``), never kept in the config object.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator, model_validator

from foundation.redis_settings import RedisSettings

DAY_SECONDS = 86_400


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _regex(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
    return value


class AnswerRule(_Model):
    """How a proxied answer is read: 5xx failed; a redirect to an error page failed."""

    # A 302/303/307 whose Location matches this (re.search) is a failed login.
    error_location: Annotated[str, Field(max_length=1024)] | None = r"[?&]error="
    # Statuses below 500 that also mean failed (e.g. 400, 401, 403 from a callback handler).
    failed_statuses: tuple[Annotated[int, Field(ge=100, le=599)], ...] = ()

    _check_regex = field_validator("error_location")(_regex)


class ProxyObservation(_Model):
    """Outcomes read from the answers of the callbacks authswitch proxies itself."""

    enabled: bool = True
    default: AnswerRule = AnswerRule()
    # Route path (as in `routes[].path`) -> its own rule.
    routes: dict[str, AnswerRule] = Field(default_factory=dict)
    # Observations waiting for the background flush; beyond this the oldest are dropped
    # (and counted): the callback path never waits for the store.
    buffer_size: Annotated[int, Field(ge=100, le=10_000_000)] = 100_000
    flush_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0


class WorkosEvents(_Model):
    """WorkOS `authentication.sso_succeeded` / `sso_failed` events: webhooks and/or the API."""

    enabled: bool = False
    # Webhook: POST <outcomes.path_prefix>/workos, signed with this secret.
    webhook_secret_file: Path | None = None
    tolerance_seconds: Annotated[float, Field(gt=0, le=3600)] = 180.0
    # Events API poller: GET <api_url>/events with the API key as bearer token.
    poll: bool = False
    api_url: AnyHttpUrl = AnyHttpUrl("https://api.workos.com")
    api_key_file: Path | None = None
    poll_seconds: Annotated[float, Field(ge=0.05, le=3600)] = 10.0
    timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 10.0
    # Where the poller's cursor is kept without Redis (with Redis: a key beside the counts).
    cursor_file: Path | None = None

    @model_validator(mode="after")
    def _complete(self) -> WorkosEvents:
        if self.enabled and self.webhook_secret_file is None and not self.poll:
            raise ValueError("give 'webhook_secret_file', or 'poll: true', or both")
        if self.poll and self.api_key_file is None:
            raise ValueError("'api_key_file' is required when 'poll' is true")
        return self


class GenericWebhook(_Model):
    """POST <outcomes.path_prefix>/generic: any provider's outcomes, HMAC-signed JSON."""

    enabled: bool = False
    secret_file: Path | None = None
    tolerance_seconds: Annotated[float, Field(gt=0, le=3600)] = 300.0

    @model_validator(mode="after")
    def _complete(self) -> GenericWebhook:
        if self.enabled and self.secret_file is None:
            raise ValueError("'secret_file' is required when the generic webhook is enabled")
        return self


class Auth0LogStream(_Model):
    """POST <outcomes.path_prefix>/auth0: an Auth0 log stream (custom webhook) - the legacy
    side's logins, per connection, including from before a connection's flip."""

    enabled: bool = False
    # The stream's "Authorization Token": the exact Authorization header value it sends.
    token_file: Path | None = None
    success_types: tuple[Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")], ...] = ("s",)
    failure_types: tuple[Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")], ...] = ("f",)
    # Auth0 connection name -> authswitch connection id; a name not listed is taken as the id.
    connections: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _complete(self) -> Auth0LogStream:
        if self.enabled and self.token_file is None:
            raise ValueError("'token_file' is required when the Auth0 log stream is enabled")
        return self


class GuardSettings(_Model):
    """The rollout guard: kills (override `off`) a connection failing at the new provider."""

    mode: Literal["off", "observe", "enforce"] = "observe"
    interval_seconds: Annotated[float, Field(ge=0.05, le=3600)] = 5.0
    lease_seconds: Annotated[float, Field(ge=1, le=3600)] = 15.0
    # Wald's SPRT: kill when the likelihood ratio of "failing" vs "as good as legacy" exceeds
    # 1/false_kill_rate (Ville's inequality bounds the chance a healthy connection ever gets
    # there, however often the guard looks).
    false_kill_rate: Annotated[float, Field(gt=0, lt=0.5)] = 0.002
    # "Failing" means a failure rate of max(baseline * relative_increase, baseline + this),
    # the baseline's point estimate (and at least 0.05 above the baseline's upper bound).
    absolute_increase: Annotated[float, Field(gt=0, lt=1)] = 0.15
    relative_increase: Annotated[float, Field(gt=1, le=100)] = 4.0
    min_new_samples: Annotated[int, Field(ge=1, le=100_000)] = 3
    # The legacy baseline: this connection's legacy outcomes over `baseline_days`; with fewer
    # than `min_baseline_samples`, `default_baseline_failure_rate` stands in.
    baseline_days: Annotated[float, Field(gt=0, le=14)] = 7.0
    min_baseline_samples: Annotated[int, Field(ge=1, le=1_000_000)] = 100
    default_baseline_failure_rate: Annotated[float, Field(gt=0, lt=0.5)] = 0.05
    min_baseline_failure_rate: Annotated[float, Field(gt=0, lt=0.5)] = 0.01
    # The new side's evidence counts from the flip, at most this far back.
    window_hours: Annotated[float, Field(gt=0, le=336)] = 24.0
    # Silence: this many callbacks forwarded to the new provider and no success event for
    # `silence_minutes` (ending `silence_grace_minutes` ago), while the event source is alive.
    silence_min_forwarded: Annotated[int, Field(ge=1, le=100_000)] = 10
    silence_minutes: Annotated[float, Field(gt=0, le=1440)] = 15.0
    silence_grace_minutes: Annotated[float, Field(ge=0, le=60)] = 5.0
    # The new side is judged on provider events when a provider source is enabled, else on
    # the answers authswitch proxied (proxy mode only).
    new_side_source: Literal["auto", "events", "proxy"] = "auto"
    # Turn connections off on the proxy's own counts too (the answers it proxied, the callbacks
    # it forwarded: what silence is measured by). Off by default: anyone can send callbacks,
    # so forged ones could read as failures or silence. Verdicts on them are reported anyway.
    act_on_proxy_counts: bool = False


class PromotionSettings(_Model):
    """`rollout plan`: the stage steps and how long each must soak before the next."""

    steps: Annotated[
        tuple[Annotated[float, Field(gt=0, le=100)], ...], Field(min_length=1, max_length=20)
    ] = (5.0, 25.0, 50.0, 100.0)
    soak_minutes: Annotated[float, Field(ge=0, le=30 * 1440)] = 60.0

    @field_validator("steps")
    @classmethod
    def _ascending(cls, steps: tuple[float, ...]) -> tuple[float, ...]:
        if list(steps) != sorted(set(steps)):
            raise ValueError("steps must be distinct and ascending, e.g. [5, 25, 50, 100]")
        return steps


class OutcomesRedis(RedisSettings):
    """A Redis of the outcomes' own (topology, TLS, pub/sub as every Redis section)."""

    config_key: ClassVar[str] = "outcomes.redis"

    socket_timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 1.0


class OutcomesSettings(_Model):
    """Per-connection, per-side login outcome counts, their sources, and the rollout guard."""

    enabled: bool = False
    # memory: this process only; redis: shared by replicas and the CLI. Default: redis when
    # flags.backend is redis (flags.redis's server and prefix unless `redis` is given).
    store: Literal["memory", "redis"] | None = None
    redis: OutcomesRedis | None = None
    retention_days: Annotated[float, Field(gt=0, le=90)] = 14.0
    # How long an event id is remembered, so a redelivered event is counted once.
    dedupe_hours: Annotated[float, Field(gt=0, le=24 * 30)] = 72.0
    # The memory store keeps at most this many (connection, hour) buckets and event ids.
    max_memory_buckets: Annotated[int, Field(ge=100, le=10_000_000)] = 200_000
    max_memory_event_ids: Annotated[int, Field(ge=100, le=10_000_000)] = 500_000
    path_prefix: Annotated[str, Field(pattern=r"^(/[A-Za-z0-9_.-]+)+$")] = "/_authswitch/outcomes"
    max_body_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 1024 * 1024
    proxy: ProxyObservation = ProxyObservation()
    workos: WorkosEvents = WorkosEvents()
    generic: GenericWebhook = GenericWebhook()
    auth0: Auth0LogStream = Auth0LogStream()
    guard: GuardSettings = GuardSettings()
    promotion: PromotionSettings = PromotionSettings()

    @property
    def provider_events(self) -> bool:
        """Whether some source reports the new provider's own outcomes."""
        return self.workos.enabled or self.generic.enabled

    def resolve_paths(self, base: Path) -> OutcomesSettings:
        def rebase(path: Path | None) -> Path | None:
            return base / path if path is not None else None

        workos = self.workos.model_copy(
            update={
                "webhook_secret_file": rebase(self.workos.webhook_secret_file),
                "api_key_file": rebase(self.workos.api_key_file),
                "cursor_file": rebase(self.workos.cursor_file),
            }
        )
        generic = self.generic.model_copy(update={"secret_file": rebase(self.generic.secret_file)})
        auth0 = self.auth0.model_copy(update={"token_file": rebase(self.auth0.token_file)})
        redis = self.redis.resolve_paths(base) if self.redis is not None else None
        return self.model_copy(
            update={"workos": workos, "generic": generic, "auth0": auth0, "redis": redis}
        )
