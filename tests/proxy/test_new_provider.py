"""Handing a callback to the new provider: target URL, the auto-posting form and its CSP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from html.parser import HTMLParser

import pytest

from proxy.callback.forward import form_csp, render_form, send_form_post, target_url
from proxy.http.asgi_types import Message

ACTION = "https://auth.new-provider.example:8443/sso/acme/acs?tenant=eu"


class ParsedPage(HTMLParser):
    """What a browser would see in the page: forms, their inputs, the scripts."""

    def __init__(self, page: bytes) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict[str, str | None]] = []
        self.inputs: list[dict[str, str | None]] = []
        self.scripts: list[str] = []
        self.buttons = 0
        self._in_script = False
        self.feed(page.decode("utf-8"))
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "form":
            self.forms.append(dict(attrs))
        elif tag == "input":
            self.inputs.append(dict(attrs))
        elif tag == "button":
            self.buttons += 1
        elif tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data

    def submitted(self) -> list[tuple[str | None, str | None]]:
        return [(i.get("name"), i.get("value")) for i in self.inputs]


def csp_directives(action: str) -> dict[str, str]:
    return csp_directives_with(action, ())


def csp_directives_with(action: str, redirect_sources: tuple[str, ...]) -> dict[str, str]:
    policy = form_csp(action, redirect_sources).decode("latin-1")
    return dict(part.strip().split(" ", 1) for part in policy.split(";"))


# -- target_url -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "query", "expected"),
    [
        ("https://np.example/sso/acme/acs", b"", "https://np.example/sso/acme/acs"),
        (
            "https://np.example/cb",
            b"code=a%2Bb&state=s",
            "https://np.example/cb?code=a%2Bb&state=s",
        ),
        ("https://np.example/cb?tenant=eu", b"code=x", "https://np.example/cb?tenant=eu&code=x"),
        ("https://np.example/cb?tenant=eu", b"", "https://np.example/cb?tenant=eu"),
        ("https://np.example/", b"lang=de&x=%2F%20", "https://np.example/?lang=de&x=%2F%20"),
    ],
)
def test_target_url_carries_the_query_string_over_unchanged(
    base: str, query: bytes, expected: str
) -> None:
    assert target_url(base, query) == expected


# -- render_form ----------------------------------------------------------------------------


HOSTILE_FIELDS = (
    ("SAMLResponse", "PHNhbWxwOlJlc3BvbnNlIC8+/x+="),
    ("RelayState", '"><script>alert(1)</script>'),
    ("x\"' onfocus='alert(2)", "<img src=x onerror=alert(3)>"),
    ("amp", "a&b&amp;c&#60;&lt;"),
    ("quote'single", 'it\'s "quoted"'),
    ("ünïcødé", "日本語 \u2013 ✓ \u2028 é"),
    ("empty", ""),
    ("repeated", "1"),
    ("repeated", "2"),
)


def test_form_submits_exactly_the_fields_it_was_given_in_order() -> None:
    page = ParsedPage(render_form(ACTION, HOSTILE_FIELDS))
    assert page.submitted() == list(HOSTILE_FIELDS)
    assert all(i.get("type") == "hidden" for i in page.inputs)


def test_no_value_or_name_can_break_out_of_its_attribute() -> None:
    page_bytes = render_form(ACTION, HOSTILE_FIELDS)
    page = ParsedPage(page_bytes)
    assert len(page.scripts) == 1, "only our own script is in the page"
    assert len(page.forms) == 1
    assert b"<script>alert" not in page_bytes
    assert b"<img" not in page_bytes


def test_form_posts_to_the_escaped_action() -> None:
    action = 'https://np.example/acs?a=1&b="2"<'
    page = ParsedPage(render_form(action, (("SAMLResponse", "x"),)))
    assert page.forms == [{"id": "authswitch-form", "method": "post", "action": action}]


def test_page_is_utf8_and_works_without_script() -> None:
    page_bytes = render_form(ACTION, (("RelayState", "é"),))
    assert b'<meta charset="utf-8">' in page_bytes
    assert "é".encode() in page_bytes
    page = ParsedPage(page_bytes)
    assert page.buttons == 1
    assert b"<noscript>" in page_bytes


def test_the_page_asks_for_no_referrer() -> None:
    page = render_form(ACTION, (("SAMLResponse", "x"),))
    assert b'<meta name="referrer" content="no-referrer">' in page


# -- form_csp -------------------------------------------------------------------------------


def test_the_csp_script_hash_is_the_hash_of_the_script_in_the_page() -> None:
    page = ParsedPage(render_form(ACTION, HOSTILE_FIELDS))
    (script,) = page.scripts
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    assert csp_directives(ACTION)["script-src"] == f"'sha256-{digest}'"


def test_the_script_submits_the_form_the_page_renders() -> None:
    page = ParsedPage(render_form(ACTION, ()))
    (script,) = page.scripts
    form_id = page.forms[0]["id"]
    assert f"getElementById('{form_id}').submit()" in script


def test_csp_lets_nothing_else_load_and_the_form_post_only_to_the_action_origin() -> None:
    directives = csp_directives(ACTION)
    assert directives["default-src"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["form-action"] == "https://auth.new-provider.example:8443"


def test_redirect_sources_are_allowed_after_the_action_origin() -> None:
    sources = ("https://app.example.com", "https://*.example.org")
    directives = csp_directives_with(ACTION, sources)
    assert directives["form-action"] == (
        "https://auth.new-provider.example:8443 https://app.example.com https://*.example.org"
    )
    assert directives["default-src"] == "'none'"


@pytest.mark.parametrize(
    ("action", "origin"),
    [
        ("https://np.example/sso/acme/acs", "https://np.example"),
        ("http://127.0.0.1:9100/cb?code=secret&state=s", "http://127.0.0.1:9100"),
    ],
)
def test_form_action_is_the_origin_only(action: str, origin: str) -> None:
    policy = form_csp(action).decode("latin-1")
    assert csp_directives(action)["form-action"] == origin
    assert "secret" not in policy and "/cb" not in policy and "/sso" not in policy


def test_the_form_response_is_never_cached_framed_or_sniffed() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    fields = (("SAMLResponse", "x"),)
    sources = ("https://app.example.com",)
    status = asyncio.run(send_form_post(send, ACTION, fields, "req-1", sources))

    start, body = sent
    assert status == start["status"] == 200
    headers = dict(start["headers"])
    assert headers[b"content-type"] == b"text/html; charset=utf-8"
    assert headers[b"content-security-policy"] == form_csp(ACTION, sources)
    assert headers[b"cache-control"] == b"no-store"
    assert headers[b"x-frame-options"] == b"DENY"
    assert headers[b"referrer-policy"] == b"no-referrer"
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert headers[b"x-request-id"] == b"req-1"
    assert body["body"] == render_form(ACTION, fields)
    assert headers[b"content-length"] == str(len(body["body"])).encode()
