"""Each way a live response would fail at the new provider gives its own reason."""

from __future__ import annotations

import base64

from lxml import etree

from connection_map import Connection
from proxy.demo.keys import generate_keypair
from proxy.shadow.oidc_check import check_oidc_callback
from proxy.shadow.saml_check import check_saml_response
from proxy.shadow.settings import ShadowConnection
from tests.proxy.shadow.saml_fixtures import connection, expired_keypair, idp, mint

ACCEPTS = ShadowConnection()


def test_a_response_the_import_accepts() -> None:
    signer = idp()
    verdict = check_saml_response(mint(signer), connection([signer.keys.cert_pem]), ACCEPTS)
    assert verdict.accepted, verdict.reasons
    assert verdict.signer is not None and verdict.signer.in_import


def test_a_certificate_not_in_the_import_is_named_by_fingerprint_and_validity() -> None:
    signer = idp()
    old = generate_keypair("old.acme.example")
    verdict = check_saml_response(mint(signer), connection([old.cert_pem]), ACCEPTS)
    assert not verdict.accepted
    assert verdict.reasons == ("unknown_signing_certificate",)
    assert verdict.signer is not None and not verdict.signer.in_import
    text = verdict.details["unknown_signing_certificate"]
    assert verdict.signer.fingerprint in text and "valid " in text


def test_audience_and_destination_mismatches() -> None:
    signer = idp()
    entry = connection([signer.keys.cert_pem])
    wrong_audience = mint(signer, audience="https://elsewhere.example/sp")
    assert check_saml_response(wrong_audience, entry, ACCEPTS).reasons == ("audience_not_accepted",)
    wrong_destination = mint(signer, destination="https://elsewhere.example/acs")
    assert check_saml_response(wrong_destination, entry, ACCEPTS).reasons == (
        "destination_not_accepted",
    )
    configured = ShadowConnection(accepted_audiences=("https://elsewhere.example/sp",))
    assert check_saml_response(wrong_audience, entry, configured).accepted


def test_issuer_must_equal_the_imported_entity_id() -> None:
    signer = idp()
    entry = connection([signer.keys.cert_pem], idp_entity_id="https://idp.acme.example/saml/")
    assert check_saml_response(mint(signer), entry, ACCEPTS).reasons == ("issuer_mismatch",)


def test_a_tampered_or_wrapped_signature() -> None:
    signer = idp()
    entry = connection([signer.keys.cert_pem])
    document = etree.fromstring(base64.b64decode(mint(signer, sign_response=False)))
    saml = "urn:oasis:names:tc:SAML:2.0:assertion"
    # Wrapping: the signed assertion moves under an unsigned copy whose NameID was changed.
    original = document.find(f"{{{saml}}}Assertion")
    assert original is not None
    evil = etree.fromstring(etree.tostring(original))
    name_id = evil.find(f".//{{{saml}}}NameID")
    assert name_id is not None
    name_id.text = "mallory@acme.example"
    signature = evil.find("{http://www.w3.org/2000/09/xmldsig#}Signature")
    assert signature is not None
    evil.remove(signature)
    evil.set("ID", "_evil")
    document.remove(original)
    evil.append(original)  # the signed original hides inside the one that would be used
    document.append(evil)
    wrapped = base64.b64encode(etree.tostring(document)).decode()
    verdict = check_saml_response(wrapped, entry, ACCEPTS)
    assert not verdict.accepted
    assert verdict.reasons == ("signature_wrapping",)
    # Tampering after signing
    tampered = base64.b64encode(
        base64.b64decode(mint(signer)).replace(b"ada@acme.example", b"eve@acme.example")
    ).decode()
    assert check_saml_response(tampered, entry, ACCEPTS).reasons == ("signature_invalid",)


def test_an_encrypted_assertion_cannot_be_accepted_without_the_key() -> None:
    signer = idp()
    entry = connection([signer.keys.cert_pem])
    document = etree.fromstring(base64.b64decode(mint(signer, sign_response=False)))
    saml = "urn:oasis:names:tc:SAML:2.0:assertion"
    assertion = document.find(f"{{{saml}}}Assertion")
    assert assertion is not None
    document.remove(assertion)
    encrypted = etree.SubElement(document, f"{{{saml}}}EncryptedAssertion")
    etree.SubElement(encrypted, "{http://www.w3.org/2001/04/xmlenc#}EncryptedData")
    response = base64.b64encode(etree.tostring(document)).decode()
    verdict = check_saml_response(response, entry, ACCEPTS)
    assert verdict.reasons == ("encrypted_assertion",)


def test_an_expired_signing_certificate() -> None:
    signer = idp(expired_keypair("idp.acme.example"))
    verdict = check_saml_response(mint(signer), connection([signer.keys.cert_pem]), ACCEPTS)
    assert verdict.reasons == ("certificate_expired",)
    assert verdict.signer is not None
    assert verdict.signer.fingerprint in verdict.details["certificate_expired"]


def test_a_missing_attribute_and_a_name_id_format() -> None:
    signer = idp()
    entry = connection(
        [signer.keys.cert_pem],
        attributes={"email": "email", "first_name": "givenName"},
        name_id_format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
    )
    verdict = check_saml_response(mint(signer), entry, ACCEPTS)
    assert verdict.reasons == ("name_id_format", "missing_attribute")
    assert verdict.details["missing_attribute"] == "missing attributes: givenName"
    extra = ShadowConnection(required_attributes=("department",))
    plain = connection([signer.keys.cert_pem])
    assert check_saml_response(mint(signer), plain, extra).reasons == ("missing_attribute",)


def test_oidc_what_shows_before_the_code_is_redeemed() -> None:
    entry = Connection.model_validate(
        {
            "id": "hooli",
            "protocol": "oidc",
            "oidc": {
                "callback_path": "/oidc-callback/hooli",
                "discovery_url": "https://login.hooli.example/.well-known/openid-configuration",
            },
            "legacy": {"callback_url": "https://legacy.example/oidc-callback/hooli"},
        }
    )
    good = check_oidc_callback(entry, "https://login.hooli.example", "/oidc-callback/hooli")
    assert good.accepted
    assert check_oidc_callback(entry, None, "/oidc-callback/hooli").accepted  # iss not sent
    wrong = check_oidc_callback(entry, "https://login.hooli.example/", "/elsewhere")
    assert wrong.reasons == ("issuer_mismatch", "callback_url_mismatch")


def test_hostile_input_ends_as_a_reason_never_a_crash() -> None:
    signer = idp()
    entry = connection([signer.keys.cert_pem])
    doctype = base64.b64encode(b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>').decode()
    for hostile in ("%%%not base64", base64.b64encode(b"<unclosed").decode(), doctype):
        verdict = check_saml_response(hostile, entry, ACCEPTS)
        assert verdict.reasons == ("not_readable",)
