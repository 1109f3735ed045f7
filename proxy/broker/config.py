"""The password broker's configuration: the `broker` key of the config file.

The broker owns these models; the service's configuration (proxy/config.py) composes them
under `broker`; the broker and the users import need nothing from the rest of `proxy`
(ConfigError, secrets and Redis settings come from `foundation`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from foundation.config_error import ConfigError as ConfigError  # re-exported for the broker
from foundation.config_error import invalid_config
from foundation.redis_settings import RedisSettings
from foundation.secret_file import read_secret_file as read_secret_file  # re-exported
from foundation.strict_yaml import YamlDocumentError, load_yaml_mapping


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_RATE = r"^[0-9]+ ?(/|per ) ?(second|minute|hour|day)$"
BrokerDoor = Literal["generic", "okta", "kratos", "cognito", "auth0"]


class BrokerRedis(RedisSettings):
    """The Redis holding the broker's rate-limit counters and provisioning locks."""

    config_key: ClassVar[str] = "broker.redis"

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
    # hmac: "t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<raw body>'>" (proxy/broker/hook_auth.py)
    signature_header: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,64}$")] = "x-authswitch-signature"
    # hmac: how far a signature's timestamp may be from now; a signature seen once is refused
    # for as long as it is inside the window.
    signature_tolerance_seconds: Annotated[float, Field(ge=1, le=3600)] = 300.0
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
                "redis": self.redis.resolve_paths(base),
                "verifier": verifier,
                "provisioner": provisioner,
            }
        )


def load_broker_config(path: str | os.PathLike[str]) -> Broker:
    """The `broker` key of a config file, validated on its own (relative paths made relative
    to the file's directory); ConfigError names the file, the key and the problem."""
    file = Path(path)
    try:
        raw = load_yaml_mapping(file.read_bytes())
    except OSError as exc:
        raise ConfigError(f"config '{file}': cannot read file: {exc.strerror}") from None
    except YamlDocumentError as exc:
        raise ConfigError(f"config '{file}': {exc}") from None
    section: Any = raw.get("broker", {}) if isinstance(raw, dict) else None
    try:
        broker = Broker.model_validate(section)
    except ValidationError as exc:
        raise invalid_config(file, exc, under=("broker",)) from None
    return broker.resolve_paths(file.parent)
