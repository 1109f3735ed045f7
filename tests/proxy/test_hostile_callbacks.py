"""Hostile callbacks over real HTTP: a clear 400/413 or legacy, never the new provider."""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import httpx
import pytest

from proxy.demo.idp import DemoIdP
from tests.conftest import LEGACY_SP_ENTITY_ID, PUBLIC_ACS, ProxyEnv

ACME_ISSUER = "https://idp.acme.example/metadata"
FORM = {"content-type": "application/x-www-form-urlencoded"}


def _signed_xml(idp: DemoIdP) -> str:
    b64 = idp.mint_response(
        destination=PUBLIC_ACS, audience=LEGACY_SP_ENTITY_ID, name_id="mallory@example.com"
    )
    return base64.b64decode(b64).decode()


def _b64(xml: str) -> str:
    return base64.b64encode(xml.encode()).decode()


def _form(**fields: str) -> bytes:
    return urlencode(fields).encode()


def _xxe(xml: str) -> bytes:
    dtd = '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    return _form(SAMLResponse=_b64(dtd + xml.replace(ACME_ISSUER, "&x;", 1)))


def _laughs(xml: str) -> bytes:
    entities = '<!ENTITY a "lol">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9)
    )
    return _form(SAMLResponse=_b64(f"<!DOCTYPE r [{entities}]>" + xml.replace(ACME_ISSUER, "&j;")))


def _second_assertion(xml: str) -> bytes:
    start = xml.index("<saml:Assertion")
    end = xml.index("</saml:Assertion>") + len("</saml:Assertion>")
    evil = xml[start:end].replace(ACME_ISSUER, "https://idp.evil.example/metadata")
    return _form(SAMLResponse=_b64(xml[:end] + evil + xml[end:]))


def _issuer_mismatch(xml: str) -> bytes:
    assertion_at = xml.index("<saml:Assertion")
    head, tail = xml[:assertion_at], xml[assertion_at:]
    return _form(
        SAMLResponse=_b64(
            head + tail.replace(ACME_ISSUER, "https://idp.globex.example/metadata", 1)
        )
    )


def _issuer_child(xml: str) -> bytes:
    return _form(SAMLResponse=_b64(xml.replace(ACME_ISSUER, f"<x>{ACME_ISSUER}</x>", 1)))


def _comment_split(xml: str) -> bytes:
    split = "https://idp.acme.example<!---->.evil/metadata"
    return _form(SAMLResponse=_b64(xml.replace(ACME_ISSUER, split)))


def _lookalike(xml: str) -> bytes:
    return _form(
        SAMLResponse=_b64(xml.replace(ACME_ISSUER, "https://idp.\u0430cme.example/metadata"))
    )


def _deflated(xml: str) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = packer.compress(xml.encode()) + packer.flush()
    return _form(SAMLResponse=base64.b64encode(raw).decode())


def _duplicate(field: str) -> Callable[[str], bytes]:
    def build(xml: str) -> bytes:
        return _form(SAMLResponse=_b64(xml), RelayState="r") + f"&{field}=again".encode()

    return build


@dataclass(frozen=True)
class Case:
    name: str
    body: Callable[[str], bytes]
    status: int | None  # None: passed to legacy (which then refuses it itself)
    reason: str | None = None
    query: str = ""


