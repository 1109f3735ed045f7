"""Throw-away RSA signing keys and self-signed certificates for the demo parties."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

# Backdate the certificate a little so a peer whose clock runs behind still accepts it.
_BACKDATE = timedelta(minutes=5)


@dataclass(frozen=True)
class KeyPair:
    """A PEM private key and the PEM certificate for its public half."""

    key_pem: str = field(repr=False)
    cert_pem: str


def generate_keypair(common_name: str, *, bits: int = 2048, days: int = 365) -> KeyPair:
    """Generate an RSA key and a SHA-256 self-signed certificate for `common_name`."""
    if days < 1:
        raise ValueError(f"certificate lifetime must be at least one day, got {days}")
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    return KeyPair(key_pem=key_pem.decode("ascii"), cert_pem=cert_pem.decode("ascii"))
