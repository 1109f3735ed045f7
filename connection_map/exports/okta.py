"""Okta identity providers (`GET /api/v1/idps`) as connections CSV rows.

`SAML2`: the IdP's issuer (`protocol.credentials.trust.issuer`), SSO URL
(`protocol.endpoints.sso.url`), signing certificate (the IdP key `credentials.trust.kid`, from
`GET /api/v1/idps/credentials/keys/{kid}`: `x5c`), the SP entity id Okta presents
(`credentials.trust.audience`) and its ACS URL (`_links.acs.href`, else
`ORG/sso/saml2/{id}`). `OIDC`: client id and secret (`protocol.credentials.client`), discovery
from `protocol.issuer.url`, redirect URI `ORG/oauth2/v1/authorize/callback`. Social IdPs
(Google, Facebook, Microsoft, Apple, LinkedIn...) are skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connection_map.exports.rows import ExportedConnection, certificate_pem


def okta_idp(idp: Any, org_url: str, keys: Mapping[str, list[str]]) -> ExportedConnection | str:
    """One Okta IdP as a CSV row (its signing keys' x5c by kid), or why it is not exported."""
    if not isinstance(idp, dict) or not isinstance(idp.get("id"), str):
        return "not an Okta IdP object"
    kind = idp.get("type")
    protocol = idp.get("protocol")
    if not isinstance(protocol, dict):
        protocol = {}
    org = org_url.rstrip("/")
    if kind == "SAML2":
        return _saml(idp, protocol, org, keys)
    if kind == "OIDC":
        return _oidc(idp, protocol, org)
    return f"type {kind!r} is a social or non-SSO identity provider"


def _base(idp: dict[str, Any]) -> ExportedConnection:
    cells = {"name": str(idp.get("name") or idp["id"])}
    row = ExportedConnection(idp["id"], cells)
    if idp.get("status") == "INACTIVE":
        row.notes.append("INACTIVE at Okta")
    return row


def _get(value: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _saml(
    idp: dict[str, Any], protocol: dict[str, Any], org: str, keys: Mapping[str, list[str]]
) -> ExportedConnection | str:
    row = _base(idp)
    cells = row.cells
    issuer = _get(protocol, "credentials", "trust", "issuer")
    sso = _get(protocol, "endpoints", "sso", "url")
    if not isinstance(issuer, str) or not isinstance(sso, str):
        return "no trust issuer or SSO URL"
    cells["idpEntityId"] = issuer
    cells["idpUrl"] = sso
    kid = _get(protocol, "credentials", "trust", "kid")
    certificates = [pem for x5c in keys.get(str(kid), []) if (pem := certificate_pem(x5c))]
    if certificates:
        cells["x509Cert"] = "\n".join(certificates)
    else:
        row.notes.append(f"no certificate for the IdP key {kid!r}: fill x509Cert")
    audience = _get(protocol, "credentials", "trust", "audience")
    if isinstance(audience, str):
        cells["customEntityId"] = audience
    acs = _get(idp, "_links", "acs", "href")
    cells["customAcsUrl"] = acs if isinstance(acs, str) else f"{org}/sso/saml2/{idp['id']}"
    if _get(protocol, "algorithms", "request", "signature", "scope") == "REQUEST":
        row.notes.append(
            "signs AuthnRequests with Okta's key, which Okta does not export: the IdP must be "
            "given the new provider's certificate (needs_idp_change)"
        )
    return row


def _oidc(idp: dict[str, Any], protocol: dict[str, Any], org: str) -> ExportedConnection | str:
    row = _base(idp)
    cells = row.cells
    client_id = _get(protocol, "credentials", "client", "client_id")
    issuer = _get(protocol, "issuer", "url")
    if not isinstance(client_id, str) or not isinstance(issuer, str):
        return "no client id or issuer URL"
    cells["clientId"] = client_id
    secret = _get(protocol, "credentials", "client", "client_secret")
    if isinstance(secret, str) and secret:
        cells["clientSecret"] = secret
    else:
        row.notes.append("Okta did not return the client secret: fill clientSecret")
    cells["discoveryEndpoint"] = issuer.rstrip("/") + "/.well-known/openid-configuration"
    cells["customRedirectUri"] = f"{org}/oauth2/v1/authorize/callback"
    return row
