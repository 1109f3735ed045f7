"""The service configuration: one YAML file, validated once at start-up."""

from __future__ import annotations

import importlib
import inspect
import os
import re
import typing
from enum import Enum, StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from connection_map.served_routes import PATH_PARAM
from connection_map.yaml_document import YamlDocumentError, load_yaml_mapping
from flags.evaluation import FLAG_KEY
from flags.redis_keys import KEY_PREFIX_PATTERN


class ConfigError(Exception):
    """The configuration can't be used; the message names the file, the key and the problem."""


def read_secret_file(path: Path, key: str, *, min_bytes: int = 0) -> bytes:
    """A secret from a mounted file (trailing newline removed); errors name the key, never
    the content."""
    try:
        value = path.read_bytes().rstrip(b"\r\n")
    except OSError as exc:
        raise ConfigError(f"{key} '{path}': cannot read: {exc.strerror}") from None
    if len(value) < min_bytes:
        raise ConfigError(f"{key} '{path}': the secret must be at least {min_bytes} bytes")
    return value


class Strategy(StrEnum):
    """A way to tell which connection a callback belongs to."""

    PATH = "path"  # the {connection} segment of the route path
    QUERY = "query"  # a query parameter (route.query_param)
    SAML_ISSUER = "saml_issuer"  # the Issuer of the SAMLResponse
    CALLBACK_PATH = "callback_path"  # the request path is a connection's own OIDC callback path
    RELAY_STATE_PREFIX = "relay_state_prefix"  # RelayState starts with a connection's prefix
    OIDC_STATE = "oidc_state"  # the flow record of the OIDC `state` names the connection


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
        """The password from `password_file`, if one is set."""
        if self.password_file is None:
            return None
        return read_secret_file(self.password_file, "flags.redis.password_file").decode()


# -- flags.openfeature: any OpenFeature provider, named by its import path ----------------------

_DOTTED_NAME = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"
_IMPORT_PATH = re.compile(f"^{_DOTTED_NAME}:{_DOTTED_NAME}$")
_FLAG_KEY_CHARS = r"^[^\s{}]{1,256}$"


def import_object(path: str) -> Any:
    """The object `package.module:name` (or `package.module:Class.attr`) names."""
    module_name, _, attribute = path.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:  # an ImportError, or whatever the module raises while importing
        raise ValueError(
            f"cannot import module '{module_name}': {type(exc).__name__}: {exc}"
        ) from None
    for name in attribute.split("."):
        try:
            target = getattr(target, name)
        except AttributeError:
            raise ValueError(f"module '{module_name}' has no attribute '{attribute}'") from None
    if not callable(target):
        raise ValueError(f"'{path}' is not callable (a provider class or a factory function)")
    return target


