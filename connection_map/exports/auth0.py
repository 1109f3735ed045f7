"""Auth0 connections (Management API `GET /api/v2/connections`) as connections CSV rows.

Enterprise strategies only: `samlp` (SAML) and `oidc`, `okta`, `waad` (Azure AD / Entra ID,
OIDC through its tenant's discovery document). `adfs` is WS-Federation and social or database
connections are not SSO connections: skipped with the reason. The legacy endpoint is where the
customer's IdP sends users today: `https://TENANT/login/callback?connection=NAME` for SAML (the
SP entity id `options.entityId`, else Auth0's `urn:auth0:TENANT:NAME`), and
`https://TENANT/login/callback` for OIDC. Auth0 keeps no IdP issuer for SAML: it comes from the
connection's metadata (`options.metadataXml`, read by the hardened metadata parser) or its
`options.metadataUrl`; a connection with neither is written with a note to fill idpEntityId.
"""

from __future__ import annotations

from typing import Any

from connection_map.exports.rows import ATTRIBUTE_COLUMNS, ExportedConnection, certificate_pem
from connection_map.saml_metadata import MetadataError, parse_idp_metadata

OIDC_STRATEGIES = frozenset({"oidc", "okta", "waad"})


def auth0_connection(connection: Any, tenant_url: str) -> ExportedConnection | str:
    """One Auth0 connection as a CSV row, or why it is not exported."""
    if not isinstance(connection, dict) or not isinstance(connection.get("name"), str):
        return "not an Auth0 connection object"
    strategy = connection.get("strategy")
    options = connection.get("options")
    if not isinstance(options, dict):
        options = {}
    if strategy == "samlp":
        return _saml(connection["name"], connection, options, tenant_url.rstrip("/"))
    if strategy in OIDC_STRATEGIES:
        return _oidc(connection["name"], connection, options, tenant_url.rstrip("/"), strategy)
    if strategy == "adfs":
        return "adfs is WS-Federation, not SAML or OIDC: move it by hand"
    return f"strategy {strategy!r} is not an enterprise SSO connection"


def _common(connection: dict[str, Any], options: dict[str, Any]) -> dict[str, str]:
    cells: dict[str, str] = {}
    if isinstance(connection.get("display_name"), str):
        cells["organizationName"] = connection["display_name"]
    domains = options.get("domain_aliases")
    if isinstance(domains, list) and domains:
        cells["domains"] = ",".join(str(domain) for domain in domains)
    cells["name"] = str(connection.get("display_name") or connection["name"])
    return cells


def _saml(
    name: str, connection: dict[str, Any], options: dict[str, Any], tenant: str
) -> ExportedConnection:
    row = ExportedConnection(name, _common(connection, options))
    cells = row.cells
    tenant_name = tenant.split("//", 1)[-1].split(".", 1)[0]
    cells["customEntityId"] = str(options.get("entityId") or f"urn:auth0:{tenant_name}:{name}")
    cells["customAcsUrl"] = f"{tenant}/login/callback?connection={name}"
    if isinstance(options.get("signInEndpoint"), str):
        cells["idpUrl"] = options["signInEndpoint"]
    certificate = certificate_pem(str(options.get("signingCert") or ""))
    if certificate is not None:
        cells["x509Cert"] = certificate
    elif options.get("signingCert"):
        row.notes.append("options.signingCert is not a certificate: x509Cert left empty")
    if isinstance(options.get("metadataUrl"), str):
        cells["idpMetadataUrl"] = options["metadataUrl"]
    metadata = options.get("metadataXml")
    if isinstance(metadata, str) and metadata:
        try:
            cells["idpEntityId"] = parse_idp_metadata(metadata.encode()).entity_id
        except MetadataError as exc:
            row.notes.append(f"options.metadataXml can't be read ({exc})")
    if "idpEntityId" not in cells and "idpMetadataUrl" not in cells:
        row.notes.append(
            "Auth0 keeps no IdP entity id for this connection: fill idpEntityId (the Issuer "
            "its IdP sends) before the import"
        )
    idp_initiated = options.get("idpinitiated")
    if isinstance(idp_initiated, dict) and isinstance(idp_initiated.get("enabled"), bool):
        cells["idpInitiatedEnabled"] = "true" if idp_initiated["enabled"] else "false"
    fields = options.get("fieldsMap")
    if isinstance(fields, dict):
        for field, column in ATTRIBUTE_COLUMNS.items():
            if isinstance(fields.get(field), str):
                cells[column] = fields[field]
    if isinstance(options.get("user_id_attribute"), str):
        cells["idpIdAttribute"] = options["user_id_attribute"]
    if options.get("signSAMLRequest") is True:
        row.notes.append(
            "signs AuthnRequests with the Auth0 tenant's key, which Auth0 does not export: "
            "the IdP must be given the new provider's certificate (needs_idp_change)"
        )
    return row


def _oidc(
    name: str, connection: dict[str, Any], options: dict[str, Any], tenant: str, strategy: str
) -> ExportedConnection | str:
    row = ExportedConnection(name, _common(connection, options))
    cells = row.cells
    cells["customRedirectUri"] = f"{tenant}/login/callback"
    client_id = options.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        return "no options.client_id"
    cells["clientId"] = client_id
    secret = options.get("client_secret")
    if isinstance(secret, str) and secret:
        cells["clientSecret"] = secret
    else:
        row.notes.append("Auth0 did not return the client secret: fill clientSecret")
    discovery = options.get("discovery_url")
    if not isinstance(discovery, str) and strategy == "waad":
        tenant_domain = options.get("tenant_domain")
        if isinstance(tenant_domain, str) and tenant_domain:
            discovery = (
                f"https://login.microsoftonline.com/{tenant_domain}/v2.0/"
                ".well-known/openid-configuration"
            )
    if not isinstance(discovery, str) and isinstance(options.get("issuer"), str):
        discovery = options["issuer"].rstrip("/") + "/.well-known/openid-configuration"
    if not isinstance(discovery, str):
        return "no discovery_url, issuer or tenant_domain to find the OIDC provider by"
    cells["discoveryEndpoint"] = discovery
    return row
