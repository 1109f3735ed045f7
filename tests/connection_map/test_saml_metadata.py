"""IdP metadata import, from metadata a SAML library wrote with generated certificates."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from onelogin.saml2.metadata import OneLogin_Saml2_Metadata

from connection_map import (
    Assessment,
    ConnectionMapDocument,
    ImportRefused,
    MetadataError,
    TriageSettings,
    import_idp_metadata,
    parse_idp_metadata,
    triage_connections,
)
from connection_map.saml_metadata import BINDING
from tests.connection_map.conftest import make_certificate
from tests.connection_map.idp_metadata import EMAIL, PERSISTENT, aggregate, idp_entity, to_bytes

ACME = "https://idp.acme.example"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {name: make_certificate(f"acme {name}", key=key) for name in ("current", "next", "enc")}


@pytest.fixture
def acme_metadata(tmp_path: Path, certs: dict[str, str], sp_private_key: str) -> bytes:
    entity = idp_entity(
        tmp_path,
        ACME,
        signing_certs=[certs["current"], certs["next"]],
        encryption_cert=certs["enc"],
        key_pem=sp_private_key,
        want_authn_requests_signed=True,
    )
    return to_bytes(entity)


def test_several_signing_certificates_sso_urls_and_nameid_formats_are_read(
    acme_metadata: bytes, certs: dict[str, str]
) -> None:
    metadata = parse_idp_metadata(acme_metadata)

    assert metadata.entity_id == ACME
    assert metadata.signing_certificates == (certs["current"], certs["next"])
    assert certs["enc"] not in metadata.signing_certificates, "an encryption key doesn't sign"
    assert metadata.sso_services == (
        (BINDING.format("HTTP-Redirect"), f"{ACME}/sso/redirect"),
        (BINDING.format("HTTP-POST"), f"{ACME}/sso/post"),
    )
    assert metadata.name_id_formats == (EMAIL, PERSISTENT)
    assert metadata.want_authn_requests_signed is True


def test_import_creates_a_connection_that_triage_can_judge(acme_metadata: bytes) -> None:
    document = import_idp_metadata(
        ConnectionMapDocument(), parse_idp_metadata(acme_metadata), "acme", source="md.xml"
    )
    (acme,) = document.connections
    assert document.version == 1
    assert acme.saml is not None and acme.saml.idp_entity_id == ACME
    assert len(acme.saml.signing_certificates) == 2
    assert acme.saml.idp_sso_urls[0].url == f"{ACME}/sso/redirect"
    assert acme.saml.name_id_format is None, "two formats offered: which one is sent is unknown"
    assert acme.saml.idp_name_id_formats == (EMAIL, PERSISTENT)
    assert acme.saml.request_signing.enabled and not acme.saml.request_signing.key_exportable

    reasons = triage_connections(document.connections, TriageSettings())["acme"].reasons
    assert [r.code for r in reasons] == [
        "no_new_provider_target",
        "request_signing_key_not_exportable",
    ]


def test_import_updates_an_existing_connection_and_keeps_the_rest(
    tmp_path: Path, certs: dict[str, str], sp_private_key: str
) -> None:
    entity = idp_entity(
        tmp_path,
        ACME,
        signing_certs=[certs["next"]],
        key_pem=sp_private_key,
        name_id_formats=[EMAIL],
    )
    document = ConnectionMapDocument.model_validate(
        {
            "version": 3,
            "connections": [
                {
                    "id": "acme",
                    "protocol": "saml",
                    "saml": {"idp_entity_id": "https://old.acme.example"},
                    "new_provider": {"url": "https://np.example/acme", "mode": "form_post"},
                    "assessment": "blocked",
                },
                {"id": "globex", "protocol": "saml"},
            ],
        }
    )
    updated = import_idp_metadata(
        document,
        parse_idp_metadata(to_bytes(entity)),
        "acme",
        source="metadata",
        metadata_url="https://idp.acme.example/metadata",
    )
    acme, globex = updated.connections
    assert updated.version == 4
    assert acme.saml is not None and acme.saml.idp_entity_id == ACME
    assert acme.saml.signing_certificates == (certs["next"],)
    assert acme.saml.name_id_format == EMAIL, "the only format offered is the one sent"
    assert acme.saml.idp_metadata_url == "https://idp.acme.example/metadata"
    assert acme.new_provider is not None and acme.new_provider.mode.value == "form_post"
    assert acme.saml.request_signing.enabled is False
    assert globex == document.connections[1]


def test_an_oidc_connection_is_not_overwritten(acme_metadata: bytes) -> None:
    document = ConnectionMapDocument.model_validate(
        {"connections": [{"id": "acme", "protocol": "oidc"}]}
    )
    with pytest.raises(ImportRefused, match="id 'acme': is an oidc connection in the map"):
        import_idp_metadata(document, parse_idp_metadata(acme_metadata), "acme", source="md")


def test_an_aggregate_needs_an_entity_id(
    tmp_path: Path, certs: dict[str, str], sp_private_key: str
) -> None:
    globex = "https://sts.globex.example/adfs"
    data = aggregate(
        idp_entity(tmp_path, ACME, signing_certs=[certs["current"]], key_pem=sp_private_key),
        idp_entity(tmp_path, globex, signing_certs=[certs["next"]], key_pem=sp_private_key),
    )
    with pytest.raises(MetadataError, match="describes 2 IdPs: choose one with --entity-id"):
        parse_idp_metadata(data)
    chosen = parse_idp_metadata(data, entity_id=globex)
    assert chosen.entity_id == globex and chosen.signing_certificates == (certs["next"],)
    with pytest.raises(MetadataError, match="has no IdP with entity id 'https://nope'"):
        parse_idp_metadata(data, entity_id="https://nope")


def test_service_provider_metadata_is_refused(certs: dict[str, str]) -> None:
    sp = {
        "entityId": "https://login.legacy.example/saml/metadata",
        "assertionConsumerService": {
            "url": "https://login.legacy.example/login/callback",
            "binding": BINDING.format("HTTP-POST"),
        },
        "NameIDFormat": EMAIL,
        "x509cert": certs["current"],
    }
    data = OneLogin_Saml2_Metadata.builder(sp).encode("utf-8")
    with pytest.raises(MetadataError, match=r"describes a service provider \(SPSSODescriptor\)"):
        parse_idp_metadata(data)


@pytest.mark.parametrize(
    ("mangle", "problem"),
    [
        (
            lambda d: d.replace(
                b"?>\n",
                b'?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n',
                1,
            ),
            "contains a DOCTYPE",
        ),
        (lambda d: d.decode().encode("utf-16"), "is not UTF-8"),
        (lambda d: d.replace(b"UTF-8", b"ISO-8859-1", 1), "declares an encoding other than UTF-8"),
        (lambda d: d[: len(d) // 2], "is not well-formed XML"),
        (lambda d: b"<html><body>login</body></html>", "is not SAML metadata"),
        (
            lambda d: d.replace(b"X509Certificate>MII", b"X509Certificate>!!!", 1),
            "#1 is not valid base64",
        ),
        (lambda d: d.replace(b'use="signing"', b'use="encryption"'), "has no signing certificate"),
    ],
    ids=["doctype", "utf-16", "latin-1", "truncated", "html", "bad-cert", "no-signing-cert"],
)
def test_unusable_metadata_is_refused_without_quoting_it(
    acme_metadata: bytes, mangle: object, problem: str
) -> None:
    with pytest.raises(MetadataError) as caught:
        parse_idp_metadata(mangle(acme_metadata))  # type: ignore[operator]
    assert problem in str(caught.value)
    assert "passwd" not in str(caught.value) and "MII" not in str(caught.value)


def test_assessment_of_a_clean_metadata_import_is_only_the_missing_target(
    tmp_path: Path, certs: dict[str, str], sp_private_key: str
) -> None:
    entity = idp_entity(tmp_path, ACME, signing_certs=[certs["current"]], key_pem=sp_private_key)
    document = import_idp_metadata(
        ConnectionMapDocument(), parse_idp_metadata(to_bytes(entity)), "acme", source="md"
    )
    triage = triage_connections(document.connections)["acme"]
    assert triage.assessment is Assessment.BLOCKED
    assert [r.code for r in triage.reasons] == ["no_new_provider_target"]


# Readings where two XML parsers can disagree, refused as the SAMLResponse reader refuses them
# (one hardened parser for both, foundation.hardened_xml).
@pytest.mark.parametrize(
    ("mangle", "problem"),
    [
        (
            lambda d: d.replace(b"UTF-8", b"US-ASCII", 1).replace(
                b"?>\n", "?>\n<!-- caf\u00e9 -->\n".encode(), 1
            ),
            "declares an encoding other than UTF-8",
        ),
        (lambda d: d.replace(b'version="1.0"', b'version="1.1"', 1), "XML declaration"),
        (lambda d: b"\n" + d, "XML declaration"),
        (lambda d: d.replace(b"?>", b"?><!doctype md:EntityDescriptor>", 1), "DOCTYPE"),
    ],
    ids=["ascii-label-on-utf8-bytes", "xml-1.1", "space-before-declaration", "lowercase-doctype"],
)
def test_metadata_a_parser_could_read_differently_is_refused(
    acme_metadata: bytes, mangle: object, problem: str
) -> None:
    assert acme_metadata.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    with pytest.raises(MetadataError) as caught:
        parse_idp_metadata(mangle(acme_metadata))  # type: ignore[operator]
    assert problem in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None
