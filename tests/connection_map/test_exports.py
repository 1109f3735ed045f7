"""The legacy providers' connection objects as connections CSV rows: each documented field in
its column, and what can't be carried said as a note or a skip reason."""

from __future__ import annotations

import base64

from connection_map.exports import (
    ExportedConnection,
    auth0_connection,
    cognito_domain_url,
    cognito_idp,
    okta_idp,
)
from connection_map.exports.rows import certificate_pem
from tests.connection_map.conftest import make_certificate

TENANT = "https://acme.eu.auth0.com"


def _row(value: ExportedConnection | str) -> ExportedConnection:
    assert isinstance(value, ExportedConnection), value
    return value


def test_azure_ad_finds_its_tenant_discovery_document() -> None:
    row = _row(
        auth0_connection(
            {
                "name": "contoso",
                "strategy": "waad",
                "options": {"client_id": "c", "client_secret": "s", "tenant_domain": "contoso.com"},
            },
            TENANT,
        )
    )
    assert row.cells["discoveryEndpoint"] == (
        "https://login.microsoftonline.com/contoso.com/v2.0/.well-known/openid-configuration"
    )
    assert row.cells["customRedirectUri"] == TENANT + "/login/callback"


def test_oidc_from_its_issuer_and_what_is_missing() -> None:
    row = _row(
        auth0_connection(
            {
                "name": "o",
                "strategy": "oidc",
                "options": {"client_id": "c", "issuer": "https://idp.example/"},
            },
            TENANT,
        )
    )
    assert row.cells["discoveryEndpoint"] == "https://idp.example/.well-known/openid-configuration"
    assert row.notes == ["Auth0 did not return the client secret: fill clientSecret"]
    assert auth0_connection({"name": "o", "strategy": "oidc", "options": {}}, TENANT) == (
        "no options.client_id"
    )
    nowhere = auth0_connection(
        {"name": "o", "strategy": "oidc", "options": {"client_id": "c"}}, TENANT
    )
    assert nowhere == "no discovery_url, issuer or tenant_domain to find the OIDC provider by"


def test_saml_without_metadata_or_a_readable_certificate_is_noted() -> None:
    row = _row(
        auth0_connection(
            {
                "name": "s",
                "strategy": "samlp",
                "options": {
                    "signInEndpoint": "https://idp/sso",
                    "signingCert": "bm90IGEgY2VydA==",
                    "metadataXml": "<not-metadata/>",
                    "user_id_attribute": "uid",
                    "fieldsMap": {"given_name": "fn", "family_name": "ln"},
                },
            },
            TENANT,
        )
    )
    assert "x509Cert" not in row.cells and "idpEntityId" not in row.cells
    assert row.cells["customEntityId"] == "urn:auth0:acme:s"
    assert row.cells["idpIdAttribute"] == "uid" and row.cells["firstNameAttribute"] == "fn"
    assert len(row.notes) == 3
    assert row.notes[0] == "options.signingCert is not a certificate: x509Cert left empty"
    assert row.notes[1].startswith("options.metadataXml can't be read")
    assert row.notes[2].startswith("Auth0 keeps no IdP entity id")


def test_non_sso_strategies_and_objects_are_skipped() -> None:
    assert auth0_connection({"name": "db", "strategy": "auth0"}, TENANT) == (
        "strategy 'auth0' is not an enterprise SSO connection"
    )
    assert auth0_connection([], TENANT) == "not an Auth0 connection object"
    assert okta_idp({"id": "g", "type": "GOOGLE"}, "https://o", {}) == (
        "type 'GOOGLE' is a social or non-SSO identity provider"
    )
    assert okta_idp("x", "https://o", {}) == "not an Okta IdP object"


