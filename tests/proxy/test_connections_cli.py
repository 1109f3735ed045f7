"""`authswitch connections ...` end to end: real files, real metadata, real loopback HTTP."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa
from typer.testing import CliRunner

from connection_map import (
    Assessment,
    load_connection_map,
    read_connection_map_document,
)
from proxy.cli.main import app
from proxy.demo.loopback_server import LoopbackServer
from tests.conftest import answer_lifespan
from tests.connection_map.conftest import make_certificate, private_key_pem
from tests.connection_map.csv_fixture import (
    BROKEN,
    CLIENT_SECRET_SUFFIX,
    NOT_A_KEY_SECRET,
    render,
    write,
)
from tests.connection_map.idp_metadata import idp_entity, to_bytes

ROOT = Path(__file__).resolve().parents[2]
ROUTES: list[dict[str, Any]] = [
    {"path": "/login/callback", "protocol": "saml", "identify": ["query", "saml_issuer"]},
    {"path": "/sso/{connection}/acs", "protocol": "saml", "identify": ["path", "saml_issuer"]},
    {"path": "/oidc/{connection}/callback", "protocol": "oidc", "identify": ["path"]},
]


@pytest.fixture(scope="module")
def shared_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def good_cert(shared_key: rsa.RSAPrivateKey) -> str:
    return make_certificate("idp-signing", key=shared_key)


@pytest.fixture(scope="module")
def sp_private_key() -> str:
    return private_key_pem()


def run(*args: str) -> Any:
    return CliRunner().invoke(app, ["connections", *args])


@pytest.fixture
def deployment(tmp_path: Path) -> Path:
    """A config with its flags file; the map file doesn't exist until the first import."""
    (tmp_path / "flags.yaml").write_text(yaml.safe_dump({"version": 1, "canary": []}))
    config = {
        "legacy": {"url": "http://127.0.0.1:9"},
        "connection_map": "connections.yaml",
        "flags": {"file": "flags.yaml"},
        "routes": ROUTES,
    }
    path = tmp_path / "authswitch.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def set_flags(config: Path, **state: Any) -> None:
    (config.parent / "flags.yaml").write_text(yaml.safe_dump({"version": 2, **state}))


# -- import csv -------------------------------------------------------------------------------


def test_import_csv_writes_a_map_the_proxy_loads(
    deployment: Path, shared_key: rsa.RSAPrivateKey, sp_private_key: str
) -> None:
    csv_file = write(deployment.parent, render(shared_key, sp_private_key, drop_broken=True))

    result = run("import", "csv", str(csv_file), "--config", str(deployment))

    assert result.exit_code == 0, result.output
    served = load_connection_map(deployment.parent / "connections.yaml")
    assert len(served) == 26 and served.version == 1
    document = read_connection_map_document(deployment.parent / "connections.yaml")
    connections = {c.id: c for c in document.connections}
    assert result.stdout.splitlines()[0].startswith("imported 26 connection(s) into ")
    # Nothing is imported into the new provider yet: every connection is blocked, and says why.
    acme = connections.get("acme")
    assert acme is not None and acme.assessment is Assessment.BLOCKED
    assert acme.assessment_reasons == (
        "no_new_provider_target: no new-provider target: set new_provider.url once it is "
        "imported there",
    )
    pawnee = connections.get("pawnee")  # ACS URL /sso/pawnee/acs: the path route serves it
    assert pawnee is not None and len(pawnee.assessment_reasons) == 1
    tyrell = connections.get("tyrell")  # its encryption keys are in the CSV: they can move
    assert tyrell is not None and len(tyrell.assessment_reasons) == 1
    aperture = connections.get("aperture")
    assert aperture is not None
    assert [r.split(":")[0] for r in aperture.assessment_reasons] == [
        "no_new_provider_target",
        "oidc_discovery_not_https",
    ]
    written = (deployment.parent / "connections.yaml").read_text()
    output = result.output
    for text in (written, output):
        assert "PRIVATE KEY" not in text and CLIENT_SECRET_SUFFIX not in text


