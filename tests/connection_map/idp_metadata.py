"""Real IdP metadata, written by pysaml2 from generated certificates."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, md
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor

EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"


def idp_entity(
    directory: Path,
    entity_id: str,
    *,
    signing_certs: Sequence[str],
    encryption_cert: str | None = None,
    key_pem: str,
    name_id_formats: Sequence[str] = (EMAIL, PERSISTENT),
    want_authn_requests_signed: bool = False,
) -> md.EntityDescriptor:
    """An IdP EntityDescriptor as pysaml2 publishes it (POST first, then Redirect)."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = entity_id.split("//", 1)[-1].replace("/", "_")
    key = directory / f"{stem}.key"
    key.write_text(key_pem)
    certs = []
    for number, pem in enumerate(signing_certs):
        path = directory / f"{stem}-signing-{number}.pem"
        path.write_text(pem)
        certs.append(str(path))
    settings: dict[str, object] = {
        "entityid": entity_id,
        "key_file": str(key),
        "cert_file": certs[0],
        "additional_cert_files": certs[1:],
        "service": {
            "idp": {
                "endpoints": {
                    "single_sign_on_service": [
                        (f"{entity_id}/sso/post", BINDING_HTTP_POST),
                        (f"{entity_id}/sso/redirect", BINDING_HTTP_REDIRECT),
                    ]
                },
                "name_id_format": list(name_id_formats),
                "want_authn_requests_signed": want_authn_requests_signed,
            }
        },
    }
    if encryption_cert is not None:
        path = directory / f"{stem}-encryption.pem"
        path.write_text(encryption_cert)
        settings["encryption_keypairs"] = [{"key_file": str(key), "cert_file": str(path)}]
    config = IdPConfig()
    config.load(settings)
    return entity_descriptor(config)


def to_bytes(element: md.EntityDescriptor | md.EntitiesDescriptor) -> bytes:
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + str(element).encode("utf-8")


def aggregate(*entities: md.EntityDescriptor) -> bytes:
    return to_bytes(md.EntitiesDescriptor(entity_descriptor=list(entities)))