def provider_kwargs(factory: Any, options: dict[str, Any]) -> dict[str, Any]:
    """`options` checked against the factory's signature; a string given to a parameter
    annotated with an Enum becomes that member (by value, then by name): YAML has no enums."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # no signature to check against (some builtins)
        return dict(options)
    try:
        signature.bind(**options)
    except TypeError as exc:
        raise ValueError(f"'options' do not fit the provider's parameters: {exc}") from None
    try:
        hints = typing.get_type_hints(factory.__init__ if inspect.isclass(factory) else factory)
    except Exception:  # unresolvable annotations: no conversion
        hints = {}
    kwargs = dict(options)
    for name, value in options.items():
        enum_type = _enum_in(hints.get(name))
        if enum_type is not None and isinstance(value, str):
            kwargs[name] = _enum_member(enum_type, name, value)
    return kwargs


def _enum_in(annotation: Any) -> type[Enum] | None:
    if inspect.isclass(annotation) and issubclass(annotation, Enum):
        return annotation
    for arg in typing.get_args(annotation):  # Optional[E], E | None
        if inspect.isclass(arg) and issubclass(arg, Enum):
            return arg
    return None


def _enum_member(enum_type: type[Enum], option: str, value: str) -> Enum:
    for member in enum_type:
        if member.value == value:
            return member
    for member in enum_type:
        if member.name.lower() == value.lower():
            return member
    allowed = ", ".join(repr(m.value) for m in enum_type)
    raise ValueError(f"'options.{option}': {value!r} is not one of {allowed}")


class OpenFeatureFlag(_Model):
    """The flag the proxy asks the provider for: one for all (targeting key = connection id;
    default `authswitch.route`), or one per connection (`key_template` with `{connection}`)."""

    key: Annotated[str, Field(pattern=_FLAG_KEY_CHARS)] | None = None
    key_template: Annotated[str, Field(max_length=256)] | None = None
    # string: "new" / "legacy"; boolean: true = new
    type: Literal["string", "boolean"] = "string"

    @model_validator(mode="before")
    @classmethod
    def _default_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("key") is None and data.get("key_template") is None:
            return {**data, "key": FLAG_KEY}
        return data

    @model_validator(mode="after")
    def _one_key(self) -> OpenFeatureFlag:
        if self.key is not None and self.key_template is not None:
            raise ValueError("give one of 'key' and 'key_template', not both")
        template = self.key_template
        if template is not None:
            if "{connection}" not in template:
                raise ValueError("'key_template' must contain '{connection}'")
            rest = template.replace("{connection}", "")
            if re.search(r"[\s{}]", rest):
                raise ValueError(
                    "'key_template' may hold no whitespace and no braces besides '{connection}'"
                )
        return self

    def key_for(self, connection_id: str) -> str:
        """The flag key evaluated for this connection."""
        if self.key_template is not None:
            return self.key_template.replace("{connection}", connection_id)
        assert self.key is not None
        return self.key


class OpenFeatureFlags(_Model):
    """``flags.backend: openfeature``: a provider built from its import path and options."""

    provider: Annotated[str, Field(max_length=512)]
    options: dict[str, Any] = Field(default_factory=dict)
    flag: OpenFeatureFlag = OpenFeatureFlag()

    @field_validator("provider")
    @classmethod
    def _importable(cls, value: str) -> str:
        if not _IMPORT_PATH.match(value):
            raise ValueError("must be 'package.module:ClassOrFactory'")
        import_object(value)
        return value

    @field_validator("options")
    @classmethod
    def _keyword_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not name.isidentifier():
                raise ValueError(f"option {name!r} is not a keyword argument name")
        return value

    @model_validator(mode="after")
    def _options_fit(self) -> OpenFeatureFlags:
        provider_kwargs(self.factory(), self.options)
        return self

    def factory(self) -> Any:
        """The provider class or factory the import path names."""
        return import_object(self.provider)


class Flags(_Model):
    backend: Literal["file", "redis", "openfeature"] = "file"
    file: Path | None = None
    poll_interval_seconds: Annotated[float, Field(gt=0, le=60)] = 0.5
    audit_file: Path | None = None  # file backend; default: <file stem>.audit.jsonl beside it
    redis: RedisFlags = RedisFlags()
    openfeature: OpenFeatureFlags | None = None  # backend openfeature: the provider and flag

    @field_validator("backend", mode="before")
    @classmethod
    def _known_backend(cls, value: Any) -> Any:
        if value not in ("file", "redis", "openfeature"):
            raise ValueError(
                "must be 'file' or 'redis' (the built-in backends), or 'openfeature' (a provider "
                "named in 'openfeature')"
            )
        return value

    @model_validator(mode="after")
    def _file_backend_needs_file(self) -> Flags:
        if self.backend == "file" and self.file is None:
            raise ValueError("'file' is required when backend is 'file'")
        if self.backend == "openfeature" and self.openfeature is None:
            raise ValueError("'openfeature' is required when backend is 'openfeature'")
        if self.backend != "openfeature" and self.openfeature is not None:
            raise ValueError(
                f"'openfeature' is set but backend is '{self.backend}' (set backend: openfeature)"
            )
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


class ConnectionMapRedis(_Model):
    """Replicas serve the map pushed to Redis (``authswitch connections push``), not the file."""

    url: Annotated[str, Field(pattern=r"^(rediss?|unix)://", max_length=2048)] = (
        "redis://127.0.0.1:6379/0"
    )
    key_prefix: Annotated[str, Field(pattern=KEY_PREFIX_PATTERN)] = "authswitch"
    resync_seconds: Annotated[float, Field(gt=0, le=300)] = 5.0
    socket_timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 0.5
    password_file: Path | None = None

    def password(self) -> str | None:
        """The password from `password_file`, if one is set."""
        if self.password_file is None:
            return None
        key = "connection_map_redis.password_file"
        return read_secret_file(self.password_file, key).decode()


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


class Route(_Model):
    """A legacy callback URL authswitch intercepts."""

    path: Annotated[str, Field(pattern=r"^/", max_length=1024)]
    protocol: Literal["saml", "oidc"]
    identify: Annotated[tuple[Strategy, ...], Field(min_length=1)]
    query_param: Annotated[str, Field(min_length=1, max_length=128)] = "connection"
    methods: tuple[Literal["GET", "POST"], ...] = ("GET", "POST")

    @model_validator(mode="after")
    def _check_strategies(self) -> Route:
        params = [name for name, _ in PATH_PARAM.findall(self.path)]
        repeated = sorted({p for p in params if params.count(p) > 1})
        if repeated:  # the route table compiles each to a named group: names must be unique
            raise ValueError(f"'{{{repeated[0]}}}' appears more than once in the path")
        if Strategy.PATH in self.identify and "connection" not in params:
            raise ValueError("strategy 'path' needs a '{connection}' segment in the path")
        if Strategy.SAML_ISSUER in self.identify and self.protocol != "saml":
            raise ValueError("strategy 'saml_issuer' only applies to saml routes")
        if Strategy.RELAY_STATE_PREFIX in self.identify and self.protocol != "saml":
            raise ValueError("strategy 'relay_state_prefix' only applies to saml routes")
        if Strategy.OIDC_STATE in self.identify and self.protocol != "oidc":
            raise ValueError("strategy 'oidc_state' only applies to oidc routes")
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
    # An upstream answer's head: twice aiohttp's and nginx's 8 KiB line and 128 lines, so an
    # answer a default nginx passes is passed too; beyond them the client gets a clear 502.
    upstream_max_header_bytes: Annotated[int, Field(ge=1024, le=1024 * 1024)] = 16 * 1024
    upstream_max_headers: Annotated[int, Field(ge=16, le=10_000)] = 256


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


# -- JIT password broker (proxy/broker/) ----------------------------------------------------------

_RATE = r"^[0-9]+ ?(/|per ) ?(second|minute|hour|day)$"
BrokerDoor = Literal["generic", "okta", "kratos", "cognito", "auth0"]


class BrokerRedis(_Model):
    """The Redis holding the broker's rate-limit counters and provisioning locks."""

    url: Annotated[str, Field(pattern=r"^(rediss?|unix)://", max_length=2048)] = (
        "redis://127.0.0.1:6379/0"
    )
    key_prefix: Annotated[str, Field(pattern=KEY_PREFIX_PATTERN)] = "authswitch"
    password_file: Path | None = None
    socket_timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 0.5
    # false (default): while this Redis is unreachable every hook is denied but callbacks still
    # route, so /readyz stays 200 and lists it under `degraded` (a Redis outage can't empty the
    # load balancer). true: it is listed under `missing` and /readyz answers 503.
    ready_requires_redis: bool = False


