"""Reading X.509 certificates from a CSV cell, a metadata element or the map, and their facts."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)
_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]+$")


class CertificateError(ValueError):
    """Not a usable certificate; the message never contains the input."""


@dataclass(frozen=True, slots=True)
class CertificateFacts:
    """What triage needs to know about one certificate."""

    subject: str
    not_after: datetime
    public_key: str  # "RSA", "EC", "DSA", "Ed25519", ...
    key_bits: int | None  # RSA/DSA modulus size, EC curve size
    signature_hash: str | None  # "sha256", "sha1", ... (None: EdDSA)
    fingerprint_sha256: str

    @property
    def label(self) -> str:
        """How a person recognises the certificate: subject and fingerprint start."""
        return f"{self.subject} (SHA-256 {self.fingerprint_sha256[:16]}...)"


def split_pem_certificates(text: str) -> list[str]:
    """Every certificate in `text` (PEM blocks, or one bare base64 DER value) as canonical PEM."""
    blocks = list(_PEM_BLOCK.finditer(text))
    if not blocks:
        if not text.strip() or not _BASE64.fullmatch(text):
            raise CertificateError("is not a PEM certificate")
        return [certificate_pem_from_base64(text)]
    if any(block.group(1) != "CERTIFICATE" for block in blocks):
        # A private key pasted into a certificate column: say so, never show it.
        raise CertificateError("holds a PEM block that is not a CERTIFICATE")
    leftover = _PEM_BLOCK.sub("", text)
    if leftover.strip():
        raise CertificateError("has text outside its PEM blocks")
    return [certificate_pem_from_base64(block.group(2)) for block in blocks]


def certificate_pem_from_base64(value: str) -> str:
    """Canonical PEM for a base64 DER certificate (whitespace allowed), or CertificateError."""
    try:
        der = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise CertificateError("is not valid base64") from None
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError:
        raise CertificateError("is not a DER X.509 certificate") from None
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def certificate_facts(pem: str) -> CertificateFacts:
    """Parse one PEM certificate; CertificateError if it doesn't parse."""
    try:
        certificate = x509.load_pem_x509_certificate(pem.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise CertificateError("is not a PEM X.509 certificate") from None
    key = certificate.public_key()
    kind, bits = _key_kind(key)
    try:
        algorithm = certificate.signature_hash_algorithm
    except UnsupportedAlgorithm:
        algorithm = None
    return CertificateFacts(
        subject=certificate.subject.rfc4514_string() or "(empty subject)",
        not_after=certificate.not_valid_after_utc,
        public_key=kind,
        key_bits=bits,
        signature_hash=algorithm.name if algorithm is not None else None,
        fingerprint_sha256=certificate.fingerprint(hashes.SHA256()).hex(),
    )


def _key_kind(key: object) -> tuple[str, int | None]:
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    return type(key).__name__.removesuffix("PublicKey").lstrip("_"), None


def check_private_key(pem: str) -> None:
    """Raise CertificateError unless `pem` is an unencrypted PEM private key (never echoed)."""
    try:
        serialization.load_pem_private_key(pem.strip().encode("ascii"), password=None)
    except TypeError:
        raise CertificateError("is a password-protected private key") from None
    except (ValueError, UnicodeEncodeError, UnsupportedAlgorithm):
        raise CertificateError("is not a PEM private key") from None
