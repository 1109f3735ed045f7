from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl

import pytest
from lxml import etree

from proxy.demo import DemoIdP

from .conftest import IDP_ENTITY_ID, LEGACY_ACS_URL, LEGACY_SP_ENTITY_ID

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}
NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def decode(saml_response: str) -> etree._Element:
    return etree.fromstring(base64.b64decode(saml_response, validate=True))


def one(root: etree._Element, path: str) -> str:
    values = root.xpath(path, namespaces=NS)
    assert len(values) == 1, path
    return str(values[0])


def mint(idp: DemoIdP, **overrides: Any) -> str:
    kwargs: dict[str, Any] = {
        "destination": LEGACY_ACS_URL,
        "audience": LEGACY_SP_ENTITY_ID,
        "name_id": "ada@acme.example",
        **overrides,
    }
    return idp.mint_response(**kwargs)


def test_response_carries_what_an_sp_checks(idp: DemoIdP) -> None:
    root = decode(mint(idp, in_response_to="_req1", now=NOW))
    a = "/samlp:Response/saml:Assertion"

    assert one(root, "/samlp:Response/@Destination") == LEGACY_ACS_URL
    assert one(root, "/samlp:Response/@InResponseTo") == "_req1"
    assert one(root, "/samlp:Response/saml:Issuer/text()") == IDP_ENTITY_ID
    assert one(root, "//samlp:StatusCode/@Value").endswith(":status:Success")
    assert one(root, f"{a}/saml:Issuer/text()") == IDP_ENTITY_ID
    assert one(root, f"{a}/saml:Subject/saml:NameID/text()") == "ada@acme.example"
    assert one(root, f"{a}/saml:Subject/saml:NameID/@Format").endswith("emailAddress")
    scd = f"{a}/saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData"
    assert one(root, f"{scd}/@Recipient") == LEGACY_ACS_URL
    assert one(root, f"{scd}/@InResponseTo") == "_req1"
    assert one(root, f"{scd}/@NotOnOrAfter") == "2030-01-02T03:09:05Z"
    assert one(root, f"{a}/saml:Conditions/@NotBefore") == "2030-01-02T03:03:05Z"
    assert one(root, f"{a}/saml:Conditions/@NotOnOrAfter") == "2030-01-02T03:09:05Z"
    audience = f"{a}/saml:Conditions/saml:AudienceRestriction/saml:Audience/text()"
    assert one(root, audience) == LEGACY_SP_ENTITY_ID
    assert one(root, f"{a}/saml:AuthnStatement/@AuthnInstant") == "2030-01-02T03:04:05Z"
    assert len(root.xpath("//saml:Assertion", namespaces=NS)) == 1


def test_idp_initiated_response_has_no_in_response_to(idp: DemoIdP) -> None:
    root = decode(mint(idp))
    assert root.xpath("//@InResponseTo") == []


def test_assertion_then_response_are_signed_by_default(idp: DemoIdP) -> None:
    root = decode(mint(idp))
    response_ref = one(root, "/samlp:Response/ds:Signature//ds:Reference/@URI")
    assertion_ref = one(root, "/samlp:Response/saml:Assertion/ds:Signature//ds:Reference/@URI")

    assert response_ref == "#" + one(root, "/samlp:Response/@ID")
    assert assertion_ref == "#" + one(root, "/samlp:Response/saml:Assertion/@ID")
    algorithms = root.xpath(
        "//ds:SignatureMethod/@Algorithm | //ds:DigestMethod/@Algorithm", namespaces=NS
    )
    assert [a.rsplit("#", 1)[1] for a in algorithms] == ["rsa-sha256", "sha256"] * 2


@pytest.mark.parametrize(
    ("sign_assertion", "sign_response", "signed"),
    [(True, False, ["Assertion"]), (False, True, ["Response"]), (False, False, [])],
)
def test_signatures_can_be_left_out(
    idp: DemoIdP, sign_assertion: bool, sign_response: bool, signed: list[str]
) -> None:
    root = decode(mint(idp, sign_assertion=sign_assertion, sign_response=sign_response))
    parents = [etree.QName(s.getparent()).localname for s in root.iterfind(".//ds:Signature", NS)]
    assert parents == signed


def test_each_response_is_unique(idp: DemoIdP) -> None:
    first, second = decode(mint(idp, now=NOW)), decode(mint(idp, now=NOW))
    for id_path in ("/samlp:Response/@ID", "/samlp:Response/saml:Assertion/@ID"):
        assert one(first, id_path) != one(second, id_path)
    assert one(first, "/samlp:Response/@ID")[0] == "_"  # an xs:ID may not start with a digit


def test_padding_adds_attribute_values_of_the_requested_size(idp: DemoIdP) -> None:
    plain, padded = mint(idp), mint(idp, padding_bytes=5000)
    values = decode(padded).xpath(
        "//saml:Attribute[@Name='demo_padding']/saml:AttributeValue/text()", namespaces=NS
    )
    assert sum(len(v) for v in values) == 5000
    assert len(base64.b64decode(padded)) - len(base64.b64decode(plain)) >= 5000


def test_attribute_values_are_escaped_not_injected(idp: DemoIdP) -> None:
    hostile = "</saml:AttributeValue><saml:NameID>root@evil</saml:NameID>&amp;"
    root = decode(mint(idp, attributes={"displayName": hostile}))
    path = "//saml:Attribute[@Name='displayName']/saml:AttributeValue/text()"
    assert one(root, path) == hostile
    assert len(root.xpath("//saml:NameID", namespaces=NS)) == 1


def test_naive_now_is_refused(idp: DemoIdP) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        mint(idp, now=datetime(2030, 1, 1))


def test_now_in_another_zone_is_written_as_utc(idp: DemoIdP) -> None:
    same_moment = NOW.astimezone(timezone(timedelta(hours=2)))
    root = decode(mint(idp, now=same_moment))
    assert one(root, "/samlp:Response/@IssueInstant") == "2030-01-02T03:04:05Z"


def test_form_body_round_trips_response_and_relay_state(idp: DemoIdP) -> None:
    body = idp.mint_form_body(
        destination=LEGACY_ACS_URL,
        audience=LEGACY_SP_ENTITY_ID,
        name_id="ada@acme.example",
        relay_state="acme:/app?x=1&y=2",
    )
    fields = parse_qsl(body.decode("ascii"), strict_parsing=True)

    assert [name for name, _ in fields] == ["SAMLResponse", "RelayState"]
    assert fields[1][1] == "acme:/app?x=1&y=2"
    root = decode(fields[0][1])  # '+' and '/' of base64 survived the urlencoding
    assert one(root, "//saml:NameID/text()") == "ada@acme.example"


def test_form_body_without_relay_state_has_only_the_response(idp: DemoIdP) -> None:
    body = idp.mint_form_body(
        destination=LEGACY_ACS_URL, audience=LEGACY_SP_ENTITY_ID, name_id="ada@acme.example"
    )
    assert [name for name, _ in parse_qsl(body.decode("ascii"))] == ["SAMLResponse"]
