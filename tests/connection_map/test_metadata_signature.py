"""Signed IdP metadata checked against a pinned certificate or fingerprint: metadata a SAML
library wrote, signed by python3-saml with generated keys; any tampering refused."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from onelogin.saml2.metadata import OneLogin_Saml2_Metadata
from typer.testing import CliRunner

from connection_map import MetadataError, read_connection_map_document
from connection_map.metadata_signature import SignaturePin, verify_metadata_signature
from proxy.cli.main import app
from tests.connection_map.conftest import make_certificate
from tests.connection_map.idp_metadata import idp_entity, to_bytes

ACME = "https://idp.acme.example"
LOCATION = "https://idp.acme.example/sso/redirect"


@pytest.fixture(scope="module")
def signer() -> tuple[str, str]:
    """(private key PEM, certificate PEM) of the party that signs the metadata."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return pem, make_certificate("metadata signer", key=key)


@pytest.fixture(scope="module")
def unsigned(tmp_path_factory: pytest.TempPathFactory, signer: tuple[str, str]) -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    entity = idp_entity(
        tmp_path_factory.mktemp("idp"),
        ACME,
        signing_certs=[make_certificate("acme signing", key=key)],
        key_pem=signer[0],
    )
    return to_bytes(entity)


@pytest.fixture(scope="module")
def signed(unsigned: bytes, signer: tuple[str, str]) -> bytes:
    key, cert = signer
    text = OneLogin_Saml2_Metadata.sign_metadata(unsigned.decode(), key, cert)
    return text if isinstance(text, bytes) else text.encode()


def fingerprint(cert_pem: str) -> str:
    der = x509.load_pem_x509_certificate(cert_pem.encode()).public_bytes(serialization.Encoding.DER)
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def test_signed_metadata_verifies_against_the_pinned_certificate_or_fingerprint(
    signed: bytes, signer: tuple[str, str]
) -> None:
    verify_metadata_signature(signed, SignaturePin(certificate_pem=signer[1]))
    verify_metadata_signature(signed, SignaturePin(sha256_fingerprint=fingerprint(signer[1])))


def test_a_tampered_document_is_refused(signed: bytes, signer: tuple[str, str]) -> None:
    assert LOCATION.encode() in signed
    tampered = signed.replace(LOCATION.encode(), b"https://evil.example/sso/redirect")
    for pin in (
        SignaturePin(certificate_pem=signer[1]),
        SignaturePin(sha256_fingerprint=fingerprint(signer[1])),
    ):
        with pytest.raises(MetadataError, match="does not verify with the pinned key"):
            verify_metadata_signature(tampered, pin)


def test_another_key_an_unsigned_document_and_a_wrapped_one_are_refused(
    signed: bytes, unsigned: bytes
) -> None:
    other = make_certificate("someone else")
    with pytest.raises(MetadataError, match="does not verify with the pinned key"):
        verify_metadata_signature(signed, SignaturePin(certificate_pem=other))
    with pytest.raises(MetadataError, match="not signed with the certificate of the pinned"):
        verify_metadata_signature(signed, SignaturePin(sha256_fingerprint=fingerprint(other)))
    with pytest.raises(MetadataError, match="is not signed"):
        verify_metadata_signature(unsigned, SignaturePin(certificate_pem=other))
    # The signature re-pointed at a part of the document: the rest could then be changed.
    partial = signed.replace(b'URI="#', b'URI="#part-', 1)
    with pytest.raises(MetadataError, match="does not cover the whole document"):
        verify_metadata_signature(partial, SignaturePin(certificate_pem=other))


def test_import_metadata_with_a_pin_refuses_a_tampered_file_and_imports_the_signed_one(
    tmp_path: Path, signed: bytes, signer: tuple[str, str]
) -> None:
    (tmp_path / "flags.yaml").write_text(yaml.safe_dump({"version": 1, "canary": []}))
    config = tmp_path / "authswitch.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "legacy": {"url": "http://127.0.0.1:9"},
                "connection_map": "connections.yaml",
                "flags": {"file": "flags.yaml"},
                "routes": [
                    {"path": "/login/callback", "protocol": "saml", "identify": ["saml_issuer"]}
                ],
            }
        )
    )
    pem = tmp_path / "signer.pem"
    pem.write_text(signer[1])
    tampered = tmp_path / "tampered.xml"
    tampered.write_bytes(signed.replace(LOCATION.encode(), b"https://evil.example/sso"))
    good = tmp_path / "signed.xml"
    good.write_bytes(signed)
    common = ("--id", "acme", "--config", str(config), "--signing-cert", str(pem))

    refused = CliRunner().invoke(app, ["connections", "import", "metadata", str(tampered), *common])
    assert refused.exit_code == 1
    assert "does not verify with the pinned key" in refused.output
    assert not (tmp_path / "connections.yaml").exists()

    imported = CliRunner().invoke(app, ["connections", "import", "metadata", str(good), *common])
    assert imported.exit_code == 0, imported.output
    (acme,) = read_connection_map_document(tmp_path / "connections.yaml").connections
    assert acme.saml is not None and acme.saml.idp_entity_id == ACME
