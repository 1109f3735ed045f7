"""The console's configuration (`console:` in the config file), validated once at start-up."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, model_validator

_HEADER = Annotated[str, Field(pattern=r"^[a-z0-9-]{1,64}$")]
_NAMES = tuple[Annotated[str, Field(min_length=1, max_length=256)], ...]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrustedHeaderSignIn(_Model):
    """An auth proxy in front (oauth2-proxy style) signs people in and names them in headers."""

    proxies: Annotated[tuple[IPv4Network | IPv6Network, ...], Field(min_length=1)]
    """Addresses (CIDRs) the headers are honoured from; any other client is refused."""
    user_header: _HEADER = "x-forwarded-user"
    email_header: _HEADER = "x-forwarded-email"
    groups_header: _HEADER = "x-forwarded-groups"


class OidcSignIn(_Model):
    """OpenID Connect sign-in at the company IdP: authorization code with PKCE."""

    issuer: AnyHttpUrl
    """Its discovery document is ``<issuer>/.well-known/openid-configuration``."""
    client_id: Annotated[str, Field(min_length=1, max_length=256)]
    client_secret_file: Path | None = None
    """None: a public client (PKCE only)."""
    scopes: Annotated[str, Field(pattern=r"^openid( [\x21-\x7e]+)*$")] = "openid email profile"
    groups_claim: Annotated[str, Field(min_length=1, max_length=128)] = "groups"
    timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 10.0


class Roles(_Model):
    """Who is an operator (may change flags) or a viewer (may look); anyone else gets nothing."""

    operator_groups: _NAMES = ()
    operator_emails: _NAMES = ()
    viewer_groups: _NAMES = ()
    viewer_emails: _NAMES = ()


class ConsoleSettings(_Model):
    """The rollout console (off unless enabled)."""

    enabled: bool = False
    sign_in: Literal["trusted_header", "oidc"] | None = None
    trusted_header: TrustedHeaderSignIn | None = None
    oidc: OidcSignIn | None = None
    roles: Roles = Roles()
    session_secret_file: Path | None = None
    """At least 32 bytes; signs the session cookie."""
    session_max_age_seconds: Annotated[int, Field(ge=60, le=7 * 86_400)] = 8 * 3600
    secure_cookie: bool = True
    same_site: Literal["lax", "strict"] = "lax"
    """``strict`` drops the cookie on the IdP's redirect back: use it with trusted headers only."""
    outcome_window_minutes: Annotated[int, Field(ge=1, le=1440)] = 60

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> ConsoleSettings:
        if not self.enabled:
            return self
        if self.sign_in is None:
            raise ValueError("console.enabled needs sign_in: trusted_header or oidc")
        if getattr(self, self.sign_in) is None:
            raise ValueError(f"console.sign_in is {self.sign_in!r}: add a '{self.sign_in}' section")
        if self.session_secret_file is None:
            raise ValueError("console.enabled needs session_secret_file")
        if not any(self.roles.model_dump().values()):
            raise ValueError("console.roles names nobody: nobody could sign in")
        if self.sign_in == "oidc" and self.same_site == "strict":
            raise ValueError(
                "console.same_site 'strict' loses the session on the IdP's redirect back: "
                "use 'lax' with oidc"
            )
        return self

    def resolve_paths(self, base: Path) -> ConsoleSettings:
        secret = self.session_secret_file
        oidc = self.oidc
        if oidc is not None and oidc.client_secret_file is not None:
            oidc = oidc.model_copy(update={"client_secret_file": base / oidc.client_secret_file})
        return self.model_copy(
            update={"session_secret_file": base / secret if secret else None, "oidc": oidc}
        )
