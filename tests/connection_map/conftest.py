"""Certificates with exactly the properties a test needs, generated once per session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

FIXTURES = Path(__file__).parent / "fixtures"
# cryptography no longer signs with SHA-1, so this one was made once with
# `openssl req -x509 -sha1 -newkey rsa:2048 -days 27000` (valid until 2100; its key discarded).
SHA1_CERT = (FIXTURES / "sha1_signed_cert.pem").read_text()


def make_certificate(
    common_name: str,
    *,
    bits: int = 2048,
    valid_for: timedelta = timedelta(days=3650),
    key: rsa.RSAPrivateKey | None = None,
) -> str:
    """A self-signed SHA-256 certificate; a negative `valid_for` makes an expired one."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=bits)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    not_after = now + valid_for
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(min(now, not_after) - timedelta(days=365))
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def private_key_pem(bits: int = 2048) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


@pytest.fixture(scope="session")
def shared_key() -> rsa.RSAPrivateKey:
    # One key for the many good certificates: generating a 2048-bit key per row is slow.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def good_cert(shared_key: rsa.RSAPrivateKey) -> str:
    return make_certificate("idp-signing", key=shared_key)


@pytest.fixture(scope="session")
def sp_private_key() -> str:
    return private_key_pem()