CASES = [
    Case("xxe", _xxe, 400, "saml_doctype"),
    Case("billion_laughs", _laughs, 400, "saml_doctype"),
    Case("second_assertion_other_issuer", _second_assertion, 400, "saml_multiple_assertions"),
    Case("issuer_mismatch", _issuer_mismatch, 400, "saml_issuer_mismatch"),
    Case("issuer_with_child", _issuer_child, 400, "saml_issuer_has_children"),
    Case("deflated", _deflated, 400, "saml_deflated"),
    Case("not_base64", lambda _: _form(SAMLResponse="%%%not base64%%%"), 400, "saml_not_base64"),
    Case("not_xml", lambda _: _form(SAMLResponse=_b64("hello, I am not XML")), 400, "saml_not_xml"),
    Case("empty", lambda _: _form(SAMLResponse=""), 400, "saml_empty"),
    Case("duplicate_saml_response", _duplicate("SAMLResponse"), 400, "duplicate_field"),
    Case("duplicate_relay_state", _duplicate("RelayState"), 400, "duplicate_field"),
    Case(
        "saml_response_in_query_and_body",
        lambda xml: _form(SAMLResponse=_b64(xml)),
        400,
        "duplicate_field",
        query="SAMLResponse=" + quote(_b64("<x/>")),
    ),
    Case(
        "too_many_fields",
        lambda _: b"&".join(b"f%d=1" % i for i in range(500)),
        400,
        "too_many_fields",
    ),
    Case("bad_percent_encoding", lambda _: b"SAMLResponse=%ff%fe", 400, "bad_encoding"),
    Case("oversize", lambda _: b"SAMLResponse=" + b"A" * (300 * 1024), 413, "body_too_large"),
    Case("comment_split_issuer", _comment_split, None),
    Case("lookalike_issuer", _lookalike, None),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_callback_gets_its_documented_outcome(
    case: Case, proxy_env: ProxyEnv, idps: dict[str, DemoIdP]
) -> None:
    proxy_env.set_flags(stage_percent=100)  # a legitimate acme login would go to the new provider
    before_new = len(proxy_env.received("new"))
    url = proxy_env.url + "/login/callback" + (f"?{case.query}" if case.query else "")

    response = httpx.post(
        url, content=case.body(_signed_xml(idps["acme"])), headers=FORM, timeout=10
    )

    if case.status is None:
        assert response.json()["landed"] == "legacy"
    else:
        assert response.status_code == case.status, response.text
        payload = response.json()
        assert payload["error"] == case.reason
        assert payload["message"] and payload["request_id"]
    assert len(proxy_env.received("new")) == before_new, "nothing hostile reaches the new provider"


def test_oversize_chunked_body_without_content_length_is_cut_at_the_cap(
    proxy_env: ProxyEnv,
) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b"A" * 10_000

    response = httpx.post(
        proxy_env.url + "/login/callback", content=chunks(), headers=FORM, timeout=10
    )
    assert response.status_code == 413


def test_duplicate_oidc_state_is_refused(proxy_env: ProxyEnv) -> None:
    response = httpx.get(proxy_env.url + "/oidc/hooli/callback?code=a&state=b&state=c", timeout=10)
    assert response.status_code == 400
    assert response.json()["error"] == "duplicate_field"


def test_a_connection_header_claim_is_ignored(
    proxy_env: ProxyEnv, idps: dict[str, DemoIdP]
) -> None:
    proxy_env.set_flags(overrides={"acme": "on"})
    stranger = DemoIdP("https://idp.stranger.example/metadata", idps["acme"].keys)
    body = stranger.mint_form_body(
        destination=PUBLIC_ACS, audience=LEGACY_SP_ENTITY_ID, name_id="eve@example.com"
    )
    response = httpx.post(
        proxy_env.url + "/login/callback?connection=acme",
        content=body,
        headers={**FORM, "x-authswitch-connection": "acme", "x-connection-id": "acme"},
        timeout=10,
    )
    assert response.json()["landed"] == "legacy"


def test_a_repeated_connection_query_parameter_is_refused(
    tmp_path_factory: pytest.TempPathFactory,
    providers: dict,  # type: ignore[type-arg]
) -> None:
    from proxy.app import AuthSwitch
    from proxy.config import load_config
    from proxy.demo.loopback_server import LoopbackServer
    from tests.conftest import write_proxy_files

    directory = tmp_path_factory.mktemp("query")
    routes = [{"path": "/cb", "protocol": "oidc", "identify": ["query"]}]
    config = write_proxy_files(
        directory, providers["legacy"].url, providers["new"].url, routes=routes
    )
    with LoopbackServer(AuthSwitch(load_config(config)), name="authswitch") as server:
        once = httpx.get(server.url + "/cb?connection=hooli&code=a&state=b", timeout=10)
        twice = httpx.get(server.url + "/cb?connection=hooli&connection=acme&code=a", timeout=10)
    assert once.json()["landed"] == "legacy"
    assert twice.status_code == 400
    assert twice.json()["error"] == "duplicate_field"
