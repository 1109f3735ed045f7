from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from proxy.demo import KeyPair, generate_keypair


def test_keypair_is_a_self_signed_sha256_rsa_certificate_for_its_key(idp_keys: KeyPair) -> None:
    cert = x509.load_pem_x509_certificate(idp_keys.cert_pem.encode())
    key = serialization.load_pem_private_key(idp_keys.key_pem.encode(), password=None)

    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048
    assert cert.public_key() == key.public_key()
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    assert cert.subject == cert.issuer
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == "idp.acme.example"
    cert.verify_directly_issued_by(cert)  # raises when the self-signature is wrong


def test_certificate_is_valid_now_and_for_the_requested_days() -> None:
    pair = generate_keypair("short.example", bits=1024, days=2)
    cert = x509.load_pem_x509_certificate(pair.cert_pem.encode())
    now = datetime.now(UTC)

    assert cert.not_valid_before_utc <= now
    assert now + timedelta(days=1) < cert.not_valid_after_utc <= now + timedelta(days=2)


def test_each_call_generates_a_new_key() -> None:
    first, second = generate_keypair("a"), generate_keypair("a")
    assert first.key_pem != second.key_pem
    assert first.cert_pem != second.cert_pem


def test_private_key_stays_out_of_repr(idp_keys: KeyPair) -> None:
    assert "PRIVATE KEY" not in repr(idp_keys)
    assert "CERTIFICATE" in repr(idp_keys)


def test_lifetime_below_one_day_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one day"):
        generate_keypair("x", days=0)
