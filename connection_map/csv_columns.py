"""The self-hosted connections CSV of providers' migration tooling, column by column.

One table says which map field each column fills; the importer and the exporter both read it,
so the two directions can't drift apart. Secret columns are read (to check them and to learn
"this connection has a key that can move") but never stored in the map.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from connection_map.model import Protocol


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    field: tuple[str, ...]  # where it lands in a connection (empty: secret, not stored)
    protocols: frozenset[Protocol]


_BOTH = frozenset({Protocol.SAML, Protocol.OIDC})
_SAML = frozenset({Protocol.SAML})
_OIDC = frozenset({Protocol.OIDC})

COLUMNS: tuple[Column, ...] = (
    Column("name", ("name",), _BOTH),
    Column("organizationName", ("organization", "name"), _BOTH),
    Column("organizationId", ("organization", "id"), _BOTH),
    Column("organizationExternalId", ("organization", "external_id"), _BOTH),
    Column("domains", ("organization", "domains"), _BOTH),
    Column("idpEntityId", ("saml", "idp_entity_id"), _SAML),
    Column("idpUrl", ("saml", "idp_sso_urls"), _SAML),
    Column("x509Cert", ("saml", "signing_certificates"), _SAML),
    Column("idpMetadataUrl", ("saml", "idp_metadata_url"), _SAML),
    Column("customEntityId", ("legacy", "sp_entity_id"), _SAML),
    Column("customAcsUrl", ("legacy", "callback_url"), _SAML),
    Column("idpIdAttribute", ("saml", "attributes", "idp_id"), _SAML),
    Column("emailAttribute", ("saml", "attributes", "email"), _SAML),
    Column("firstNameAttribute", ("saml", "attributes", "first_name"), _SAML),
    Column("lastNameAttribute", ("saml", "attributes", "last_name"), _SAML),
    Column("nameAttribute", ("saml", "attributes", "name"), _SAML),
    Column("idpInitiatedEnabled", ("idp_initiated",), _SAML),
    Column("requestSigningKey", ("saml", "request_signing"), _SAML),
    Column("assertionEncryptionKey", ("saml", "assertion_encryption"), _SAML),
    Column("nameIdEncryptionKey", ("saml", "name_id_encryption"), _SAML),
    Column("clientId", ("oidc", "client_id"), _OIDC),
    Column("clientSecret", (), _OIDC),
    Column("discoveryEndpoint", ("oidc", "discovery_url"), _OIDC),
    Column("customRedirectUri", ("legacy", "callback_url"), _OIDC),
    Column("externalId", ("external_id",), _BOTH),
)
BY_NAME: Mapping[str, Column] = {column.name: column for column in COLUMNS}

# Private keys and client secrets: checked, never stored, never echoed.
SECRET_COLUMNS: frozenset[str] = frozenset(
    {"clientSecret", "requestSigningKey", "assertionEncryptionKey", "nameIdEncryptionKey"}
)
KEY_COLUMNS: tuple[str, ...] = (
    "requestSigningKey",
    "assertionEncryptionKey",
    "nameIdEncryptionKey",
)

# Columns whose value says which protocol a row is (on a mixed file).
PROTOCOL_COLUMNS: Mapping[Protocol, tuple[str, ...]] = {
    Protocol.SAML: tuple(
        c.name for c in COLUMNS if c.protocols == _SAML and c.name != "idpInitiatedEnabled"
    ),
    Protocol.OIDC: tuple(c.name for c in COLUMNS if c.protocols == _OIDC),
}

SAML_HEADER: tuple[str, ...] = tuple(c.name for c in COLUMNS if Protocol.SAML in c.protocols)
OIDC_HEADER: tuple[str, ...] = tuple(c.name for c in COLUMNS if Protocol.OIDC in c.protocols)
ALL_HEADER: tuple[str, ...] = tuple(c.name for c in COLUMNS)


def column_for(location: tuple[str | int, ...], protocol: Protocol) -> str | None:
    """The CSV column behind a validation error's location, or None (a whole-row problem)."""
    names = tuple(part for part in location if isinstance(part, str))
    candidates = [
        column
        for column in COLUMNS
        if column.field
        and protocol in column.protocols
        and names[: len(column.field)] == column.field
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda column: len(column.field)).name
