"""Real signed SAML for shadow tests: demo IdPs with generated keys and map entries for them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from connection_map import Connection
from proxy.demo.idp import DemoIdP
from proxy.demo.keys import KeyPair, generate_keypair

ENTITY_ID = "https://idp.acme.example/saml"
ACS_URL = "https://legacy.example/sso/saml/acs"
SP_ENTITY_ID = "https://legacy.example/sp"


def expired_keypair(common_name: str) -> KeyPair:
    """A key whose self-signed certificate expired yesterday."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=400))
        .not_valid_after(now - timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    return KeyPair(key_pem=key_pem, cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode())


def idp(keys: KeyPair | None = None) -> DemoIdP:
    return DemoIdP(ENTITY_ID, keys or generate_keypair("idp.acme.example"))


def connection(certificates: list[str], connection_id: str = "acme", **saml: object) -> Connection:
    return Connection.model_validate(
        {
            "id": connection_id,
            "protocol": "saml",
            "saml": {
                "idp_entity_id": ENTITY_ID,
                "signing_certificates": certificates,
                "attributes": {"email": "email"},
                **saml,
            },
            "legacy": {"callback_url": ACS_URL, "sp_entity_id": SP_ENTITY_ID},
            "new_provider": {"url": "https://new.example/sso/acme"},
        }
    )


def mint(signer: DemoIdP, **overrides: object) -> str:
    options: dict[str, object] = {
        "destination": ACS_URL,
        "audience": SP_ENTITY_ID,
        "name_id": "ada@acme.example",
    }
    options.update(overrides)
    return signer.mint_response(**options)  # type: ignore[arg-type]
