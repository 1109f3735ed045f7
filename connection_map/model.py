"""The connection model: one SSO connection and how authswitch treats it."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

_CONNECTION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,255}$")


class Protocol(StrEnum):
    SAML = "saml"
    OIDC = "oidc"


class ForwardMode(StrEnum):
    """How a migrated callback reaches the new provider."""

    REDIRECT = "redirect"  # 307 (POST) / 302 (GET): the browser re-sends to the new provider
    FORM_POST = "form_post"  # auto-submitting HTML form on the legacy origin
    PROXY = "proxy"  # authswitch sends the raw request server-side and streams the answer back


class Assessment(StrEnum):
    """Whether a connection can move without its customer touching their IdP."""

    TRANSPARENT = "transparent"
    NEEDS_IDP_CHANGE = "needs_idp_change"
    BLOCKED = "blocked"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SamlSettings(_Model):
    idp_entity_id: Annotated[str, Field(min_length=1, max_length=1024)]


class OidcSettings(_Model):
    callback_path: Annotated[str, Field(pattern=r"^/[^?#\s]*$", max_length=2048)]


class NewProvider(_Model):
    url: HttpUrl
    mode: ForwardMode = ForwardMode.REDIRECT
    connection_id: str | None = None

    @field_validator("url")
    @classmethod
    def _no_fragment(cls, value: HttpUrl) -> HttpUrl:
        # The callback's query string is appended to this URL; after a fragment it would be lost.
        if value.fragment is not None:
            raise ValueError("must not have a #fragment")
        return value


class Connection(_Model):
    """One SSO connection as the connection map describes it."""

    id: str
    protocol: Protocol
    saml: SamlSettings | None = None
    oidc: OidcSettings | None = None
    new_provider: NewProvider | None = None
    assessment: Assessment = Assessment.TRANSPARENT
    assessment_reasons: tuple[str, ...] = ()
    idp_initiated: bool = True

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _CONNECTION_ID.fullmatch(value):  # match() lets "$" pass a trailing newline
            raise ValueError(
                "must be 1-256 characters of letters, digits and . _ : @ -, starting with a "
                "letter or digit"
            )
        return value

    @model_validator(mode="after")
    def _check_protocol_settings(self) -> Connection:
        if self.protocol is Protocol.OIDC and self.saml is not None:
            raise ValueError("an oidc connection cannot have 'saml' settings")
        if self.protocol is Protocol.SAML and self.oidc is not None:
            raise ValueError("a saml connection cannot have 'oidc' settings")
        return self

    @property
    def migratable(self) -> bool:
        """True when a flag may send this connection's callbacks to the new provider."""
        return self.new_provider is not None and self.assessment is Assessment.TRANSPARENT


class ConnectionMapDocument(_Model):
    """The connection map file as a whole."""

    version: Annotated[int, Field(ge=0)] = 0
    connections: tuple[Connection, ...] = ()

    @field_validator("connections")
    @classmethod
    def _check_unique(cls, connections: tuple[Connection, ...]) -> tuple[Connection, ...]:
        ids: dict[str, int] = {}
        callback_paths: dict[str, int] = {}
        for index, connection in enumerate(connections):
            first = ids.setdefault(connection.id, index)
            if first != index:
                raise ValueError(
                    f"connection id {connection.id!r} appears more than once "
                    f"(connections[{first}] and connections[{index}])"
                )
            if connection.oidc is None:
                continue
            # A callback path leads to one connection; a shared one would silently pick one.
            path = connection.oidc.callback_path
            first = callback_paths.setdefault(path, index)
            if first != index:
                raise ValueError(
                    f"oidc.callback_path {path!r} is used by connections[{first}] "
                    f"(id {connections[first].id!r}) and connections[{index}] "
                    f"(id {connection.id!r})"
                )
        return connections
