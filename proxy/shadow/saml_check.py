"""Would the new provider, as imported, accept this SAML Response? Checked offline, at once.

python3-saml validates the response with SP strictness (signature with one of the imported
certificates, the signed element is the one read, no wrapping, Issuer, Destination, Recipient,
Audience, time conditions) against settings built from the connection's map entry. The check
runs right after the callback arrives, so NotOnOrAfter has not passed unless the IdP's clock or
lifetime is off, which the new provider would refuse as well.

Nothing of the response leaves this module: the verdict is reason codes, and a reason text names
at most a certificate's SHA-256 fingerprint and validity (python3-saml's messages quote the
response, so they are never kept).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from onelogin.saml2.errors import OneLogin_Saml2_Error, OneLogin_Saml2_ValidationError
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings

from connection_map import Connection
from foundation.hardened_xml import XmlRefused, parse_untrusted_xml
from proxy.shadow.settings import ShadowConnection

_V = OneLogin_Saml2_ValidationError
_REASONS: dict[int, str] = {
    _V.WRONG_ISSUER: "issuer_mismatch",
    _V.ISSUER_MULTIPLE_IN_RESPONSE: "issuer_mismatch",
    _V.ISSUER_NOT_FOUND_IN_ASSERTION: "issuer_mismatch",
    _V.WRONG_DESTINATION: "destination_not_accepted",
    _V.EMPTY_DESTINATION: "destination_not_accepted",
    _V.WRONG_AUDIENCE: "audience_not_accepted",
    _V.WRONG_SUBJECTCONFIRMATION: "recipient_not_accepted",
    _V.INVALID_SIGNATURE: "signature_invalid",
    _V.NO_SIGNATURE_FOUND: "not_signed",
    _V.NO_SIGNED_ASSERTION: "not_signed",
    _V.NO_SIGNED_MESSAGE: "not_signed",
    _V.WRONG_SIGNED_ELEMENT: "signature_wrapping",
    _V.ID_NOT_FOUND_IN_SIGNED_ELEMENT: "signature_wrapping",
    _V.DUPLICATED_ID_IN_SIGNED_ELEMENTS: "signature_wrapping",
    _V.INVALID_SIGNED_ELEMENT: "signature_wrapping",
    _V.DUPLICATED_REFERENCE_IN_SIGNED_ELEMENTS: "signature_wrapping",
    _V.UNEXPECTED_SIGNED_ELEMENTS: "signature_wrapping",
    _V.WRONG_NUMBER_OF_SIGNATURES_IN_RESPONSE: "signature_wrapping",
    _V.WRONG_NUMBER_OF_SIGNATURES_IN_ASSERTION: "signature_wrapping",
    _V.WRONG_NUMBER_OF_SIGNATURES: "signature_wrapping",
    _V.WRONG_NUMBER_OF_ASSERTIONS: "signature_wrapping",
    _V.ASSERTION_EXPIRED: "time_conditions",
    _V.ASSERTION_TOO_EARLY: "time_conditions",
    _V.RESPONSE_EXPIRED: "time_conditions",
    _V.SESSION_EXPIRED: "time_conditions",
    _V.STATUS_CODE_IS_NOT_SUCCESS: "idp_status_not_success",
    _V.DEPRECATED_SIGNATURE_METHOD: "deprecated_algorithm",
    _V.DEPRECATED_DIGEST_METHOD: "deprecated_algorithm",
}
_DS = "http://www.w3.org/2000/09/xmldsig#"
_SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
_SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
_ENCRYPTED = f"{{{_SAML}}}EncryptedAssertion"


@dataclass(frozen=True, slots=True)
class SignerCertificate:
    """The certificate a response carries and that verifies its signature."""

    fingerprint: str  # SHA-256 of the DER, hex with colons
    not_before: datetime
    not_after: datetime
    in_import: bool


@dataclass(frozen=True, slots=True)
class Verdict:
    """One sampled response: accepted, or the reasons the new provider would refuse it."""

    accepted: bool
    reasons: tuple[str, ...] = ()
    details: dict[str, str] = field(default_factory=dict)  # reason -> text (fingerprints only)
    signer: SignerCertificate | None = None


def fingerprint(certificate: x509.Certificate) -> str:
    digest = hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def check_saml_response(
    saml_response: str,
    connection: Connection,
    accepts: ShadowConnection,
    *,
    now: datetime | None = None,
) -> Verdict:
    """Check one base64 SAMLResponse against the connection's import."""
    now = now or datetime.now(UTC)
    saml = connection.saml
    if saml is None or not saml.idp_entity_id:
        return Verdict(
            False, ("import_incomplete",), {"import_incomplete": "no saml.idp_entity_id"}
        )
    imported = [_load_pem(pem) for pem in saml.signing_certificates]
    imported_certs = [c for c in imported if c is not None]
    if not imported_certs:
        return _refused("import_incomplete", "no usable saml.signing_certificates")
    try:
        xml = base64.b64decode(saml_response, validate=False)
        root = parse_untrusted_xml(xml)
    except (binascii.Error, ValueError, XmlRefused):
        return _refused("not_readable", "the response is not base64 XML")
    if root.find(_ENCRYPTED) is not None:
        key = (
            "the import includes the SP key"
            if saml.assertion_encryption.key_exportable
            else ("the SP decryption key is not part of the import")
        )
        return _refused("encrypted_assertion", f"assertion encrypted; {key}; not checkable")
    signer = _embedded_signer(root, imported_certs)
    destinations = accepts.accepted_destinations or _legacy(connection, "callback_url")
    audiences = accepts.accepted_audiences or _legacy(connection, "sp_entity_id")
    if not destinations or not audiences:
        return _refused("import_incomplete", "no accepted Destination or Audience for the import")
    destination = _pick(root.get("Destination"), destinations)
    audience = _pick(_audience(root), audiences)
    reason, response = _validate(saml_response, saml.idp_entity_id, imported, destination, audience)
    if reason == "signature_invalid" and signer is not None and not signer.in_import:
        if _signs_validly(saml_response, saml.idp_entity_id, root, destination, audience):
            text = _describe(signer, "signed by a certificate not in the import")
            return Verdict(
                False,
                ("unknown_signing_certificate",),
                {"unknown_signing_certificate": text},
                signer,
            )
        signer = None  # the embedded certificate does not verify either: no sign of a rollover
    if response is None:
        return Verdict(False, (reason or "not_readable",), {}, signer)
    reasons, details = _content_reasons(response, connection, accepts)
    if signer is not None:
        _validity_reasons(signer, now, reasons, details)
    return Verdict(not reasons, tuple(reasons), details, signer)


