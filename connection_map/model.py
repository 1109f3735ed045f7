"""The connection model: one SSO connection and how authswitch treats it.

Every field added after the first version is optional, so a map written for the proxy alone
(id, protocol, saml.idp_entity_id, oidc.callback_path, new_provider, assessment) stays valid.
Secrets (OIDC client secrets, SP private keys) are never part of the model: only the facts
triage needs ("this connection encrypts assertions; the key can move") are.
"""

from __future__ import annotations

import binascii
import itertools
import re
from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    field_validator,
    model_validator,
)

_CONNECTION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,255}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")
_WHITESPACE = re.compile(r"\s")
# A subset of what _http_url accepts (a host, an optional port, no userinfo, fragment or space).
_PLAIN_HTTP_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:[/?][^\s#]*)?")
_PEM_BEGIN = "-----BEGIN CERTIFICATE-----"
_PEM_END = "-----END CERTIFICATE-----"


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


def _http_url(value: str) -> str:
    # Kept as the exact text: IdPs and providers compare ACS URLs and redirect URIs as strings,
    # so no normalisation (host case, trailing slash) may happen on the way through the map.
    if _PLAIN_HTTP_URL.fullmatch(value):  # the common shape, 10x cheaper than urlsplit
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.fragment or "#" in value:
        raise ValueError("must not have a #fragment")
    if _WHITESPACE.search(value):
        raise ValueError("must not contain whitespace")
    return value


def _certificate_text(value: str) -> str:
    # A cheap syntax check (a map may hold 100k of them and is re-read on every change): full
    # X.509 parsing happens in the importers and in triage, which reports one that won't parse.
    body = value.strip()
    if not (body.startswith(_PEM_BEGIN) and body.endswith(_PEM_END)):
        raise ValueError("must be one PEM certificate (-----BEGIN CERTIFICATE----- ...)")
    body = body[len(_PEM_BEGIN) : -len(_PEM_END)]
    if "-" in body:
        raise ValueError("must be one PEM certificate (-----BEGIN CERTIFICATE----- ...)")
    try:
        binascii.a2b_base64("".join(body.split()), strict_mode=True)
    except binascii.Error:
        raise ValueError("the PEM certificate is not valid base64") from None
    return value


def _domain(value: str) -> str:
    if not _DOMAIN.fullmatch(value):
        raise ValueError("must be a lower-case domain name such as example.com")
    return value


def _connection_id(value: str) -> str:
    if not _CONNECTION_ID.fullmatch(value):  # match() lets "$" pass a trailing newline
        raise ValueError(
            "must be 1-256 characters of letters, digits and . _ : @ -, starting with a "
            "letter or digit"
        )
    return value


def _no_fragment(value: HttpUrl) -> HttpUrl:
    # The callback's query string is appended to this URL; after a fragment it would be lost.
    if value.fragment is not None:
        raise ValueError("must not have a #fragment")
    return value


# The types of the fields the proxy routes by are shared with `served`, which validates them
# with the same rules (and messages) without building the rest of the model.
ConnectionId = Annotated[str, AfterValidator(_connection_id)]
CallbackPath = Annotated[str, Field(pattern=r"^/[^?#\s]*$", max_length=2048)]
NewProviderUrl = Annotated[HttpUrl, AfterValidator(_no_fragment)]
HttpUrlText = Annotated[str, Field(max_length=2048), AfterValidator(_http_url)]
CertificatePem = Annotated[str, Field(max_length=65536), AfterValidator(_certificate_text)]
Domain = Annotated[str, AfterValidator(_domain)]
Text = Annotated[str, Field(min_length=1, max_length=1024)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Organization(_Model):
    """The customer organisation a connection belongs to (informational, exported to CSV)."""

    id: Text | None = None
    name: Text | None = None
    external_id: Text | None = None
    domains: tuple[Domain, ...] = ()


class SpKeyUse(_Model):
    """An SP private key the IdP relies on, and whether it can be moved to the new provider."""

    enabled: bool = False
    key_exportable: bool = False


class SsoService(_Model):
    """An IdP single sign-on endpoint; the first one listed is the one exported as idpUrl."""

    url: HttpUrlText
    binding: Text | None = None


class SamlAttributes(_Model):
    """Which SAML attribute carries each user property."""

    idp_id: Text | None = None
    email: Text | None = None
    first_name: Text | None = None
    last_name: Text | None = None
    name: Text | None = None


class SamlSettings(_Model):
    idp_entity_id: Text | None = None  # what the SAML Issuer must equal, exactly
    idp_sso_urls: tuple[SsoService, ...] = ()
    idp_metadata_url: HttpUrlText | None = None
    signing_certificates: tuple[CertificatePem, ...] = ()
    name_id_format: Text | None = None  # the NameID format the IdP sends for this connection
    idp_name_id_formats: tuple[Text, ...] = ()  # the formats the IdP's metadata advertises
    request_signing: SpKeyUse = SpKeyUse()  # the IdP requires signed AuthnRequests
    assertion_encryption: SpKeyUse = SpKeyUse()  # the IdP encrypts assertions to the SP
    name_id_encryption: SpKeyUse = SpKeyUse()  # the IdP encrypts the NameID to the SP
    attributes: SamlAttributes = SamlAttributes()


class OidcSettings(_Model):
    callback_path: CallbackPath | None = None
    client_id: Text | None = None
    discovery_url: HttpUrlText | None = None


class LegacyEndpoint(_Model):
    """Where the customer's IdP sends users today: the URL authswitch must keep serving."""

    callback_url: HttpUrlText | None = None  # SAML ACS URL / OIDC redirect URI, exactly as set
    sp_entity_id: Text | None = None  # SAML: the SP entity id (Audience) the IdP knows


class NewProvider(_Model):
    url: NewProviderUrl
    mode: ForwardMode = ForwardMode.REDIRECT
    connection_id: str | None = None


class Hold(_Model):
    """A reason triage can't see for itself (a contract, a customer's request)."""

    assessment: Assessment
    reason: Text

    @field_validator("assessment")
    @classmethod
    def _not_transparent(cls, value: Assessment) -> Assessment:
        if value is Assessment.TRANSPARENT:
            raise ValueError("a hold is 'needs_idp_change' or 'blocked'")
        return value


class Connection(_Model):
    """One SSO connection as the connection map describes it."""

    id: ConnectionId
    protocol: Protocol
    name: Text | None = None
    external_id: Text | None = None
    organization: Organization | None = None
    saml: SamlSettings | None = None
    oidc: OidcSettings | None = None
    legacy: LegacyEndpoint | None = None
    relay_state_prefix: Text | None = None
    new_provider: NewProvider | None = None
    assessment: Assessment = Assessment.TRANSPARENT
    assessment_reasons: tuple[str, ...] = ()
    hold: Hold | None = None
    idp_initiated: bool = True

    @model_validator(mode="after")
    def _check_protocol_settings(self) -> Connection:
        check_protocol_sections(
            self.protocol,
            has_saml=self.saml is not None,
            has_oidc=self.oidc is not None,
            has_sp_entity_id=bool(self.legacy and self.legacy.sp_entity_id),
        )
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
        check_unique(
            [
                (c.id, c.oidc.callback_path if c.oidc else None, c.relay_state_prefix)
                for c in connections
            ]
        )
        return connections


def check_protocol_sections(
    protocol: Protocol, *, has_saml: bool, has_oidc: bool, has_sp_entity_id: bool
) -> None:
    """A connection carries the settings of its own protocol only."""
    if protocol is Protocol.OIDC and has_saml:
        raise ValueError("an oidc connection cannot have 'saml' settings")
    if protocol is Protocol.SAML and has_oidc:
        raise ValueError("a saml connection cannot have 'oidc' settings")
    if protocol is Protocol.OIDC and has_sp_entity_id:
        raise ValueError("an oidc connection cannot have 'legacy.sp_entity_id'")


RoutingKeys = tuple[str, str | None, str | None]  # id, oidc.callback_path, relay_state_prefix


def check_unique(rows: Sequence[RoutingKeys]) -> None:
    """Ids and callback paths are unique and no RelayState prefix starts another (ValueError)."""
    ids: dict[str, int] = {}
    callback_paths: dict[str, int] = {}
    for index, (cid, path, _) in enumerate(rows):
        first = ids.setdefault(cid, index)
        if first != index:
            raise ValueError(
                f"connection id {cid!r} appears more than once "
                f"(connections[{first}] and connections[{index}])"
            )
        if path is None:
            continue
        # A callback path leads to one connection; a shared one would silently pick one.
        first = callback_paths.setdefault(path, index)
        if first != index:
            raise ValueError(
                f"oidc.callback_path {path!r} is used by connections[{first}] "
                f"(id {rows[first][0]!r}) and connections[{index}] (id {cid!r})"
            )
    # One prefix inside another would make a RelayState match two connections. Sorted, a
    # prefix sits right before the strings it starts: one pass over neighbours finds them all.
    prefixed = sorted((prefix, index) for index, (_, _, prefix) in enumerate(rows) if prefix)
    for (shorter, first), (longer, second) in itertools.pairwise(prefixed):
        if longer.startswith(shorter):
            low, high = sorted((first, second))
            raise ValueError(
                f"relay_state_prefix of connections[{low}] (id {rows[low][0]!r}) and "
                f"connections[{high}] (id {rows[high][0]!r}) overlap: "
                f"{shorter!r} starts {longer!r}"
            )
