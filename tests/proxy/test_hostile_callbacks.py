"""Hostile callbacks over real HTTP: a clear 400/413 or legacy, never the new provider."""

from __future__ import annotations

import base64
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest

from proxy.demo.idp import DemoIdP
from tests.conftest import LEGACY_SP_ENTITY_ID, PUBLIC_ACS, ProxyEnv, sha256

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
    # Unreadable but harmless: legacy gets them unchanged and answers them as it always did.
    Case("deflated", _deflated, None, "saml_deflated"),
    Case("not_base64", lambda _: _form(SAMLResponse="%%%not base64%%%"), None, "saml_not_base64"),
    Case(
        "not_xml", lambda _: _form(SAMLResponse=_b64("hello, I am not XML")), None, "saml_not_xml"
    ),
    Case("truncated", lambda xml: _form(SAMLResponse=_b64(xml[: len(xml) // 2])), None),
    Case("empty", lambda _: _form(SAMLResponse=""), None, "saml_empty"),
    Case("not_a_response", lambda _: _form(SAMLResponse=_b64("<a:b xmlns:a='urn:x'/>")), None),
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


def _last_callback(logs: pytest.LogCaptureFixture) -> dict[str, Any]:
    """The last callback log line; the server writes it just after the answer, so wait for it."""
    deadline = time.monotonic() + 5
    while True:
        lines = [
            r
            for r in logs.records
            if r.name == "authswitch.access" and r.getMessage() == "callback"
        ]
        if lines:
            fields: dict[str, Any] = lines[-1].fields  # type: ignore[attr-defined]
            return fields
        assert time.monotonic() < deadline, "every callback is accounted for with a log line"
        time.sleep(0.01)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_callback_gets_its_documented_outcome(
    case: Case,
    proxy_env: ProxyEnv,
    idps: dict[str, DemoIdP],
    captured_logs: pytest.LogCaptureFixture,
) -> None:
    proxy_env.set_flags(stage_percent=100)  # a legitimate acme login would go to the new provider
    before_new = len(proxy_env.received("new"))
    url = proxy_env.url + "/login/callback" + (f"?{case.query}" if case.query else "")

    body = case.body(_signed_xml(idps["acme"]))
    response = httpx.post(url, content=body, headers=FORM, timeout=10)

    if case.status is None:
        assert response.json()["landed"] == "legacy"
        assert proxy_env.received("legacy")[-1]["body_sha256"] == sha256(body), "byte for byte"
    else:
        assert response.status_code == case.status, response.text
        payload = response.json()
        assert payload["error"] == case.reason
        assert payload["message"] and payload["request_id"]
    if case.reason is not None:
        assert _last_callback(captured_logs)["reason"] == case.reason, "counted with its reason"
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


# -- where the artifact is read from (one rule per binding) ----------------------------------


@pytest.mark.parametrize(
    ("path", "query", "body", "content_type"),
    [
        # SAML HTTP-POST binding: SAMLResponse only in a url-encoded POST body.
        (
            "/sso/acme/acs",
            "SAMLResponse={saml}",
            b"--b\r\n\r\nx\r\n--b--",
            "multipart/form-data; boundary=b",
        ),
        ("/sso/acme/acs", "SAMLResponse={saml}", b'{"a": 1}', "application/json"),
        ("/sso/acme/acs", "", b'{"SAMLResponse": "x"}', "application/json"),
        ("/sso/acme/acs", "SAMLResponse={saml}", b"", None),
        # OIDC form_post: a POST carries code and state in its url-encoded body, never the query.
        (
            "/oidc/hooli/callback",
            "code=c1&state=s1",
            b"other=1",
            "application/x-www-form-urlencoded",
        ),
        ("/oidc/hooli/callback", "", b'{"code": "c1", "state": "s1"}', "application/json"),
    ],
    ids=[
        "saml_query_multipart",
        "saml_query_json",
        "saml_json",
        "saml_query_only",
        "oidc_post_query",
        "oidc_json",
    ],
)
def test_an_artifact_outside_its_binding_goes_to_legacy_unchanged(
    path: str,
    query: str,
    body: bytes,
    content_type: str | None,
    proxy_env: ProxyEnv,
    idps: dict[str, DemoIdP],
    captured_logs: pytest.LogCaptureFixture,
) -> None:
    """A signed response of a moved connection, carried where its binding does not put it,
    is not read: it must not reach the new provider (nor any other connection's endpoint)."""
    proxy_env.set_flags(stage_percent=100)
    query = query.format(saml=quote(_b64(_signed_xml(idps["acme"]))))
    headers = {"content-type": content_type} if content_type else {}
    before_new = len(proxy_env.received("new"))

    response = httpx.post(
        proxy_env.url + path + (f"?{query}" if query else ""),
        content=body,
        headers=headers,
        timeout=10,
    )

    assert response.json()["landed"] == "legacy"
    assert proxy_env.received("legacy")[-1]["body_sha256"] == sha256(body)
    assert proxy_env.received("legacy")[-1]["query_string"] == query
    assert len(proxy_env.received("new")) == before_new
    assert _last_callback(captured_logs)["reason"] == "outside_binding"


def test_the_same_callbacks_in_their_binding_do_move(
    proxy_env: ProxyEnv, idps: dict[str, DemoIdP]
) -> None:
    """The control for the test above: the rule refuses nothing that follows the bindings."""
    proxy_env.set_flags(stage_percent=100)
    saml = httpx.post(
        proxy_env.url + "/sso/acme/acs",
        content=_form(SAMLResponse=_b64(_signed_xml(idps["acme"])), RelayState="r"),
        headers=FORM,
        timeout=10,
        follow_redirects=True,
    )
    oidc_post = httpx.post(
        proxy_env.url + "/oidc/hooli/callback",
        content=_form(code="c1", state="s1"),
        headers=FORM,
        timeout=10,
        follow_redirects=True,
    )
    oidc_get = httpx.get(
        proxy_env.url + "/oidc/hooli/callback?code=c2&state=s2", timeout=10, follow_redirects=True
    )
    for response in (saml, oidc_post, oidc_get):
        assert response.json()["landed"] == "new", response.text


# -- request targets ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        b"/../admin",
        b"/sso/acme/acs/../../../admin",
        b"/%2e%2e/admin",
        b"/login/callback/./",
        b"/sso/acme%2F..%2F..%2Fadmin/acs",
        b"/_authswitch/../admin",
        b"/x/..;/admin",  # Tomcat and Jetty drop ;parameters before normalising
        b"/x/..;jsessionid=1/..;/admin",
        b"/x\\..\\admin",  # Windows servers read a backslash as a slash
        b"/x/..%5cadmin",
    ],
)
def test_dot_segments_are_refused_not_forwarded(target: bytes, proxy_env: ProxyEnv) -> None:
    """Routes match the decoded path while legacy would normalise the raw one under its prefix:
    the two must never disagree, so a dot segment is refused with a clear 400."""
    before = len(proxy_env.received("legacy"))
    status, body = _raw_request(proxy_env.url, b"GET " + target + b" HTTP/1.1")
    assert status == 400, body
    assert b"dot_segments" in body
    assert len(proxy_env.received("legacy")) == before


def test_options_asterisk_gets_a_clear_400_not_a_500(proxy_env: ProxyEnv) -> None:
    status, body = _raw_request(proxy_env.url, b"OPTIONS * HTTP/1.1")
    assert status == 400, body
    assert b"request_target_not_a_path" in body


def _raw_request(base_url: str, request_line: bytes) -> tuple[int, bytes]:
    """Send a request line as written (httpx would normalise the target first)."""
    import socket
    from urllib.parse import urlsplit

    where = urlsplit(base_url)
    with socket.create_connection((where.hostname, where.port), timeout=10) as sock:
        sock.sendall(request_line + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.mark.parametrize(
    "extra_headers",
    [
        [("content-encoding", "gzip")],
        [("content-type", "text/plain")],  # a second Content-Type: which would be believed?
        [("content-type", "application/x-www-form-urlencoded; charset=utf-16")],
    ],
    ids=["compressed", "second_content_type", "utf16_charset"],
)
def test_a_body_its_receiver_would_read_otherwise_goes_to_legacy_unread(
    extra_headers: list[tuple[str, str]],
    proxy_env: ProxyEnv,
    idps: dict[str, DemoIdP],
    captured_logs: pytest.LogCaptureFixture,
) -> None:
    """authswitch routes by what it parsed; if the receiver would decompress, believe another
    Content-Type or decode another charset, it reads something else: not read, legacy gets it."""
    proxy_env.set_flags(stage_percent=100)
    body = _form(SAMLResponse=_b64(_signed_xml(idps["acme"])), RelayState="r")
    headers = [
        ("content-type", "application/x-www-form-urlencoded")
        if extra_headers[0][0] != "content-type" or "charset" not in extra_headers[0][1]
        else extra_headers[0],
        *([] if "charset" in extra_headers[0][1] else extra_headers),
    ]
    before_new = len(proxy_env.received("new"))

    response = httpx.post(
        proxy_env.url + "/sso/acme/acs", content=body, headers=headers, timeout=10
    )

    assert response.json()["landed"] == "legacy"
    assert proxy_env.received("legacy")[-1]["body_sha256"] == sha256(body)
    assert len(proxy_env.received("new")) == before_new
    assert _last_callback(captured_logs)["reason"] == "outside_binding"