def _signs_validly(
    saml_response: str, idp_entity_id: str, root: etree._Element, destination: str, audience: str
) -> bool:
    """Whether the certificate the response carries verifies it (a rollover, not a forgery)."""
    reason, _ = _validate(saml_response, idp_entity_id, [signer_pem(root)], destination, audience)
    return reason is None


def _validity_reasons(
    signer: SignerCertificate, now: datetime, reasons: list[str], details: dict[str, str]
) -> None:
    if signer.not_after < now:
        reasons.append("certificate_expired")
        details["certificate_expired"] = _describe(signer, "signing certificate expired")
    elif signer.not_before > now:
        reasons.append("certificate_not_yet_valid")
        details["certificate_not_yet_valid"] = _describe(
            signer, "signing certificate not yet valid"
        )


def _refused(reason: str, text: str) -> Verdict:
    return Verdict(False, (reason,), {reason: text})


def _describe(signer: SignerCertificate, what: str) -> str:
    return (
        f"{what}, SHA-256 {signer.fingerprint}, valid {signer.not_before:%Y-%m-%d} "
        f"to {signer.not_after:%Y-%m-%d}"
    )


def _legacy(connection: Connection, name: str) -> tuple[str, ...]:
    value = getattr(connection.legacy, name, None) if connection.legacy else None
    return (value,) if value else ()


