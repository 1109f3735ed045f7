"""Reverse-proxy header rewriting: hop-by-hop headers stay on their hop, X-Forwarded-* is ours."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.http.asgi_types import RawHeaders
from proxy.http.forwarded_headers import HOP_BY_HOP, request_headers, response_headers


def forward(headers: RawHeaders, **options: Any) -> RawHeaders:
    settings: dict[str, Any] = {
        "client_host": "203.0.113.7",
        "scheme": "https",
        "host": b"login.legacy.example",
        "upstream_host": None,
        "trust_forwarded": False,
        **options,
    }
    return request_headers(headers, **settings)


def values(headers: RawHeaders, name: bytes) -> list[bytes]:
    return [v for n, v in headers if n.lower() == name]


def names(headers: RawHeaders) -> list[bytes]:
    return [n.lower() for n, _ in headers]


# -- responses ------------------------------------------------------------------------------


def test_response_hop_by_hop_headers_are_dropped_and_the_rest_kept_in_order() -> None:
    upstream = [
        (b"content-type", b"text/html"),
        *[(name, b"x") for name in sorted(HOP_BY_HOP)],
        (b"location", b"/next"),
    ]
    assert response_headers(upstream) == [(b"content-type", b"text/html"), (b"location", b"/next")]


def test_response_headers_listed_in_connection_are_dropped() -> None:
    upstream = [
        (b"connection", b"keep-alive, X-Internal-Trace , x-lb-hint"),
        (b"x-internal-trace", b"node-7"),
        (b"x-lb-hint", b"drain"),
        (b"x-request-id", b"abc"),
    ]
    assert response_headers(upstream) == [(b"x-request-id", b"abc")]


def test_response_header_names_are_matched_whatever_their_case() -> None:
    """aiohttp hands over response header names exactly as the upstream wrote them."""
    upstream = [
        (b"Content-Type", b"text/html"),
        (b"Connection", b"keep-alive, X-Internal-Trace"),
        (b"Keep-Alive", b"timeout=5"),
        (b"Transfer-Encoding", b"chunked"),
        (b"X-Internal-Trace", b"node-7"),
        (b"Set-Cookie", b"sid=1"),
    ]
    assert response_headers(upstream) == [
        (b"Content-Type", b"text/html"),
        (b"Set-Cookie", b"sid=1"),
    ]


def test_every_set_cookie_is_kept_in_order() -> None:
    upstream = [
        (b"set-cookie", b"a=1; Path=/; HttpOnly"),
        (b"content-length", b"0"),
        (b"set-cookie", b"b=2; Path=/; Secure"),
        (b"set-cookie", b"a=3; Path=/sub"),
    ]
    assert values(response_headers(upstream), b"set-cookie") == [
        b"a=1; Path=/; HttpOnly",
        b"b=2; Path=/; Secure",
        b"a=3; Path=/sub",
    ]


# -- requests -------------------------------------------------------------------------------


def test_request_hop_by_hop_connection_listed_and_expect_headers_are_dropped() -> None:
    incoming = [
        (b"host", b"login.legacy.example"),
        *[(name, b"x") for name in sorted(HOP_BY_HOP - {b"connection"})],
        (b"connection", b"keep-alive, x-client-secret-hint"),
        (b"x-client-secret-hint", b"1"),
        (b"expect", b"100-continue"),
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"content-length", b"42"),
    ]
    out = forward(incoming)
    assert not set(names(out)) & (HOP_BY_HOP | {b"x-client-secret-hint", b"expect"})
    assert (b"content-type", b"application/x-www-form-urlencoded") in out
    assert (b"content-length", b"42") in out


def test_connection_cannot_strip_framing_target_or_forwarding_headers() -> None:
    """A client naming end-to-end headers in `Connection` must not strip the load balancer's
    X-Forwarded-*, replace Host, or remove the callback's Content-Type."""
    incoming = [
        (b"host", b"login.legacy.example"),
        (
            b"connection",
            b"close, Host, Content-Type, Content-Length, X-Forwarded-For, "
            b"X-Forwarded-Proto, X-Forwarded-Host, Forwarded, x-hop-only",
        ),
        (b"x-forwarded-for", b"198.51.100.1"),
        (b"x-forwarded-proto", b"https"),
        (b"x-forwarded-host", b"login.example.com"),
        (b"x-hop-only", b"1"),
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"content-length", b"42"),
    ]
    out = forward(incoming, trust_forwarded=True)
    assert values(out, b"host") == [b"login.legacy.example"]
    assert values(out, b"content-type") == [b"application/x-www-form-urlencoded"]
    assert values(out, b"content-length") == [b"42"]
    assert values(out, b"x-forwarded-for") == [b"198.51.100.1, 203.0.113.7"]
    assert values(out, b"x-forwarded-proto") == [b"https"]
    assert values(out, b"x-forwarded-host") == [b"login.example.com"]
    assert b"x-hop-only" not in names(out)


def test_ordinary_headers_pass_in_order_with_repeats() -> None:
    incoming = [
        (b"accept", b"text/html"),
        (b"x-custom", b"one"),
        (b"x-custom", b"two"),
        (b"user-agent", b"Mozilla/5.0"),
    ]
    out = forward(incoming)
    assert [h for h in out if h[0] in {b"accept", b"x-custom", b"user-agent"}] == incoming