def test_okta_rows_without_what_they_need() -> None:
    assert okta_idp({"id": "s", "type": "SAML2", "protocol": {}}, "https://o", {}) == (
        "no trust issuer or SSO URL"
    )
    assert okta_idp({"id": "o", "type": "OIDC", "protocol": None}, "https://o", {}) == (
        "no client id or issuer URL"
    )
    saml = _row(
        okta_idp(
            {
                "id": "s",
                "type": "SAML2",
                "status": "INACTIVE",
                "protocol": {
                    "endpoints": {"sso": {"url": "https://idp/sso"}},
                    "credentials": {"trust": {"issuer": "https://idp", "kid": "k"}},
                    "algorithms": {"request": {"signature": {"scope": "REQUEST"}}},
                },
            },
            "https://org.okta.example/",
            {},
        )
    )
    assert saml.cells["customAcsUrl"] == "https://org.okta.example/sso/saml2/s"
    assert saml.notes[0] == "INACTIVE at Okta"
    assert saml.notes[1] == "no certificate for the IdP key 'k': fill x509Cert"
    assert "needs_idp_change" in saml.notes[2]
    oidc = _row(
        okta_idp(
            {
                "id": "o",
                "type": "OIDC",
                "protocol": {
                    "issuer": {"url": "https://idp"},
                    "credentials": {"client": {"client_id": "c"}},
                },
            },
            "https://org.okta.example",
            {},
        )
    )
    assert oidc.notes == ["Okta did not return the client secret: fill clientSecret"]


def test_certificates_in_every_form_vendors_keep_them() -> None:
    pem = make_certificate("forms").strip()
    der = base64.b64decode("".join(pem.splitlines()[1:-1]))
    assert certificate_pem(pem) == pem
    assert certificate_pem(base64.b64encode(pem.encode()).decode()) == pem
    assert certificate_pem(base64.b64encode(der).decode()) == pem
    assert certificate_pem("!!") is None
    assert certificate_pem(base64.b64encode(b"plain text").decode()) is None


def test_cognito_domains_prefix_or_custom() -> None:
    assert (
        cognito_domain_url("acme", "eu-west-1") == "https://acme.auth.eu-west-1.amazoncognito.com"
    )
    assert cognito_domain_url("login.acme.example", "eu-west-1") == "https://login.acme.example"
    assert cognito_domain_url(None, "eu-west-1") is None


def test_cognito_saml_notes_and_skips() -> None:
    pool = "eu-west-1_Pool"
    signing = {
        "ProviderName": "Signed",
        "ProviderType": "SAML",
        "ProviderDetails": {
            "MetadataURL": "https://idp.example/metadata",
            "MetadataFile": "<not-metadata",
            "RequestSigningAlgorithm": "rsa-sha256",
            "EncryptedResponses": "true",
        },
    }
    row = _row(cognito_idp(signing, pool, "https://login.acme.example"))
    assert row.cells["idpMetadataUrl"] == "https://idp.example/metadata"
    assert row.cells["customAcsUrl"] == "https://login.acme.example/saml2/idpresponse"
    assert [note.split(" ")[0] for note in row.notes] == [
        "ProviderDetails.MetadataFile",
        "signs",
        "the",
    ]
    assert "needs_idp_change" in row.notes[1]
    unreadable = {
        "ProviderName": "Bad",
        "ProviderType": "SAML",
        "ProviderDetails": {"MetadataFile": "<x"},
    }
    assert str(cognito_idp(unreadable, pool, None)).startswith("ProviderDetails.MetadataFile can't")
    empty = {"ProviderName": "Empty", "ProviderType": "SAML", "ProviderDetails": {}}
    assert cognito_idp(empty, pool, None) == "no MetadataFile or MetadataURL"
    assert cognito_idp({"ProviderType": "OIDC"}, pool, None) == (
        "not a Cognito identity provider object"
    )
    no_issuer = {"ProviderName": "O", "ProviderType": "OIDC", "ProviderDetails": {"client_id": "c"}}
    assert cognito_idp(no_issuer, pool, None) == "no ProviderDetails.oidc_issuer"
    no_secret = {
        "ProviderName": "O",
        "ProviderType": "OIDC",
        "ProviderDetails": {"client_id": "c", "oidc_issuer": "https://i.example/"},
    }
    oidc = _row(cognito_idp(no_secret, pool, None))
    assert oidc.cells["discoveryEndpoint"] == "https://i.example/.well-known/openid-configuration"
    assert "clientSecret" not in oidc.cells and "customRedirectUri" not in oidc.cells
    assert any("fill clientSecret" in note for note in oidc.notes)