def test_a_bad_csv_leaves_the_map_untouched_and_names_every_row(
    deployment: Path, shared_key: rsa.RSAPrivateKey, sp_private_key: str
) -> None:
    good = write(
        deployment.parent, render(shared_key, sp_private_key, drop_broken=True), "good.csv"
    )
    assert run("import", "csv", str(good), "--config", str(deployment)).exit_code == 0
    map_file = deployment.parent / "connections.yaml"
    before = map_file.read_bytes()
    bad = write(deployment.parent, render(shared_key, sp_private_key), "bad.csv")

    result = run("import", "csv", str(bad), "--config", str(deployment))

    assert result.exit_code == 1
    assert map_file.read_bytes() == before
    assert result.stdout == ""
    assert f"{len(BROKEN)} problems, nothing imported" in result.stderr
    for row, column in BROKEN:
        line = next(line for line in result.stderr.splitlines() if f"row {row} (line" in line)
        assert column is None or f"column {column!r}" in line
    key_body = sp_private_key.splitlines()[1]
    for secret in (key_body, NOT_A_KEY_SECRET, CLIENT_SECRET_SUFFIX):
        assert secret not in result.output


def test_an_unreadable_csv_is_refused(deployment: Path) -> None:
    result = run(
        "import", "csv", str(deployment.parent / "absent.csv"), "--config", str(deployment)
    )
    assert result.exit_code == 1
    assert "absent.csv: cannot read: No such file or directory" in result.stderr
    assert not (deployment.parent / "connections.yaml").exists()


# -- import metadata --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def metadata(tmp_path_factory: pytest.TempPathFactory, sp_private_key: str) -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    entity = idp_entity(
        tmp_path_factory.mktemp("idp"),
        "https://idp.acme.example",
        signing_certs=[
            make_certificate("acme one", key=key),
            make_certificate("acme two", key=key),
        ],
        key_pem=sp_private_key,
    )
    return to_bytes(entity)


def test_import_metadata_from_a_file(deployment: Path, metadata: bytes) -> None:
    path = deployment.parent / "acme-idp.xml"
    path.write_bytes(metadata)

    result = run("import", "metadata", str(path), "--id", "acme", "--config", str(deployment))

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith(
        "https://idp.acme.example: 2 signing certificate(s), 2 SSO URL(s), NameID formats: "
    )
    acme = read_connection_map_document(deployment.parent / "connections.yaml").connections[0]
    assert acme.saml is not None and len(acme.saml.signing_certificates) == 2
    assert acme.assessment is Assessment.BLOCKED  # no target yet


