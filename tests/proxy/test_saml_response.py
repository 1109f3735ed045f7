"""SAMLResponse inspection: genuine signed responses route, hostile ones are refused.

Responses are signed by python3-saml with a key made for this session, and python3-saml (the
validator a provider would run) is asked to read the same documents, so "the proxy reads the
Issuer the way the validator does" is checked, not assumed.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime
import os
import random
import socket
import threading
import traceback
import urllib.parse
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import pytest
from lxml import etree
from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from foundation import hardened_xml
from proxy.callback.saml_response import (
    RejectReason,
    SamlRejected,
    SamlResponseFacts,
    inspect_saml_response,
)
from proxy.demo.keys import generate_keypair

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
NS = {"samlp": SAMLP, "saml": SAML, "ds": DS}

IDP = "https://idp.example.com/metadata"
EVIL = "https://evil.example.net/metadata"
SP = "https://sp.example.com/metadata"
ACS = "https://sp.example.com/sso/acme/acs"
REQUEST_ID = "_request-4f1c9a"

_STATUS = (
    '<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/>'
    "</samlp:Status>"
)
_ENCRYPTED_ASSERTION = (
    "<saml:EncryptedAssertion>"
    '<xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" '
    'Type="http://www.w3.org/2001/04/xmlenc#Element">'
    "<xenc:CipherData><xenc:CipherValue>b3BhcXVlIGNpcGhlcnRleHQ=</xenc:CipherValue>"
    "</xenc:CipherData></xenc:EncryptedData></saml:EncryptedAssertion>"
)


# --- building responses -------------------------------------------------------------------


def _instant(offset_minutes: int = 0) -> str:
    moment = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=offset_minutes)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _issuer(content: str) -> str:
    """An Issuer element; content is raw XML, so tests can put comments or children in it."""
    return f"<saml:Issuer>{content}</saml:Issuer>"


def _assertion(issuer: str = _issuer(IDP), *, assertion_id: str = "_assertion-1") -> str:
    """A complete assertion, valid for python3-saml once signed."""
    groups = "".join(
        f"<saml:AttributeValue>group-{n:02d}-engineering</saml:AttributeValue>" for n in range(40)
    )
    return (
        f'<saml:Assertion xmlns:saml="{SAML}" ID="{assertion_id}" Version="2.0" '
        f'IssueInstant="{_instant()}">{issuer}'
        "<saml:Subject>"
        '<saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">'
        "alice@example.com</saml:NameID>"
        '<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">'
        f'<saml:SubjectConfirmationData NotOnOrAfter="{_instant(5)}" Recipient="{ACS}" '
        f'InResponseTo="{REQUEST_ID}"/></saml:SubjectConfirmation></saml:Subject>'
        f'<saml:Conditions NotBefore="{_instant(-1)}" NotOnOrAfter="{_instant(5)}">'
        f"<saml:AudienceRestriction><saml:Audience>{SP}</saml:Audience>"
        "</saml:AudienceRestriction></saml:Conditions>"
        f'<saml:AuthnStatement AuthnInstant="{_instant()}" SessionIndex="_session-77">'
        "<saml:AuthnContext><saml:AuthnContextClassRef>"
        "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
        "</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>"
        "<saml:AttributeStatement>"
        '<saml:Attribute Name="email"><saml:AttributeValue>alice@example.com'
        "</saml:AttributeValue></saml:Attribute>"
        f'<saml:Attribute Name="groups">{groups}</saml:Attribute>'
        "</saml:AttributeStatement></saml:Assertion>"
    )


def _response(*children: str, root: str = "samlp:Response") -> str:
    return (
        f'<{root} xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" xmlns:ds="{DS}" '
        f'ID="_response-1" Version="2.0" IssueInstant="{_instant()}" '
        f'Destination="{ACS}" InResponseTo="{REQUEST_ID}">{"".join(children)}</{root}>'
    )


def _b64(xml: str | bytes) -> str:
    raw = xml.encode() if isinstance(xml, str) else xml
    return base64.b64encode(raw).decode("ascii")


def _sign(xml: str, key_and_cert: tuple[str, str]) -> str:
    """Sign the parent of the first Issuer (python3-saml's rule), RSA-SHA256."""
    key, cert = key_and_cert
    signed: bytes = OneLogin_Saml2_Utils.add_sign(
        xml,
        key,
        cert,
        sign_algorithm=OneLogin_Saml2_Constants.RSA_SHA256,
        digest_algorithm=OneLogin_Saml2_Constants.SHA256,
    )
    return signed.decode()


@pytest.fixture(scope="module")
def _idp_key_and_cert() -> tuple[str, str]:
    keys = generate_keypair("idp.example.com", days=30)
    return keys.key_pem, keys.cert_pem


@pytest.fixture(scope="module")
def _signed_response(_idp_key_and_cert: tuple[str, str]) -> str:
    """A Response signed by the IdP around an Assertion signed by the IdP (about 8 KB)."""
    signed_assertion = _sign(_assertion(), _idp_key_and_cert)
    return _sign(_response(_issuer(IDP), _STATUS, signed_assertion), _idp_key_and_cert)


@pytest.fixture(scope="module")
def _saml_settings(_idp_key_and_cert: tuple[str, str]) -> OneLogin_Saml2_Settings:
    return OneLogin_Saml2_Settings(
        {
            "strict": True,
            "sp": {
                "entityId": SP,
                "assertionConsumerService": {
                    "url": ACS,
                    "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
                },
            },
            "idp": {
                "entityId": IDP,
                "singleSignOnService": {
                    "url": "https://idp.example.com/sso",
                    "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect",
                },
                "x509cert": _idp_key_and_cert[1],
            },
            "security": {"wantAssertionsSigned": True, "wantMessagesSigned": True},
        },
        sp_validation_only=True,
    )


def _python3_saml_issuers(settings: OneLogin_Saml2_Settings, value: str) -> set[str]:
    issuers: list[str] = OneLogin_Saml2_Response(settings, value).get_issuers()
    return set(issuers)


# --- a genuine response -------------------------------------------------------------------


def test_signed_response_yields_issuer_in_response_to_and_destination(
    _signed_response: str, _saml_settings: OneLogin_Saml2_Settings
) -> None:
    value = _b64(_signed_response)
    request_data = {"https": "on", "http_host": "sp.example.com", "script_name": "/sso/acme/acs"}
    validator = OneLogin_Saml2_Response(_saml_settings, value)
    # The fixture is a response python3-saml accepts, signatures and all.
    assert validator.is_valid(request_data, request_id=REQUEST_ID, raise_exceptions=True)

    facts = inspect_saml_response(value)

    assert facts == SamlResponseFacts(issuer=IDP, in_response_to=REQUEST_ID, destination=ACS)
    assert validator.get_issuers() == [facts.issuer]


def test_base64_wrapped_in_crlf_lines_is_accepted(_signed_response: str) -> None:
    flat = _b64(_signed_response)
    wrapped = "\r\n".join(flat[i : i + 76] for i in range(0, len(flat), 76)) + "\r\n"

    assert inspect_saml_response(wrapped).issuer == IDP


@pytest.mark.parametrize("space", [" ", "\t", "\n", "\r", "\x0c"])
def test_each_ascii_whitespace_in_the_base64_is_stripped(space: str, _signed_response: str) -> None:
    flat = _b64(_signed_response)
    spaced = space + flat[:40] + space * 2 + flat[40:] + space

    assert inspect_saml_response(spaced).issuer == IDP


@pytest.mark.parametrize("other", ["\x0b", "\x00", "-", "_"])
def test_other_bytes_in_the_base64_are_refused(other: str, _signed_response: str) -> None:
    flat = _b64(_signed_response)
    with pytest.raises(SamlRejected) as rejected:
        inspect_saml_response(flat[:40] + other + flat[40:])
    assert rejected.value.reason == "not_base64"


def test_response_of_exactly_the_size_limit_is_accepted(_signed_response: str) -> None:
    size = len(_signed_response.encode())

    assert inspect_saml_response(_b64(_signed_response), max_decoded_bytes=size).issuer == IDP
    with pytest.raises(SamlRejected) as rejected:
        inspect_saml_response(_b64(_signed_response), max_decoded_bytes=size - 1)
    assert rejected.value.reason == "too_large"


# --- documents that route, with the issuer a validator would read -------------------------


@dataclass(frozen=True)
class Routed:
    name: str
    xml: Callable[[], str | bytes]
    issuer: str | None
    python3_saml_can_read: bool = True  # False where python3-saml needs a key or an Issuer


def _both(issuer_content: str) -> str:
    return _response(_issuer(issuer_content), _STATUS, _assertion(_issuer(issuer_content)))


_ROUTED = [
    # lxml drops comments and PIs while parsing, joining the text around them: python3-saml
    # reads the joined text too, so routing and validation agree on "https://idp.example.evil".
    Routed(
        "comment_split_issuer",
        lambda: _both("https://idp.example<!---->.evil"),
        "https://idp.example.evil",
    ),
    Routed(
        "pi_split_issuer",
        lambda: _both("https://idp.example<?x y?>.evil"),
        "https://idp.example.evil",
    ),
    Routed("cdata_issuer", lambda: _both(f"<![CDATA[{IDP}]]>"), IDP),
    Routed(
        "cyrillic_lookalike_issuer",
        lambda: _both("https://idp.ex\u0430mple.com/metadata"),
        "https://idp.ex\u0430mple.com/metadata",
    ),
    Routed(
        "char_reference_lookalike_issuer",
        lambda: _both("https://idp.ex&#x430;mple.com/metadata"),
        "https://idp.ex\u0430mple.com/metadata",
    ),
    Routed("whitespace_around_issuer", lambda: _both(f"\n  {IDP}\t "), f"\n  {IDP}\t "),
    Routed(
        "pi_before_root",
        lambda: '<?xml version="1.0"?><?xml-stylesheet href="x"?>' + _both(IDP),
        IDP,
    ),
    Routed("comment_before_root", lambda: "<!-- hello -->\n" + _both(IDP), IDP),
    Routed(
        "utf8_bom_and_declaration",
        lambda: b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?>' + _both(IDP).encode(),
        IDP,
    ),
    Routed(
        "iso_8859_1_label_on_ascii_document",
        lambda: "<?xml version='1.0' encoding='ISO-8859-1' standalone='no' ?>" + _both(IDP),
        IDP,
    ),
    Routed("assertion_issuer_only", lambda: _response(_STATUS, _assertion()), IDP),
    Routed(
        "encrypted_assertion_uses_response_issuer",
        lambda: _response(_issuer(IDP), _STATUS, _ENCRYPTED_ASSERTION),
        IDP,
        python3_saml_can_read=False,
    ),
    Routed(
        "encrypted_assertion_without_response_issuer",
        lambda: _response(_STATUS, _ENCRYPTED_ASSERTION),
        None,
        python3_saml_can_read=False,
    ),
    Routed("no_assertion_no_issuer", lambda: _response(_STATUS), None, python3_saml_can_read=False),
    Routed("empty_issuers", lambda: _both(""), "", python3_saml_can_read=False),
]


@pytest.mark.parametrize("case", _ROUTED, ids=lambda case: case.name)
def test_routed_document_yields_the_issuer_python3_saml_reads(
    case: Routed, _saml_settings: OneLogin_Saml2_Settings
) -> None:
    value = _b64(case.xml())

    facts = inspect_saml_response(value)

    assert facts.issuer == case.issuer
    assert facts.in_response_to == REQUEST_ID
    assert facts.destination == ACS
    if case.issuer not in (None, IDP):
        assert facts.issuer != IDP  # Such a document cannot route to the legitimate connection.
    if case.python3_saml_can_read:
        assert _python3_saml_issuers(_saml_settings, value) == {case.issuer}


# --- documents that are refused -----------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    name: str
    value: Callable[[str], str]  # the genuine signed response XML -> SAMLResponse form value
    reason: RejectReason
    max_decoded_bytes: int = 262144


def _edit(signed: str, change: Callable[[Any], None]) -> str:
    """Apply an attacker's edit to a copy of the signed response; return it base64-encoded."""
    root = etree.fromstring(signed.encode())
    change(root)
    return _b64(etree.tostring(root))


def _wrap_original_in_extensions(root: Any) -> None:
    """XSW: keep the signed assertion in samlp:Extensions, put a forged one in its place."""
    original = root.find("saml:Assertion", NS)
    extensions = etree.Element(f"{{{SAMLP}}}Extensions")
    extensions.append(copy.deepcopy(original))
    root.find("ds:Signature", NS).addnext(extensions)
    original.find("saml:Issuer", NS).text = EVIL


def _wrap_original_in_signature_object(root: Any) -> None:
    """XSW: hide the signed assertion in ds:Object of the Response signature."""
    original = root.find("saml:Assertion", NS)
    signature_object = etree.SubElement(root.find("ds:Signature", NS), f"{{{DS}}}Object")
    signature_object.append(copy.deepcopy(original))
    original.find("saml:Issuer", NS).text = EVIL


def _duplicate_assertion(root: Any) -> None:
    second = copy.deepcopy(root.find("saml:Assertion", NS))
    second.set("ID", "_assertion-2")
    root.append(second)


def _move_assertion_into_extensions(root: Any) -> None:
    assertion = root.find("saml:Assertion", NS)
    extensions = etree.Element(f"{{{SAMLP}}}Extensions")
    root.find("ds:Signature", NS).addnext(extensions)
    extensions.append(assertion)


def _truncate(signed: str) -> str:
    return _b64(signed[: len(signed) // 2])


def _unpadded(signed: str) -> str:
    data = signed.encode()
    data += b" " * ((1 - len(data) % 3) % 3)  # Length 1 mod 3: base64 ends in "==".
    return _b64(data).rstrip("=")


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-15)
    return compressor.compress(data) + compressor.flush()


def _doctype(subset: str, issuer: str = IDP) -> Callable[[str], str]:
    """A DOCTYPE before a response whose issuers are `issuer` (an entity reference, say)."""
    return lambda _: _b64(f'<?xml version="1.0"?>{subset}{_both(issuer)}')


def _with_advice_assertion(_: str) -> str:
    advice = f"<saml:Advice>{_assertion(assertion_id='_assertion-2')}</saml:Advice>"
    outer = _assertion().replace("<saml:Subject>", advice + "<saml:Subject>", 1)
    return _b64(_response(_issuer(IDP), _STATUS, outer))


_BILLION_LAUGHS = (
    '<!DOCTYPE samlp:Response [<!ENTITY lol0 "lol">'
    + "".join(f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10))
    + "]>"
)
_OVERSIZE_ATTRIBUTE = (
    '<saml:AttributeStatement><saml:Attribute Name="blob"><saml:AttributeValue>'
    + "x" * 300_000
    + "</saml:AttributeValue></saml:Attribute></saml:AttributeStatement>"
)
# "<!DOCTYPE r [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>" with every "<", "!", "[", '"',
# "%" and ">" written as UTF-7 base64 runs: no "<!" byte pair for a scan to find.
_UTF7_DOCTYPE = (
    b'<?xml version="1.0" encoding="UTF-7"?>'
    b"+ADwAIQ-DOCTYPE r +AFsAPAAh-ENTITY +ACU- p SYSTEM +ACI-file:///etc/passwd+ACIAPgAl-p"
    b"+ADsAXQA+-"
)

_REFUSED = [
    # transport
    Refused("empty", lambda _: "", "empty"),
    Refused("whitespace_only", lambda _: " \r\n\t ", "empty"),
    Refused("not_base64", lambda _: "this is not base64!", "not_base64"),
    Refused(
        "urlsafe_alphabet",
        lambda s: base64.urlsafe_b64encode(b"\xfb\xff\xbf" + s.encode()).decode(),
        "not_base64",
    ),
    Refused("missing_padding", _unpadded, "not_base64"),
    Refused("still_url_encoded", lambda s: urllib.parse.quote(_b64(s), safe=""), "not_base64"),
    Refused("non_ascii_character", lambda s: "\u00e9" + _b64(s), "not_base64"),
    Refused("unicode_space_inside", lambda s: _b64(s)[:8] + "\u00a0" + _b64(s)[8:], "not_base64"),
    Refused(
        "oversize",
        lambda _: _b64(_response(_issuer(IDP), _STATUS, _OVERSIZE_ATTRIBUTE)),
        "too_large",
    ),
    Refused(
        "over_a_small_limit",
        lambda _: _b64(b"<samlp:Response/>"),
        "too_large",
        max_decoded_bytes=16,
    ),
    Refused("raw_deflate_of_valid_response", lambda s: _b64(_raw_deflate(s.encode())), "deflated"),
    Refused("zlib_wrapped_response", lambda s: _b64(zlib.compress(s.encode())), "not_xml"),
    Refused("random_bytes", lambda _: _b64(random.Random(2024).randbytes(4096)), "not_xml"),
    Refused("plain_text", lambda _: _b64("hello, world"), "not_xml"),
    # XML syntax and encodings
    Refused("truncated_xml", _truncate, "not_xml"),
    Refused("junk_after_root", lambda s: _b64(s + "<x/>"), "not_xml"),
    Refused("undeclared_entity", lambda _: _b64(_both("https://idp&evil;")), "not_xml"),
    Refused("xml_1_1", lambda s: _b64('<?xml version="1.1"?>' + s), "not_xml"),
    Refused(
        "whitespace_before_declaration", lambda s: _b64('\n<?xml version="1.0"?>' + s), "not_xml"
    ),
    Refused("utf16_with_bom", lambda s: _b64(s.encode("utf-16")), "not_xml"),
    Refused("utf16le_without_bom", lambda s: _b64(s.encode("utf-16-le")), "bad_encoding"),
    Refused(
        "latin1_bytes_undeclared",
        lambda _: _b64(_both("https://id\u00e9.example").encode("latin-1")),
        "bad_encoding",
    ),
    Refused(
        "latin1_declared_non_ascii",
        lambda _: _b64(
            b'<?xml version="1.0" encoding="ISO-8859-1"?>'
            + _both("https://id\u00e9.example").encode()
        ),
        "bad_encoding",
    ),
    Refused(
        "utf7_declared",
        lambda s: _b64('<?xml version="1.0" encoding="UTF-7"?>' + s),
        "bad_encoding",
    ),
    Refused("utf7_smuggled_doctype", lambda s: _b64(_UTF7_DOCTYPE + s.encode()), "bad_encoding"),
    Refused(
        "utf16_declared_ascii_body",
        lambda s: _b64('<?xml version="1.0" encoding="UTF-16"?>' + s),
        "bad_encoding",
    ),
    Refused(
        "nonstandard_utf8_label",
        lambda s: _b64('<?xml version="1.0" encoding="utf8"?>' + s),
        "bad_encoding",
    ),
    # DTDs
    Refused("doctype_without_entities", _doctype("<!DOCTYPE samlp:Response>"), "doctype"),
    Refused("lowercase_doctype", _doctype("<!doctype samlp:Response>"), "doctype"),
    Refused(
        "xxe_file",
        _doctype('<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>', "&x;"),
        "doctype",
    ),
    Refused(
        "xxe_http",
        _doctype('<!DOCTYPE r [<!ENTITY x SYSTEM "http://127.0.0.1:9/x">]>', "&x;"),
        "doctype",
    ),
    Refused(
        "parameter_entity_xxe",
        _doctype('<!DOCTYPE r [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>'),
        "doctype",
    ),
    Refused("external_dtd", _doctype('<!DOCTYPE r SYSTEM "http://127.0.0.1:9/x.dtd">'), "doctype"),
    Refused("billion_laughs", _doctype(_BILLION_LAUGHS, "&lol9;"), "doctype"),
    Refused("doctype_after_comment", lambda s: _b64("<!-- x --><!DOCTYPE r>" + s), "doctype"),
    Refused(
        "internal_entity_in_issuer", _doctype('<!DOCTYPE r [<!ENTITY e "idp">]>', "&e;"), "doctype"
    ),
    # not a Response
    Refused(
        "authn_request_root",
        lambda _: _b64(_response(_issuer(IDP), root="samlp:AuthnRequest")),
        "not_a_response",
    ),
    Refused(
        "logout_response_root",
        lambda _: _b64(_response(_issuer(IDP), _STATUS, root="samlp:LogoutResponse")),
        "not_a_response",
    ),
    Refused(
        "response_in_foreign_namespace",
        lambda _: _b64(f'<Response xmlns="urn:evil" xmlns:saml="{SAML}">{_issuer(IDP)}</Response>'),
        "not_a_response",
    ),
    Refused("bare_assertion", lambda _: _b64(_assertion()), "not_a_response"),
    # ambiguous issuers and assertions
    Refused(
        "xsw_signed_assertion_in_extensions",
        lambda s: _edit(s, _wrap_original_in_extensions),
        "multiple_assertions",
    ),
    Refused(
        "xsw_signed_assertion_in_signature_object",
        lambda s: _edit(s, _wrap_original_in_signature_object),
        "multiple_assertions",
    ),
    Refused(
        "two_assertions_same_issuer",
        lambda s: _edit(s, _duplicate_assertion),
        "multiple_assertions",
    ),
    Refused(
        "assertion_and_encrypted_assertion",
        lambda _: _b64(_response(_issuer(IDP), _STATUS, _ENCRYPTED_ASSERTION, _assertion())),
        "multiple_assertions",
    ),
    Refused(
        "assertion_in_advice",
        _with_advice_assertion,
        "multiple_assertions",
    ),
    Refused(
        "lone_assertion_in_extensions",
        lambda s: _edit(s, _move_assertion_into_extensions),
        "misplaced_assertion",
    ),
    Refused(
        "issuer_mismatch",
        lambda _: _b64(_response(_issuer(IDP), _STATUS, _assertion(_issuer(EVIL)))),
        "issuer_mismatch",
    ),
    Refused(
        "empty_response_issuer_mismatch",
        lambda _: _b64(_response(_issuer(""), _STATUS, _assertion())),
        "issuer_mismatch",
    ),
    Refused(
        "duplicate_response_issuer",
        lambda _: _b64(_response(_issuer(IDP), _issuer(EVIL), _STATUS, _assertion())),
        "duplicate_issuer",
    ),
    Refused(
        "duplicate_assertion_issuer",
        lambda _: _b64(_response(_STATUS, _assertion(_issuer(IDP) + _issuer(EVIL)))),
        "duplicate_issuer",
    ),
    Refused(
        "stray_issuer_in_extensions",
        lambda _: _b64(
            _response(
                f"<samlp:Extensions>{_issuer(EVIL)}</samlp:Extensions>", _STATUS, _assertion()
            )
        ),
        "duplicate_issuer",
    ),
    Refused(
        "stray_issuer_beside_encrypted_assertion",
        lambda _: _b64(
            _response(
                _issuer(IDP),
                _STATUS,
                _ENCRYPTED_ASSERTION.replace(
                    "</saml:EncryptedAssertion>", f"{_issuer(EVIL)}</saml:EncryptedAssertion>"
                ),
            )
        ),
        "duplicate_issuer",
    ),
    Refused(
        "response_issuer_with_child",
        lambda _: _b64(_both('https://idp.example.com<x:y xmlns:x="urn:x"/>.evil')),
        "issuer_has_children",
    ),
    Refused(
        "assertion_issuer_with_child",
        lambda _: _b64(_response(_STATUS, _assertion(_issuer(f"{IDP}<saml:Issuer/>")))),
        "issuer_has_children",
    ),
]


@pytest.mark.parametrize("case", _REFUSED, ids=lambda case: case.name)
def test_hostile_response_is_refused_with_its_reason(case: Refused, _signed_response: str) -> None:
    value = case.value(_signed_response)

    with pytest.raises(SamlRejected) as rejected:
        inspect_saml_response(value, max_decoded_bytes=case.max_decoded_bytes)

    assert rejected.value.reason == case.reason


def test_every_reason_has_a_hostile_example() -> None:
    assert {case.reason for case in _REFUSED} == set(get_args(RejectReason))


def _decoded_text(value: str) -> str:
    try:
        return base64.b64decode(value).decode("latin-1")
    except ValueError:
        return ""


@pytest.mark.parametrize("case", _REFUSED, ids=lambda case: case.name)
def test_rejection_never_quotes_the_payload(case: Refused, _signed_response: str) -> None:
    value = case.value(_signed_response)
    payloads = (value, _decoded_text(value))

    with pytest.raises(SamlRejected) as rejected:
        inspect_saml_response(value, max_decoded_bytes=case.max_decoded_bytes)

    exc = rejected.value
    # No chained parser error: its text quotes the input and would reach a logged traceback.
    assert exc.__cause__ is None
    assert exc.__context__ is None
    rendered = "".join(traceback.format_exception(exc)) + repr(exc)
    for text in (str(exc), rendered):
        windows = {text[i : i + 16] for i in range(len(text) - 15)}
        assert not any(window in payload for window in windows for payload in payloads)


# --- the parser never touches files or the network ----------------------------------------


@contextlib.contextmanager
def _watched_fifo(path: Path) -> Iterator[threading.Event]:
    """A FIFO whose event is set if anything opens it for reading, as libxml2 would a file."""
    os.mkfifo(path)
    opened = threading.Event()
    closing = threading.Event()

    def writer() -> None:
        fd = os.open(path, os.O_WRONLY)  # Blocks until a reader opens the FIFO.
        if not closing.is_set():
            opened.set()
        os.close(fd)  # The reader sees end of file only after the event is set.

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        yield opened
    finally:
        closing.set()
        if thread.is_alive():
            unblock = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            thread.join(timeout=5)
            os.close(unblock)


_FILE_READING_DOCTYPES: dict[str, Callable[[str], bytes]] = {
    "parameter_entity": lambda url: f'<!DOCTYPE r [<!ENTITY % p SYSTEM "{url}"> %p;]>'.encode(),
    "external_dtd": lambda url: f'<!DOCTYPE r SYSTEM "{url}">'.encode(),
}


@pytest.mark.parametrize("doctype", sorted(_FILE_READING_DOCTYPES))
def test_doctype_naming_a_local_file_never_opens_it(
    doctype: str, tmp_path: Path, _signed_response: str
) -> None:
    make = _FILE_READING_DOCTYPES[doctype]
    # Control: libxml2 opens the file despite load_dtd=False and resolve_entities=False, so
    # refusing the DOCTYPE before parsing is what keeps the file closed.
    with _watched_fifo(tmp_path / "control") as opened:
        document = make((tmp_path / "control").as_uri()) + _signed_response.encode()
        with contextlib.suppress(etree.LxmlError):
            etree.fromstring(document, hardened_xml._parser())
        assert opened.is_set()

    with _watched_fifo(tmp_path / "target") as opened:
        document = make((tmp_path / "target").as_uri()) + _signed_response.encode()
        with pytest.raises(SamlRejected) as rejected:
            inspect_saml_response(_b64(document))
        assert rejected.value.reason == "doctype"
        assert not opened.is_set()


def test_doctype_hidden_by_a_foreign_encoding_never_opens_a_file(
    tmp_path: Path, _signed_response: str
) -> None:
    url = (tmp_path / "fifo").as_uri()
    doctype = f'<!DOCTYPE r [<!ENTITY % p SYSTEM "{url}"> %p;]>'
    # UTF-16LE without a BOM: libxml2 detects it from the first bytes and reads the DOCTYPE.
    document = (doctype + _signed_response).encode("utf-16-le")
    with _watched_fifo(tmp_path / "fifo") as opened:
        with pytest.raises(SamlRejected) as rejected:
            inspect_saml_response(_b64(document))
        assert rejected.value.reason == "bad_encoding"
        assert not opened.is_set()


def test_external_entity_over_http_makes_no_connection(_signed_response: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        port = listener.getsockname()[1]
        for subset in (
            f'<!DOCTYPE r [<!ENTITY x SYSTEM "http://127.0.0.1:{port}/x">]>',
            f'<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:{port}/p"> %p;]>',
            f'<!DOCTYPE r SYSTEM "http://127.0.0.1:{port}/r.dtd">',
        ):
            with pytest.raises(SamlRejected) as rejected:
                inspect_saml_response(_b64(subset + _signed_response))
            assert rejected.value.reason == "doctype"
        with pytest.raises(BlockingIOError):
            listener.accept()