def test_host_is_kept_when_no_upstream_host_is_given() -> None:
    out = forward([(b"host", b"login.legacy.example")], upstream_host=None)
    assert values(out, b"host") == [b"login.legacy.example"]


def test_host_is_replaced_by_the_upstream_host_once() -> None:
    out = forward([(b"host", b"login.legacy.example")], upstream_host=b"new-provider.example:8443")
    assert values(out, b"host") == [b"new-provider.example:8443"]
    assert values(out, b"x-forwarded-host") == [b"login.legacy.example"]


def test_untrusted_forwarded_headers_are_replaced_with_what_authswitch_saw() -> None:
    spoofed = [
        (b"x-forwarded-for", b"10.0.0.1"),
        (b"x-forwarded-for", b"10.0.0.2"),
        (b"x-forwarded-proto", b"http"),
        (b"x-forwarded-host", b"evil.example"),
        (b"forwarded", b"for=10.0.0.1;host=evil.example;proto=http"),
    ]
    out = forward(spoofed, trust_forwarded=False)
    assert values(out, b"x-forwarded-for") == [b"203.0.113.7"]
    assert values(out, b"x-forwarded-proto") == [b"https"]
    assert values(out, b"x-forwarded-host") == [b"login.legacy.example"]
    assert values(out, b"forwarded") == []


def test_trusted_forwarded_for_chain_is_extended_and_proto_host_kept() -> None:
    from_balancer = [
        (b"x-forwarded-for", b"198.51.100.4, 192.0.2.1"),
        (b"x-forwarded-proto", b"https"),
        (b"x-forwarded-host", b"login.customer.example"),
    ]
    out = forward(from_balancer, trust_forwarded=True, scheme="http", host=b"10.0.0.5:8080")
    assert values(out, b"x-forwarded-for") == [b"198.51.100.4, 192.0.2.1, 203.0.113.7"]
    assert values(out, b"x-forwarded-proto") == [b"https"]
    assert values(out, b"x-forwarded-host") == [b"login.customer.example"]


def test_trusted_forwarded_for_split_over_several_lines_is_one_chain() -> None:
    """A balancer may add its own X-Forwarded-For line after the client's (RFC 9110 5.3)."""
    incoming = [
        (b"x-forwarded-for", b"198.51.100.4"),
        (b"x-forwarded-for", b"192.0.2.1"),
    ]
    out = forward(incoming, trust_forwarded=True)
    assert values(out, b"x-forwarded-for") == [b"198.51.100.4, 192.0.2.1, 203.0.113.7"]


def test_trusted_but_absent_forwarded_headers_are_set_from_the_connection() -> None:
    out = forward([], trust_forwarded=True, scheme="http")
    assert values(out, b"x-forwarded-for") == [b"203.0.113.7"]
    assert values(out, b"x-forwarded-proto") == [b"http"]
    assert values(out, b"x-forwarded-host") == [b"login.legacy.example"]


def test_unknown_client_and_missing_host() -> None:
    out = forward([], client_host=None, host=None)
    assert values(out, b"x-forwarded-for") == [b"unknown"]
    assert values(out, b"x-forwarded-host") == []


@pytest.mark.parametrize("drop_credentials", [True, False])
def test_credentials_are_dropped_only_when_asked(drop_credentials: bool) -> None:
    incoming = [
        (b"cookie", b"legacy_sid=secret"),
        (b"authorization", b"Bearer secret"),
        (b"proxy-authorization", b"Basic c2VjcmV0"),
        (b"accept", b"*/*"),
    ]
    out = forward(incoming, drop_credentials=drop_credentials)
    kept = not drop_credentials
    assert ((b"cookie", b"legacy_sid=secret") in out) is kept
    assert ((b"authorization", b"Bearer secret") in out) is kept
    assert values(out, b"proxy-authorization") == []  # hop-by-hop: never forwarded
    assert (b"accept", b"*/*") in out


def test_extra_names_to_drop_are_dropped() -> None:
    incoming = [(b"content-length", b"10"), (b"accept", b"*/*")]
    out = forward(incoming, drop=frozenset({b"content-length"}))
    assert values(out, b"content-length") == []
    assert (b"accept", b"*/*") in out


CLIENT_CLAIMS = [
    (b"x-real-ip", b"6.6.6.6"),
    (b"true-client-ip", b"9.9.9.9"),
    (b"x-client-ip", b"8.8.8.8"),
    (b"x-forwarded-port", b"8443"),
    (b"x-forwarded-prefix", b"/evil"),
    (b"x-original-url", b"/admin"),
    (b"x-rewrite-url", b"/admin"),
]


def test_without_a_trusted_front_a_client_cannot_claim_its_address_or_url() -> None:
    """X-Real-IP and its kin feed the upstream's rate limits, audit logs and allowlists: with
    no trusted load balancer in front, only authswitch's own X-Forwarded-* speak for the client."""
    out = forward([(b"host", b"login.legacy.example"), *CLIENT_CLAIMS, (b"accept", b"*/*")])
    assert not set(names(out)) & {name for name, _ in CLIENT_CLAIMS}
    assert values(out, b"x-forwarded-for") == [b"203.0.113.7"]
    assert (b"accept", b"*/*") in out


def test_behind_a_trusted_front_its_client_headers_pass() -> None:
    out = forward([(b"host", b"login.legacy.example"), *CLIENT_CLAIMS], trust_forwarded=True)
    for header in CLIENT_CLAIMS:
        assert header in out