@pytest.fixture
def metadata_host(metadata: bytes) -> Iterator[LoopbackServer]:
    async def serve(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": metadata})

    with LoopbackServer(serve, name="idp-metadata") as server:
        yield server


def test_import_metadata_from_a_url(deployment: Path, metadata_host: LoopbackServer) -> None:
    url = f"{metadata_host.url}/app/acme/sso/saml/metadata"
    refused = run("import", "metadata", url, "--id", "acme", "--config", str(deployment))
    assert refused.exit_code == 1 and "not https (use --allow-http" in refused.stderr
    assert not (deployment.parent / "connections.yaml").exists()

    args = ("import", "metadata", url, "--id", "acme", "--allow-http", "--timeout", "5")
    result = run(*args, "--config", str(deployment))

    assert result.exit_code == 0, result.output
    acme = read_connection_map_document(deployment.parent / "connections.yaml").connections[0]
    assert acme.saml is not None and acme.saml.idp_metadata_url == url


def test_metadata_over_the_size_cap_is_refused(deployment: Path, metadata: bytes) -> None:
    path = deployment.parent / "big.xml"
    path.write_bytes(metadata + b" " * 2048)
    args = ("import", "metadata", str(path), "--id", "acme", "--max-bytes", str(len(metadata)))
    result = run(*args, "--config", str(deployment))
    assert result.exit_code == 1
    assert f"big.xml': larger than {len(metadata)} bytes" in result.stderr


def test_sp_metadata_is_refused_with_the_reason(deployment: Path) -> None:
    path = deployment.parent / "sp.xml"
    path.write_text(
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x">'
        '<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"/>'
        "</md:EntityDescriptor>"
    )
    result = run("import", "metadata", str(path), "--id", "acme", "--config", str(deployment))
    assert result.exit_code == 1
    assert "describes a service provider (SPSSODescriptor), not an IdP" in result.stderr


# -- check ------------------------------------------------------------------------------------


def write_map(config: Path, good_cert: str) -> None:
    def saml(cid: str, **saml_facts: Any) -> dict[str, Any]:
        return {
            "id": cid,
            "protocol": "saml",
            "saml": {
                "idp_entity_id": f"https://idp.{cid}.example",
                "signing_certificates": [good_cert],
                **saml_facts,
            },
            "legacy": {"callback_url": f"https://login.legacy.example/sso/{cid}/acs"},
            "new_provider": {"url": f"https://np.example/{cid}"},
        }

    document = {
        "version": 1,
        "connections": [
            saml("acme"),
            saml("globex", assertion_encryption={"enabled": True}),
            {
                "id": "hooli",
                "protocol": "oidc",
                "oidc": {"discovery_url": "https://hooli.example/.well-known/openid-configuration"},
                "legacy": {"callback_url": "https://login.legacy.example/oauth/hooli"},
                "new_provider": {"url": "https://np.example/hooli"},
            },
        ],
    }
    (config.parent / "connections.yaml").write_text(yaml.safe_dump(document))


def test_check_fails_when_a_flagged_on_connection_is_not_transparent(
    deployment: Path, good_cert: str
) -> None:
    write_map(deployment, good_cert)
    set_flags(deployment, canary=["acme", "globex"])

    result = run("check", "--config", str(deployment))

    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["CONNECTION", "PROTOCOL", "TRIAGE", "STORED", "FLAG", "REASONS"]
    globex = next(line for line in lines if line.startswith("globex"))
    assert globex.split()[:6] == [
        "globex",
        "saml",
        "needs_idp_change",
        "transparent",
        "(drift)",
        "on",
    ]
    assert "assertion_encryption_key_not_exportable" in globex
    hooli = next(line for line in lines if line.startswith("hooli"))
    assert "legacy_url_not_routed" in hooli and "/oauth/hooli" in hooli
    assert lines[-1].endswith("FLAGGED ON BUT NOT TRANSPARENT: globex")


def test_check_passes_when_only_transparent_connections_are_flagged_on(
    deployment: Path, good_cert: str
) -> None:
    write_map(deployment, good_cert)
    set_flags(deployment, canary=["acme"], overrides={"globex": "off"})

    result = run("check", "--json", "--config", str(deployment))

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [(c["id"], c["assessment"], c["flagged_on"]) for c in report["connections"]] == [
        ("acme", "transparent", True),
        ("globex", "needs_idp_change", False),
        ("hooli", "blocked", False),
    ]
    assert report["summary"]["drift"] == ["globex", "hooli"]
    assert report["exit_code"] == 0


def test_check_on_the_shipped_examples_is_clean() -> None:
    result = run("check", "--json", "--config", str(ROOT / "examples" / "authswitch.yaml"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["summary"]["drift"] == []
    assert report["summary"]["flagged_on_not_transparent"] == []


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda c: c.write_text("legacy: {}\n"), "config '"),
        (
            lambda c: (c.parent / "connections.yaml").write_text("connections: [{id: x}]\n"),
            "key 'connections[0] (id 'x').protocol'",
        ),
        (lambda c: (c.parent / "flags.yaml").write_text("stage_percent: 500\n"), "flags"),
    ],
    ids=["bad-config", "bad-map", "bad-flags"],
)
def test_check_exits_2_when_its_inputs_are_unusable(
    deployment: Path, good_cert: str, setup: Any, message: str
) -> None:
    write_map(deployment, good_cert)
    setup(deployment)
    result = run("check", "--config", str(deployment))
    assert result.exit_code == 2
    assert result.stderr.startswith("authswitch: ") and message in result.stderr


# -- export csv -------------------------------------------------------------------------------


def test_export_gives_back_the_imported_file(
    deployment: Path, shared_key: rsa.RSAPrivateKey, sp_private_key: str
) -> None:
    text = render(shared_key, sp_private_key, drop_broken=True)
    original = write(deployment.parent, text)
    assert run("import", "csv", str(original), "--config", str(deployment)).exit_code == 0

    bare = run("export", "csv", "--config", str(deployment))
    assert bare.exit_code == 0
    assert "PRIVATE KEY" not in bare.stdout and CLIENT_SECRET_SUFFIX not in bare.stdout
    assert bare.stderr.startswith("authswitch: 11 secret cell(s) left empty: hooli.clientSecret, ")
    assert "massive.requestSigningKey" in bare.stderr and "and 1 more" in bare.stderr

    out = deployment.parent / "for-new-provider.csv"
    args = ("export", "csv", "--secrets-from", str(original), "--output", str(out))
    full = run(*args, "--config", str(deployment))
    assert full.exit_code == 0, full.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert full.stderr == f"exported 26 connection(s) to {out}\n"
    assert "PRIVATE KEY" in out.read_text()
    again = run("import", "csv", str(out), "--config", str(deployment))
    assert again.exit_code == 0
    assert read_connection_map_document(deployment.parent / "connections.yaml").version == 2
