"""A demo SAML identity provider that mints genuinely signed Responses."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from lxml import etree
from onelogin.saml2.constants import OneLogin_Saml2_Constants as Saml
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from proxy.demo.keys import KeyPair

_SAML = Saml.NS_SAML
_SAMLP = Saml.NS_SAMLP
_XSI_TYPE = f"{{{Saml.NS_XSI}}}type"
_LIFETIME = timedelta(minutes=5)
_NOT_BEFORE_SKEW = timedelta(minutes=1)
# Padding is spread over several values, the way a long group list would be.
_PADDING_VALUE_SIZE = 256


class DemoIdP:
    """An IdP that signs SAML Responses with its own key (RSA-SHA256, SHA-256 digests)."""

    def __init__(self, entity_id: str, keys: KeyPair) -> None:
        self.entity_id = entity_id
        self.keys = keys

    def mint_response(
        self,
        *,
        destination: str,
        audience: str,
        name_id: str,
        in_response_to: str | None = None,
        attributes: Mapping[str, str] | None = None,
        sign_assertion: bool = True,
        sign_response: bool = True,
        padding_bytes: int = 0,
        now: datetime | None = None,
    ) -> str:
        """Return a base64 SAMLResponse, as it travels in the form field."""
        if padding_bytes < 0:
            raise ValueError(f"padding_bytes must be >= 0, got {padding_bytes}")
        issued = _as_utc(now)
        values: dict[str, list[str]] = {"email": [name_id]}
        values.update({name: [value] for name, value in (attributes or {}).items()})
        if padding_bytes:
            values["demo_padding"] = _padding_values(padding_bytes)

        assertion = self._assertion(destination, audience, name_id, in_response_to, values, issued)
        if sign_assertion:
            self._sign(assertion)
        response = self._response(destination, in_response_to, issued)
        response.append(assertion)
        if sign_response:
            self._sign(response)
        xml = etree.tostring(response)
        return base64.b64encode(xml).decode("ascii")

    def mint_form_body(
        self,
        *,
        destination: str,
        audience: str,
        name_id: str,
        in_response_to: str | None = None,
        attributes: Mapping[str, str] | None = None,
        sign_assertion: bool = True,
        sign_response: bool = True,
        padding_bytes: int = 0,
        now: datetime | None = None,
        relay_state: str | None = None,
    ) -> bytes:
        """Return the urlencoded POST body (SAMLResponse, plus RelayState when given)."""
        saml_response = self.mint_response(
            destination=destination,
            audience=audience,
            name_id=name_id,
            in_response_to=in_response_to,
            attributes=attributes,
            sign_assertion=sign_assertion,
            sign_response=sign_response,
            padding_bytes=padding_bytes,
            now=now,
        )
        fields = [("SAMLResponse", saml_response)]
        if relay_state is not None:
            fields.append(("RelayState", relay_state))
        return urlencode(fields).encode("ascii")

    def _response(
        self, destination: str, in_response_to: str | None, issued: datetime
    ) -> etree._Element:
        response = etree.Element(
            f"{{{_SAMLP}}}Response",
            nsmap={"samlp": _SAMLP, "saml": _SAML},
            ID=_new_id(),
            Version="2.0",
            IssueInstant=_saml_time(issued),
            Destination=destination,
        )
        if in_response_to is not None:
            response.set("InResponseTo", in_response_to)
        etree.SubElement(response, f"{{{_SAML}}}Issuer").text = self.entity_id
        status = etree.SubElement(response, f"{{{_SAMLP}}}Status")
        etree.SubElement(status, f"{{{_SAMLP}}}StatusCode", Value=Saml.STATUS_SUCCESS)
        return response

    def _assertion(
        self,
        destination: str,
        audience: str,
        name_id: str,
        in_response_to: str | None,
        values: Mapping[str, list[str]],
        issued: datetime,
    ) -> etree._Element:
        expires = _saml_time(issued + _LIFETIME)
        # A root of its own: add_sign signs the parent of the first Issuer in the document.
        assertion = etree.Element(
            f"{{{_SAML}}}Assertion",
            nsmap={"saml": _SAML, "xs": Saml.NS_XS, "xsi": Saml.NS_XSI},
            ID=_new_id(),
            Version="2.0",
            IssueInstant=_saml_time(issued),
        )
        etree.SubElement(assertion, f"{{{_SAML}}}Issuer").text = self.entity_id
        subject = etree.SubElement(assertion, f"{{{_SAML}}}Subject")
        name = etree.SubElement(subject, f"{{{_SAML}}}NameID", Format=Saml.NAMEID_EMAIL_ADDRESS)
        name.text = name_id
        confirmation = etree.SubElement(
            subject, f"{{{_SAML}}}SubjectConfirmation", Method=Saml.CM_BEARER
        )
        data = etree.SubElement(
            confirmation,
            f"{{{_SAML}}}SubjectConfirmationData",
            NotOnOrAfter=expires,
            Recipient=destination,
        )
        if in_response_to is not None:
            data.set("InResponseTo", in_response_to)
        conditions = etree.SubElement(
            assertion,
            f"{{{_SAML}}}Conditions",
            NotBefore=_saml_time(issued - _NOT_BEFORE_SKEW),
            NotOnOrAfter=expires,
        )
        restriction = etree.SubElement(conditions, f"{{{_SAML}}}AudienceRestriction")
        etree.SubElement(restriction, f"{{{_SAML}}}Audience").text = audience
        authn = etree.SubElement(
            assertion,
            f"{{{_SAML}}}AuthnStatement",
            AuthnInstant=_saml_time(issued),
            SessionIndex=_new_id(),
        )
        context = etree.SubElement(authn, f"{{{_SAML}}}AuthnContext")
        class_ref = etree.SubElement(context, f"{{{_SAML}}}AuthnContextClassRef")
        class_ref.text = Saml.AC_PASSWORD_PROTECTED
        statement = etree.SubElement(assertion, f"{{{_SAML}}}AttributeStatement")
        for attr_name, attr_values in values.items():
            attribute = etree.SubElement(
                statement,
                f"{{{_SAML}}}Attribute",
                Name=attr_name,
                NameFormat=Saml.ATTRNAME_FORMAT_BASIC,
            )
            for value in attr_values:
                element = etree.SubElement(attribute, f"{{{_SAML}}}AttributeValue")
                element.set(_XSI_TYPE, "xs:string")
                element.text = value
        return assertion

    def _sign(self, element: etree._Element) -> None:
        """Add an enveloped signature to `element` in place."""
        OneLogin_Saml2_Utils.add_sign(
            element,
            self.keys.key_pem,
            self.keys.cert_pem,
            sign_algorithm=Saml.RSA_SHA256,
            digest_algorithm=Saml.SHA256,
        )


def _as_utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (e.g. datetime.now(UTC))")
    return now.astimezone(UTC)


def _saml_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _new_id() -> str:
    # xs:ID must be an NCName, so it cannot start with a digit.
    return f"_{secrets.token_hex(20)}"


def _padding_values(size: int) -> list[str]:
    filler = secrets.token_hex((size + 1) // 2)[:size]
    return [
        filler[start : start + _PADDING_VALUE_SIZE] for start in range(0, size, _PADDING_VALUE_SIZE)
    ]