class BrokerRateLimits(_Model):
    """limits-style rates ("10/minute"), counted in Redis over all replicas."""

    per_ip: Annotated[str, Field(pattern=_RATE)] = "60/minute"
    per_identifier: Annotated[str, Field(pattern=_RATE)] = "10/minute"
    global_: Annotated[str, Field(pattern=_RATE, alias="global")] = "100/second"


class BrokerBudgets(_Model):
    """The longest a front door's answer may take, verified or not (then: denied)."""

    generic: Annotated[float, Field(gt=0, le=30)] = 5.0
    okta: Annotated[float, Field(gt=0, le=30)] = 2.5  # Okta gives up after 3 s
    kratos: Annotated[float, Field(gt=0, le=30)] = 5.0
    cognito: Annotated[float, Field(gt=0, le=30)] = 4.0  # the Lambda trigger gets 5 s in all
    auth0: Annotated[float, Field(gt=0, le=30)] = 5.0  # a custom DB script may run 20 s


class FirebaseScrypt(_Model):
    """A Firebase project's password hash parameters (Authentication > Password hash)."""

    signer_key_file: Path
    salt_separator: str = "Bw=="
    rounds: Annotated[int, Field(ge=1, le=8)] = 8
    mem_cost: Annotated[int, Field(ge=1, le=14)] = 14