def _pick(value: str | None, accepted: tuple[str, ...]) -> str:
    # The SP accepts any of these; python3-saml compares with one, so give it the matching one.
    return value if value is not None and value in accepted else accepted[0]


def _audience(root: etree._Element) -> str | None:
    found = root.find(
        f"{{{_SAML}}}Assertion/{{{_SAML}}}Conditions/{{{_SAML}}}AudienceRestriction/{{{_SAML}}}Audience"
    )
    return found.text if found is not None else None


def _load_pem(pem: str) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(pem.encode("ascii"))
    except ValueError:
        return None


def signer_pem(root: etree._Element) -> str:
    node = root.find(f".//{{{_DS}}}X509Certificate")
    text = "".join((node.text or "").split()) if node is not None else ""
    return f"-----BEGIN CERTIFICATE-----\n{text}\n-----END CERTIFICATE-----\n"


def _embedded_signer(
    root: etree._Element, imported: list[x509.Certificate]
) -> SignerCertificate | None:
    node = root.find(f".//{{{_DS}}}X509Certificate")
    if node is None or not node.text:
        return None
    try:
        certificate = x509.load_der_x509_certificate(base64.b64decode("".join(node.text.split())))
    except (binascii.Error, ValueError):
        return None
    known = {fingerprint(c) for c in imported}
    found = fingerprint(certificate)
    return SignerCertificate(
        found, certificate.not_valid_before_utc, certificate.not_valid_after_utc, found in known
    )


def sp_settings(
    idp_entity_id: str, certificates: list[Any], destination: str, audience: str
) -> OneLogin_Saml2_Settings:
    pems = [
        c if isinstance(c, str) else c.public_bytes(Encoding.PEM).decode("ascii")
        for c in certificates
        if c is not None
    ]
    return OneLogin_Saml2_Settings(
        {
            "strict": True,
            "sp": {
                "entityId": audience,
                "assertionConsumerService": {"url": destination},
                "NameIDFormat": "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
            },
            "idp": {
                "entityId": idp_entity_id,
                "singleSignOnService": {"url": "https://idp.invalid/sso"},
                "x509certMulti": {"signing": pems},
            },
            "security": {"rejectDeprecatedAlgorithm": True},
        },
        sp_validation_only=True,
    )


def request_data_for(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    return {
        "https": "on" if parts.scheme == "https" else "off",
        "http_host": parts.netloc,
        "script_name": parts.path,
    }


def _validate(
    saml_response: str,
    idp_entity_id: str,
    certificates: list[Any],
    destination: str,
    audience: str,
) -> tuple[str | None, OneLogin_Saml2_Response | None]:
    settings = sp_settings(idp_entity_id, certificates, destination, audience)
    try:
        response = OneLogin_Saml2_Response(settings, saml_response)
        response.is_valid(request_data_for(destination), raise_exceptions=True)
    except OneLogin_Saml2_ValidationError as exc:
        return _REASONS.get(exc.code, f"refused_{exc.code}"), None
    except OneLogin_Saml2_Error as exc:
        return f"refused_{exc.code}", None
    except Exception:  # a hostile document ends as a reason, never as a worker's crash
        return "not_readable", None
    return None, response


def _content_reasons(
    response: OneLogin_Saml2_Response, connection: Connection, accepts: ShadowConnection
) -> tuple[list[str], dict[str, str]]:
    saml = connection.saml
    assert saml is not None  # checked by the caller
    reasons: list[str] = []
    details: dict[str, str] = {}
    if saml.name_id_format and response.get_nameid_format() != saml.name_id_format:
        reasons.append("name_id_format")
        details["name_id_format"] = f"NameID format is not the imported {saml.name_id_format}"
    present = response.get_attributes()
    needed = [v for v in saml.attributes.model_dump().values() if v] + list(
        accepts.required_attributes
    )
    missing = sorted({name for name in needed if name not in present})
    if missing:
        reasons.append("missing_attribute")
        # Attribute names come from the import (our config), never from the response.
        details["missing_attribute"] = "missing attributes: " + ", ".join(missing)
    return reasons, details
