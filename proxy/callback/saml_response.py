"""Read the routing facts (Issuer, InResponseTo, Destination) from a posted SAMLResponse.

Threat model. The proxy routes on attacker-supplied XML but never validates it: the provider
it forwards to does. The proxy's own risks are therefore

* a parser differential: if the proxy reads a different Issuer than the validating provider
  (python3-saml and most others: libxml2 with comments and processing instructions removed),
  an attacker chooses which provider validates a response, past the rollout flags and kill
  switches. So this module reads the Issuer the way python3-saml does and refuses every shape
  where readers can disagree: more than one assertion (XML signature wrapping), Response and
  Assertion issuers that differ, duplicate or stray Issuer elements, an Issuer with child
  elements (readers that take the first text node stop at the child), encodings other than
  UTF-8, XML versions other than 1.0;
* the parser itself: XXE, entity expansion, network or file access. The document is parsed by
  ``foundation.hardened_xml`` (UTF-8 only, any DOCTYPE refused by a byte scan before libxml2
  sees it, no entities, no network, no huge tree), shared with the IdP metadata reader.

Nothing from the payload ever reaches an exception message, and rejections are raised outside
``except`` blocks so no chained exception carries parser text (which quotes the input).

Memory: lxml interns element, attribute and namespace names in a per-thread dictionary that is
never freed, so responses are read on a thread that is replaced every 1 MiB of documents
(foundation/xml_thread.py): a stream of responses full of unique names can't grow the process.
"""

from __future__ import annotations

import binascii
import zlib
from dataclasses import dataclass
from typing import Final, Literal

import pybase64
from lxml import etree

from foundation.hardened_xml import (
    UTF8_BOM,
    XML_START,
    XmlRefusal,
    XmlRefused,
    parse_untrusted_xml,
)
from foundation.xml_thread import RecyclingReader

__all__ = [
    "PASSED_TO_LEGACY",
    "RejectReason",
    "SamlRejected",
    "SamlResponseFacts",
    "inspect_saml_response",
]

RejectReason = Literal[
    "empty",
    "not_base64",
    "deflated",
    "too_large",
    "not_xml",
    "bad_encoding",
    "doctype",
    "not_a_response",
    "issuer_has_children",
    "duplicate_issuer",
    "issuer_mismatch",
    "multiple_assertions",
    "misplaced_assertion",
]

_MESSAGES: Final[dict[RejectReason, str]] = {
    "empty": "SAMLResponse is empty",
    "not_base64": "SAMLResponse is not valid base64",
    "deflated": (
        "SAMLResponse appears DEFLATE-compressed; the HTTP-POST binding requires uncompressed XML"
    ),
    "too_large": "SAMLResponse is larger than the configured limit",
    "not_xml": "SAMLResponse is not well-formed XML",
    "bad_encoding": "SAMLResponse XML must be encoded as UTF-8",
    "doctype": "SAMLResponse contains a DOCTYPE, which SAML forbids",
    "not_a_response": "SAMLResponse root element is not a SAML 2.0 protocol Response",
    "issuer_has_children": "SAMLResponse Issuer contains child elements",
    "duplicate_issuer": "SAMLResponse has more than one Issuer where one is allowed",
    "issuer_mismatch": "SAMLResponse Response and Assertion issuers differ",
    "multiple_assertions": "SAMLResponse contains more than one assertion",
    "misplaced_assertion": "SAMLResponse assertion is not a direct child of the Response",
}
# Not a SAML Response authswitch could read, and nothing dangerous to pass on: these go to legacy
# unchanged (counted with the reason), so that legacy answers them exactly as it would have
# without authswitch. Every other reason is refused with a 400: a document that is dangerous to
# parse (DOCTYPE, encodings that hide one) or a shape that readers can disagree on (wrapping).
PASSED_TO_LEGACY: Final[frozenset[RejectReason]] = frozenset(
    {"empty", "not_base64", "deflated", "too_large", "not_xml", "not_a_response"}
)
_BAD_XML_DECLARATION: Final = "SAMLResponse XML declaration must come first and say version 1.0"


class SamlRejected(ValueError):
    """A SAMLResponse the proxy refuses to route (answered with HTTP 400)."""

    reason: RejectReason

    def __init__(self, reason: RejectReason, message: str | None = None) -> None:
        # Messages are constants chosen here, never built from the payload.
        super().__init__(message or _MESSAGES[reason])
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SamlResponseFacts:
    """What routing needs from a SAML Response; values are verbatim, not normalised."""

    issuer: str | None
    in_response_to: str | None
    destination: str | None


_SAMLP: Final = "urn:oasis:names:tc:SAML:2.0:protocol"
_SAML: Final = "urn:oasis:names:tc:SAML:2.0:assertion"
_RESPONSE: Final = f"{{{_SAMLP}}}Response"
_ISSUER: Final = f"{{{_SAML}}}Issuer"
_ASSERTION: Final = f"{{{_SAML}}}Assertion"
_ENCRYPTED_ASSERTION: Final = f"{{{_SAML}}}EncryptedAssertion"

# WHATWG "ASCII whitespace": what a base64 line-wrapping encoder may insert.
_ASCII_WHITESPACE: Final = b"\t\n\x0c\r "
# IdPs label ASCII-only responses ISO-8859-1 at times; all-ASCII bytes read the same either way.
_ASCII_LABELS: Final = frozenset({b"us-ascii", b"iso-8859-1"})
_INFLATE_PROBE_BYTES: Final = 64
_REJECT_REASONS: Final[dict[XmlRefusal, RejectReason]] = {
    "not_markup": "not_xml",
    "not_xml": "not_xml",
    "bad_encoding": "bad_encoding",
    "bad_declaration": "not_xml",
    "doctype": "doctype",
}


