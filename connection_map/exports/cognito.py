"""Cognito user-pool identity providers (`DescribeIdentityProvider`) as connections CSV rows.

`SAML`: the IdP comes from its metadata, `ProviderDetails.MetadataFile` read by the hardened
metadata parser (entity id, SSO URL, signing certificates: one parser for every importer), and
`MetadataURL` as idpMetadataUrl. Cognito's SP side is fixed by AWS: entity id
`urn:amazon:cognito:sp:POOL_ID`, ACS `https://DOMAIN/saml2/idpresponse`. `OIDC`: client_id,
client_secret, discovery from `oidc_issuer`, redirect URI `https://DOMAIN/oauth2/idpresponse`.
DOMAIN is the pool's custom domain, or its prefix domain `PREFIX.auth.REGION.amazoncognito.com`.
Social providers (Google, Facebook, LoginWithAmazon, SignInWithApple) are skipped with the reason.
"""

from __future__ import annotations

from typing import Any

from connection_map.exports.rows import ATTRIBUTE_COLUMNS, ExportedConnection
from connection_map.saml_metadata import MetadataError, parse_idp_metadata


def cognito_domain_url(domain: str | None, region: str) -> str | None:
    """The base URL of a pool's hosted endpoints from DescribeUserPool's `CustomDomain` or
    `Domain` (a prefix has no dot; a custom domain is a host name)."""
    if not domain:
        return None
    if "." in domain:
        return f"https://{domain}"
    return f"https://{domain}.auth.{region}.amazoncognito.com"


def cognito_idp(provider: Any, pool_id: str, domain_url: str | None) -> ExportedConnection | str:
    """One identity provider of the pool as a CSV row, or why it is not exported."""
    if not isinstance(provider, dict) or not isinstance(provider.get("ProviderName"), str):
        return "not a Cognito identity provider object"
    details = provider.get("ProviderDetails")
    if not isinstance(details, dict):
        details = {}
    kind = provider.get("ProviderType")
    if kind == "SAML":
        return _saml(provider, details, pool_id, domain_url)
    if kind == "OIDC":
        return _oidc(provider, details, domain_url)
    return f"type {kind!r} is a social identity provider, not an SSO connection"


def _row(
    provider: dict[str, Any], domain_url: str | None, callback: str, column: str
) -> ExportedConnection:
    row = ExportedConnection(provider["ProviderName"], {"name": provider["ProviderName"]})
    if domain_url is None:
        row.notes.append(
            f"the user pool has no domain, so no {callback} URL: fill {column} with the URL "
            "the IdP sends users to today"
        )
    else:
        row.cells[column] = f"{domain_url}{callback}"
    return row


def _saml(
    provider: dict[str, Any], details: dict[str, Any], pool_id: str, domain_url: str | None
) -> ExportedConnection | str:
    row = _row(provider, domain_url, "/saml2/idpresponse", "customAcsUrl")
    cells = row.cells
    cells["customEntityId"] = f"urn:amazon:cognito:sp:{pool_id}"
    if isinstance(details.get("MetadataURL"), str) and details["MetadataURL"]:
        cells["idpMetadataUrl"] = details["MetadataURL"]
    metadata = details.get("MetadataFile")
    if isinstance(metadata, str) and metadata:
        try:
            idp = parse_idp_metadata(metadata.encode())
        except MetadataError as exc:
            if "idpMetadataUrl" not in cells:
                return f"ProviderDetails.MetadataFile can't be read ({exc})"
            row.notes.append(f"ProviderDetails.MetadataFile can't be read ({exc})")
        else:
            cells["idpEntityId"] = idp.entity_id
            if idp.sso_services:
                cells["idpUrl"] = idp.sso_services[0][1]
            if idp.signing_certificates:
                cells["x509Cert"] = "\n".join(idp.signing_certificates)
    if "idpEntityId" not in cells and "idpMetadataUrl" not in cells:
        return "no MetadataFile or MetadataURL"
    mapping = provider.get("AttributeMapping")
    if isinstance(mapping, dict):
        for attribute, column in ATTRIBUTE_COLUMNS.items():
            if isinstance(mapping.get(attribute), str):
                cells[column] = mapping[attribute]
    if details.get("RequestSigningAlgorithm"):
        row.notes.append(
            "signs AuthnRequests with the pool's key, which Cognito does not export: the IdP "
            "must be given the new provider's certificate (needs_idp_change)"
        )
    if str(details.get("EncryptedResponses", "")).lower() == "true":
        row.notes.append(
            "the IdP encrypts assertions to the pool's key, which Cognito does not export: "
            "give the IdP the new provider's encryption certificate"
        )
    return row


def _oidc(
    provider: dict[str, Any], details: dict[str, Any], domain_url: str | None
) -> ExportedConnection | str:
    client_id, issuer = details.get("client_id"), details.get("oidc_issuer")
    if not isinstance(client_id, str) or not client_id:
        return "no ProviderDetails.client_id"
    if not isinstance(issuer, str) or not issuer:
        return "no ProviderDetails.oidc_issuer"
    row = _row(provider, domain_url, "/oauth2/idpresponse", "customRedirectUri")
    cells = row.cells
    cells["clientId"] = client_id
    secret = details.get("client_secret")
    if isinstance(secret, str) and secret:
        cells["clientSecret"] = secret
    else:
        row.notes.append("Cognito returned no client secret: fill clientSecret")
    cells["discoveryEndpoint"] = issuer.rstrip("/") + "/.well-known/openid-configuration"
    scopes = details.get("authorize_scopes")
    if isinstance(scopes, str) and scopes.strip():
        row.notes.append(
            f"asks for the scopes {scopes.strip()!r}: ask the new provider for them too"
        )
    return row
