"""`connections export legacy --source cognito` against moto's Cognito: a user pool and its
identity providers created through the API, exported, imported and triaged."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from connection_map import read_connection_map_document
from proxy.cli.main import app
from tests.connection_map.conftest import make_certificate, private_key_pem
from tests.connection_map.idp_metadata import idp_entity, to_bytes
from tests.proxy.cognito_emulator import REGION, SECRET_ACCESS_KEY, CognitoEmulator

CLIENT_SECRET = "SEEKRIT-cognito-oidc-client-secret"
EMAIL_CLAIM = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"


def _export(emulator: CognitoEmulator, pool: str, tmp_path: Path, *args: str) -> Result:
    return CliRunner().invoke(
        app,
        [
            "connections",
            "export",
            "legacy",
            "--source",
            "cognito",
            "--user-pool-id",
            pool,
            "--aws-credentials-file",
            str(emulator.credentials_file(tmp_path)),
            "--url",
            emulator.url,
            "--out",
            str(tmp_path / "connections.csv"),
            *args,
        ],
    )


def _import(tmp_path: Path) -> Result:
    (tmp_path / "flags.yaml").write_text(yaml.safe_dump({"version": 1, "canary": []}))
    config: dict[str, Any] = {
        "legacy": {"url": "http://127.0.0.1:9"},
        "connection_map": "connections.yaml",
        "flags": {"file": "flags.yaml"},
        "routes": [{"path": "/saml2/idpresponse", "protocol": "saml", "identify": ["saml_issuer"]}],
    }
    (tmp_path / "authswitch.yaml").write_text(yaml.safe_dump(config))
    return CliRunner().invoke(
        app,
        [
            "connections",
            "import",
            "csv",
            str(tmp_path / "connections.csv"),
            "--config",
            str(tmp_path / "authswitch.yaml"),
        ],
    )


def test_saml_and_oidc_providers_round_trip(
    cognito_emulator: CognitoEmulator, tmp_path: Path
) -> None:
    certificate = make_certificate("cognito-saml-idp")
    metadata = to_bytes(
        idp_entity(
            tmp_path / "md",
            "https://idp.acme.example/metadata",
            signing_certs=[certificate],
            key_pem=private_key_pem(),
        )
    ).decode()
    pool = cognito_emulator.new_pool("connections")
    cognito = cognito_emulator.client()
    cognito.create_user_pool_domain(Domain="acme-legacy", UserPoolId=pool)
    cognito.create_identity_provider(
        UserPoolId=pool,
        ProviderName="AcmeSAML",
        ProviderType="SAML",
        ProviderDetails={"MetadataFile": metadata, "IDPSignout": "false"},
        AttributeMapping={"email": EMAIL_CLAIM},
    )
    cognito.create_identity_provider(
        UserPoolId=pool,
        ProviderName="GlobexSAML",
        ProviderType="SAML",
        ProviderDetails={"MetadataURL": "https://sso.globex.example/metadata"},
    )
    cognito.create_identity_provider(
        UserPoolId=pool,
        ProviderName="InitechOIDC",
        ProviderType="OIDC",
        ProviderDetails={
            "client_id": "initech-client",
            "client_secret": CLIENT_SECRET,
            "oidc_issuer": "https://login.initech.example",
            "authorize_scopes": "openid email profile",
            "attributes_request_method": "GET",
        },
    )
    cognito.create_identity_provider(
        UserPoolId=pool,
        ProviderName="Google",
        ProviderType="Google",
        ProviderDetails={"client_id": "g", "client_secret": "g", "authorize_scopes": "email"},
    )
    exported = _export(cognito_emulator, pool, tmp_path, "--json")
    assert exported.exit_code == 0, exported.output
    report = json.loads(exported.stdout)
    assert sorted(report["exported"]) == ["AcmeSAML", "GlobexSAML", "InitechOIDC"]
    assert report["skipped"] == [
        {
            "id": "Google",
            "reason": "type 'Google' is a social identity provider, not an SSO connection",
        }
    ]
    csv_file = tmp_path / "connections.csv"
    assert stat.S_IMODE(csv_file.stat().st_mode) == 0o600
    assert CLIENT_SECRET in csv_file.read_text()
    assert "SEEKRIT" not in exported.output

    imported = _import(tmp_path)
    assert imported.exit_code == 0, imported.output
    connections = {
        c.id: c for c in read_connection_map_document(tmp_path / "connections.yaml").connections
    }
    domain = f"https://acme-legacy.auth.{REGION}.amazoncognito.com"
    acme = connections["AcmeSAML"]
    assert acme.saml is not None and acme.legacy is not None
    assert acme.saml.idp_entity_id == "https://idp.acme.example/metadata"
    assert [pem.strip() for pem in acme.saml.signing_certificates] == [certificate.strip()]
    assert acme.saml.attributes is not None and acme.saml.attributes.email == EMAIL_CLAIM
    assert str(acme.legacy.callback_url) == f"{domain}/saml2/idpresponse"
    assert acme.legacy.sp_entity_id == f"urn:amazon:cognito:sp:{pool}"
    assert [r.split(":")[0] for r in acme.assessment_reasons] == ["no_new_provider_target"]
    globex = connections["GlobexSAML"]
    assert globex.saml is not None
    assert str(globex.saml.idp_metadata_url) == "https://sso.globex.example/metadata"
    initech = connections["InitechOIDC"]
    assert initech.oidc is not None and initech.oidc.client_id == "initech-client"
    assert (
        str(initech.oidc.discovery_url)
        == "https://login.initech.example/.well-known/openid-configuration"
    )
    assert initech.legacy is not None
    assert str(initech.legacy.callback_url) == f"{domain}/oauth2/idpresponse"
    map_text = (tmp_path / "connections.yaml").read_text()
    assert CLIENT_SECRET not in map_text and CLIENT_SECRET not in imported.output


def test_every_page_of_identity_providers(
    cognito_emulator: CognitoEmulator, tmp_path: Path
) -> None:
    pool = cognito_emulator.new_pool("many-providers")
    cognito = cognito_emulator.client()
    names = {f"Oidc{i:03d}" for i in range(65)}  # two ListIdentityProviders pages of 60
    for name in names:
        cognito.create_identity_provider(
            UserPoolId=pool,
            ProviderName=name,
            ProviderType="OIDC",
            ProviderDetails={
                "client_id": name,
                "client_secret": CLIENT_SECRET,
                "oidc_issuer": f"https://{name.lower()}.example",
                "authorize_scopes": "openid",
            },
        )
    exported = _export(cognito_emulator, pool, tmp_path, "--json")
    assert exported.exit_code == 0, exported.output
    report = json.loads(exported.stdout)
    assert sorted(report["exported"]) == sorted(names)
    notes = {note["id"] for note in report["notes"] if "no domain" in note["note"]}
    assert notes == names  # no pool domain: the redirect URI is left for the operator


@pytest.mark.parametrize(
    ("pool", "exit_code", "message"),
    [
        ("eu-west-1_missing", 6, "ResourceNotFoundException"),  # the source says no
        ("nopool", 2, "not a pool id"),  # a usage error, before any request
    ],
)
def test_a_missing_pool_is_a_clear_error(
    cognito_emulator: CognitoEmulator, tmp_path: Path, pool: str, exit_code: int, message: str
) -> None:
    result = _export(cognito_emulator, pool, tmp_path)
    assert result.exit_code == exit_code and message in result.output
    assert SECRET_ACCESS_KEY not in result.output
    assert not (tmp_path / "connections.csv").exists()


def test_cognito_needs_a_pool_and_credentials(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["connections", "export", "legacy", "--source", "cognito", "--out", str(tmp_path / "c")],
    )
    assert result.exit_code == 2
    assert "--user-pool-id and --aws-credentials-file" in result.output