def inspect_saml_response(value: str, *, max_decoded_bytes: int = 262144) -> SamlResponseFacts:
    """Return the routing facts of a base64 SAMLResponse, or raise SamlRejected."""
    data = _decode_base64(value, max_decoded_bytes)
    return _READER(data)


def _facts_of(data: bytes) -> SamlResponseFacts:
    return _read_facts(_parse(data))


# Parsed on a thread that is replaced every 1 MiB of documents: libxml2 never forgets a name
# it has interned, and a client can send any number of unique ones (see foundation/xml_thread).
_READER: Final = RecyclingReader(_facts_of, len, name="saml-reader")


def _decode_base64(value: str, max_decoded_bytes: int) -> bytes:
    max_encoded = 4 * -(-max_decoded_bytes // 3)
    # Bounds the work below; twice the encoded limit leaves room for any line wrapping.
    if len(value) > 2 * max_encoded + 1024:
        raise SamlRejected("too_large")
    if not value.isascii():
        raise SamlRejected("not_base64")
    compact = _without_whitespace(value.encode("ascii"))
    if not compact:
        raise SamlRejected("empty")
    if len(compact) > max_encoded:
        raise SamlRejected("too_large")
    data = _strict_base64(compact)
    if data is None:
        raise SamlRejected("not_base64")
    if len(data) > max_decoded_bytes:
        raise SamlRejected("too_large")
    return data


def _strict_base64(compact: bytes) -> bytes | None:
    """`binascii.a2b_base64(compact, strict_mode=True)`, or None where it raises.

    binascii's strict mode validates the alphabet and the padding and refuses data after the
    padding, but checks byte by byte: ~49 us for a 11 KB value. pybase64's SIMD decoder with
    `validate=True` takes ~2 us and accepts a subset of what strict binascii accepts, decoding it
    to the same bytes (tests/proxy/test_saml_base64.py compares the two); what it refuses
    (padding after a full quantum, for one) is left to binascii, so the answer is binascii's.
    """
    try:
        fast: bytes = pybase64.b64decode(compact, validate=True)
    except ValueError:  # binascii.Error
        pass
    else:
        return fast
    try:
        return binascii.a2b_base64(compact, strict_mode=True)
    except binascii.Error:
        return None


def _without_whitespace(encoded: bytes) -> bytes:
    # Five memchr scans cost a fifth of translate's walk over every byte, and most values
    # have no whitespace to strip (only line-wrapping encoders put it in).
    if (
        b" " in encoded
        or b"\n" in encoded
        or b"\r" in encoded
        or b"\t" in encoded
        or b"\x0c" in encoded
    ):
        return encoded.translate(None, _ASCII_WHITESPACE)
    return encoded


def _inflates_to_xml(data: bytes) -> bool:
    inflater = zlib.decompressobj(wbits=-15)
    try:
        head = inflater.decompress(data, _INFLATE_PROBE_BYTES)
    except zlib.error:
        return False
    head = head[len(UTF8_BOM) :] if head.startswith(UTF8_BOM) else head
    return XML_START.match(head) is not None


def _parse(data: bytes) -> etree._Element:
    try:
        root = parse_untrusted_xml(data, ascii_labels=_ASCII_LABELS)
    except XmlRefused as exc:
        refusal = exc.reason
    else:
        if root.tag != _RESPONSE:
            raise SamlRejected("not_a_response")
        return root
    # Raised here, outside the except block, so no parser text is chained to the rejection.
    if refusal == "not_markup" and _inflates_to_xml(data):
        raise SamlRejected("deflated")
    if refusal == "bad_declaration":
        raise SamlRejected("not_xml", _BAD_XML_DECLARATION)
    raise SamlRejected(_REJECT_REASONS[refusal])


def _read_facts(response: etree._Element) -> SamlResponseFacts:
    assertions: list[etree._Element] = []
    issuers: list[etree._Element] = []
    for element in response.iter(_ASSERTION, _ENCRYPTED_ASSERTION, _ISSUER):
        (issuers if element.tag == _ISSUER else assertions).append(element)
    if len(assertions) > 1:
        raise SamlRejected("multiple_assertions")
    assertion = assertions[0] if assertions else None
    if assertion is not None and assertion.getparent() is not response:
        raise SamlRejected("misplaced_assertion")
    response_issuer = _single_issuer(issuers, response)
    # An EncryptedAssertion's Issuer is inside the ciphertext: the Response's is the only one.
    assertion_issuer = None
    if assertion is not None and assertion.tag == _ASSERTION:
        assertion_issuer = _single_issuer(issuers, assertion)
    if len(issuers) != (response_issuer is not None) + (assertion_issuer is not None):
        # A stray Issuer: a validator taking the first Issuer in document order could read it.
        raise SamlRejected("duplicate_issuer")
    if None not in (response_issuer, assertion_issuer) and response_issuer != assertion_issuer:
        raise SamlRejected("issuer_mismatch")
    return SamlResponseFacts(
        issuer=response_issuer if response_issuer is not None else assertion_issuer,
        in_response_to=_attribute(response, "InResponseTo"),
        destination=_attribute(response, "Destination"),
    )


def _single_issuer(issuers: list[etree._Element], parent: etree._Element) -> str | None:
    """The text of parent's one Issuer child, exactly as python3-saml reads it."""
    mine = [issuer for issuer in issuers if issuer.getparent() is parent]
    if not mine:
        return None
    if len(mine) > 1:
        raise SamlRejected("duplicate_issuer")
    if len(mine[0]):
        raise SamlRejected("issuer_has_children")
    text: str | None = mine[0].text
    return text or ""


def _attribute(element: etree._Element, name: str) -> str | None:
    value: str | None = element.get(name)
    return value
