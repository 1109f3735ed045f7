"""Header rewriting for a reverse proxy: hop-by-hop removal and X-Forwarded-*."""

from __future__ import annotations

from proxy.http.asgi_types import RawHeaders

# RFC 9110 section 7.6.1 plus the non-standard ones proxies commonly meet.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)
_FORWARDED = frozenset(
    {b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"forwarded"}
)
_CREDENTIALS = frozenset({b"cookie", b"authorization"})
# What a proxy or CDN in front sets to tell the upstream who the client is and which URL it
# asked for. Without a trusted load balancer authswitch is that front, and a client could forge
# them: the upstream's rate limits, audit logs and allowlists would believe it.
_CLIENT_CLAIMS = frozenset(
    {
        b"x-real-ip",
        b"true-client-ip",
        b"x-client-ip",
        b"x-cluster-client-ip",
        b"cf-connecting-ip",
        b"fastly-client-ip",
        b"x-forwarded-port",
        b"x-forwarded-prefix",
        b"x-forwarded-scheme",
        b"x-forwarded-ssl",
        b"x-forwarded-server",
        b"x-original-url",
        b"x-rewrite-url",
        b"x-original-host",
        b"x-host",
    }
)
# A client's `Connection:` may name only its own hop's headers. These are end to end: the
# message's framing and target, and the forwarding headers authswitch sets or a trusted load
# balancer set before it. Naming one in `Connection` must not strip it (RFC 9110 7.6.1 lets a
# proxy refuse to drop fields that other parts of the message depend on).
_NEVER_HOP_BY_HOP = _FORWARDED | frozenset(
    {b"host", b"content-type", b"content-length", b"content-encoding", b"x-real-ip"}
)


def _connection_tokens(headers: RawHeaders) -> frozenset[bytes]:
    tokens: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b","))
    return frozenset(tokens - _NEVER_HOP_BY_HOP)


def response_headers(headers: RawHeaders) -> RawHeaders:
    """An upstream response's headers minus hop-by-hop ones (Set-Cookie kept, order kept)."""
    dropped = HOP_BY_HOP | _connection_tokens(headers)
    # Upstream names arrive in whatever case the upstream wrote them (aiohttp keeps it).
    return [(n, v) for n, v in headers if n.lower() not in dropped]


def request_headers(
    headers: RawHeaders,
    *,
    client_host: str | None,
    scheme: str,
    host: bytes | None,
    upstream_host: bytes | None,
    trust_forwarded: bool,
    drop_credentials: bool = False,
    drop: frozenset[bytes] = frozenset(),
) -> RawHeaders:
    """Headers for the upstream request.

    `upstream_host` replaces Host (None keeps the client's). X-Forwarded-For/Proto/Host are
    set from what authswitch saw; with `trust_forwarded` an incoming X-Forwarded-For chain is
    extended and an incoming Proto/Host kept, as behind a trusted load balancer. Without it,
    the other headers a front proxy sets about the client (X-Real-IP, True-Client-IP,
    X-Original-URL, ...) are dropped: only a trusted front may claim them.
    """
    listed = _connection_tokens(headers)
    out: RawHeaders = []
    incoming: dict[bytes, bytes] = {}
    for name, value in headers:
        if name in HOP_BY_HOP or name in listed or name in drop or name == b"expect":
            continue
        if name in _FORWARDED:
            if name == b"x-forwarded-for" and name in incoming:  # one chain over several lines
                incoming[name] += b", " + value
            else:
                incoming.setdefault(name, value)
            continue
        if name == b"host":
            if upstream_host is None:
                out.append((name, value))
            continue
        if not trust_forwarded and name in _CLIENT_CLAIMS:
            continue
        if drop_credentials and name in _CREDENTIALS:
            continue
        out.append((name, value))
    if upstream_host is not None:
        out.append((b"host", upstream_host))
    client = (client_host or "unknown").encode()
    chain = incoming.get(b"x-forwarded-for") if trust_forwarded else None
    out.append((b"x-forwarded-for", chain + b", " + client if chain else client))
    proto = incoming.get(b"x-forwarded-proto") if trust_forwarded else None
    out.append((b"x-forwarded-proto", proto or scheme.encode()))
    forwarded_host = incoming.get(b"x-forwarded-host") if trust_forwarded else None
    if forwarded_host or host:
        out.append((b"x-forwarded-host", forwarded_host or host or b""))
    return out