class HashFileVerifier(_Model):
    type: Literal["hash_file"]
    path: Path  # CSV (identifier,hash) or NDJSON ({"identifier", "hash"})
    firebase: FirebaseScrypt | None = None


class HttpLoginVerifier(_Model):
    """The legacy login endpoint: a request template and the statuses that mean "verified"."""

    type: Literal["http_login"]
    url: AnyHttpUrl
    body: Literal["json", "form"] = "json"
    # Field name -> template; "{identifier}" and "{password}" are replaced by the values.
    template: dict[str, str] = Field(
        default_factory=lambda: {"username": "{identifier}", "password": "{password}"}
    )
    success_status: Annotated[tuple[int, ...], Field(min_length=1)] = (200,)
    timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 2.0


class OAuth2PasswordVerifier(_Model):
    """An OAuth 2.0 token endpoint of legacy, asked with the password grant (RFC 6749 4.3)."""

    type: Literal["oauth2_password"]
    token_url: AnyHttpUrl
    client_id: Annotated[str, Field(min_length=1, max_length=512)]
    client_secret_file: Path | None = None  # none: a public client
    client_auth: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"
    scope: Annotated[str, Field(max_length=1024)] | None = None
    timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 2.0


class ScimProvisioner(_Model):
    type: Literal["scim"] = "scim"
    url: AnyHttpUrl  # the SCIM base URL, e.g. https://idp.example/scim/v2
    token_file: Path | None = None  # bearer token (a mounted Secret)
    timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 2.0


class WorkosProvisioner(_Model):
    """WorkOS User Management: users created with the verified password."""

    type: Literal["workos"]
    url: AnyHttpUrl = AnyHttpUrl("https://api.workos.com")
    api_key_file: Path  # the WorkOS API key (a mounted Secret)
    timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 2.0


class KratosProvisioner(_Model):
    """Ory Kratos admin API: identities created with the verified password."""

    type: Literal["kratos"]
    url: AnyHttpUrl  # the admin API base, e.g. http://kratos:4434
    token_file: Path | None = None  # bearer token (Ory Network API key); none: self-hosted admin
    schema_id: Annotated[str, Field(min_length=1, max_length=256)] = "default"
    # The trait holding the login identifier (the address when it is `email`).
    identifier_trait: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")] = "email"
    timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 2.0


def _provisioner_type(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("type", "scim"))  # `type` may be left out for SCIM
    return str(getattr(value, "type", "scim"))


Provisioner = Annotated[
    Annotated[ScimProvisioner, Tag("scim")]
    | Annotated[WorkosProvisioner, Tag("workos")]
    | Annotated[KratosProvisioner, Tag("kratos")],
    Discriminator(_provisioner_type),
]


class Broker(_Model):
    """The JIT password broker: hooks the new provider calls for users it does not know."""

    enabled: bool = False
    path_prefix: Annotated[str, Field(pattern=r"^(/[A-Za-z0-9_.-]+)+$")] = "/_authswitch/broker"
    doors: tuple[BrokerDoor, ...] = ("generic", "okta", "kratos", "cognito", "auth0")
    authentication: Literal["shared_secret", "hmac"] = "shared_secret"
    secret_file: Path | None = None
    secret_header: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,64}$")] = (
        "x-authswitch-broker-secret"  # noqa: S105 (a header name)
    )
    # hmac: hex HMAC-SHA256 of the raw body, optionally written "sha256=<hex>".
    signature_header: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,64}$")] = "x-authswitch-signature"
    budget_seconds: BrokerBudgets = BrokerBudgets()
    max_body_bytes: Annotated[int, Field(ge=256, le=1024 * 1024)] = 16 * 1024
    lock_seconds: Annotated[float, Field(gt=0, le=60)] = 10.0
    redis: BrokerRedis = BrokerRedis()
    rate_limits: BrokerRateLimits = BrokerRateLimits()
    verifier: (
        Annotated[
            HashFileVerifier | HttpLoginVerifier | OAuth2PasswordVerifier,
            Field(discriminator="type"),
        ]
        | None
    ) = None
    provisioner: Provisioner | None = None

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> Broker:
        if self.enabled:
            for key in ("secret_file", "verifier"):
                if getattr(self, key) is None:
                    raise ValueError(f"'{key}' is required when the broker is enabled")
        return self

    def secret(self) -> bytes:
        """The hook secret from `secret_file`."""
        assert self.secret_file is not None
        return read_secret_file(self.secret_file, "broker.secret_file", min_bytes=16)

    def resolve_paths(self, base: Path) -> Broker:
        def rebase(path: Path | None) -> Path | None:
            return base / path if path is not None else None

        verifier = self.verifier
        if isinstance(verifier, HashFileVerifier):
            firebase = verifier.firebase
            verifier = verifier.model_copy(
                update={
                    "path": base / verifier.path,
                    "firebase": firebase.model_copy(
                        update={"signer_key_file": base / firebase.signer_key_file}
                    )
                    if firebase is not None
                    else None,
                }
            )
        elif isinstance(verifier, OAuth2PasswordVerifier):
            verifier = verifier.model_copy(
                update={"client_secret_file": rebase(verifier.client_secret_file)}
            )
        provisioner = self.provisioner
        if isinstance(provisioner, WorkosProvisioner):
            provisioner = provisioner.model_copy(
                update={"api_key_file": base / provisioner.api_key_file}
            )
        elif provisioner is not None:
            provisioner = provisioner.model_copy(
                update={"token_file": rebase(provisioner.token_file)}
            )
        return self.model_copy(
            update={
                "secret_file": rebase(self.secret_file),
                "redis": self.redis.model_copy(
                    update={"password_file": rebase(self.redis.password_file)}
                ),
                "verifier": verifier,
                "provisioner": provisioner,
            }
        )


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
    flow_affinity: FlowAffinity = FlowAffinity()
    ops_prefix: Annotated[str, Field(pattern=r"^/[A-Za-z0-9_.-]+$")] = "/_authswitch"
    broker: Broker = Broker()

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
                "connection_map_redis": self.connection_map_redis.model_copy(
                    update={"password_file": base / self.connection_map_redis.password_file}
                )
                if self.connection_map_redis is not None
                and self.connection_map_redis.password_file is not None
                else self.connection_map_redis,
                "flags": self.flags.resolve_paths(base),
                "flow_affinity": self.flow_affinity.model_copy(
                    update={
                        "secret_file": base / self.flow_affinity.secret_file
                        if self.flow_affinity.secret_file is not None
                        else None
                    }
                ),
                "broker": self.broker.resolve_paths(base),
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
