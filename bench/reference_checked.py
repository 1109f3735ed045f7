"""`ref-raw-checked`: the raw-ASGI + aiohttp reference doing a mixed callback's work by hand.

What an engineer who knows the stack would write to route SAML callbacks by Issuer, in the same
server and client as `ref-raw-aiohttp`: read the body (capped), parse the form (refusing a
duplicated SAMLResponse or RelayState), decode the SAMLResponse strictly, parse it with a
hardened lxml parser on the event loop (unreadable: to legacy), refuse a DOCTYPE, a Response
and Assertion that name different issuers, an Issuer with child elements or other than one
Assertion; look the Issuer up; answer 307 to the new provider or forward to legacy; write one
JSON access line; count the answer and observe its latency.

What it leaves out, and authswitch does: OpenFeature evaluation and its rollout state, the
bound on libxml2's per-thread name dictionary (authswitch parses on a reader thread that it
replaces after a budget of names, so a flood of unique names cannot grow the process), the
body-read deadline, request ids, flow affinity (InResponseTo), the IdP-initiated gate, the
outcome of each answer, per-step histograms. The gap between it and authswitch is what those
cost plus authswitch's own overhead; the gap between it and `ref-raw-aiohttp` is what doing
the job costs at all.
"""

from __future__ import annotations

import binascii
import json
import logging
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs

from lxml import etree
from prometheus_client import Counter, Histogram

from bench.reference_proxies import RawAiohttpProxy, Receive, Scope, Send, _read_body
from bench.saml_corpus import CALLBACK_PATH

_MAX_BODY = 256 * 1024
_PROTOCOL = "{urn:oasis:names:tc:SAML:2.0:protocol}"
_ASSERTION = "{urn:oasis:names:tc:SAML:2.0:assertion}"
_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    huge_tree=False,
    load_dtd=False,
    remove_comments=True,
    remove_pis=True,
)

REQUESTS = Counter("ref_requests_total", "answers", ["connection", "decision", "status"])
LATENCY = Histogram("ref_request_seconds", "time to answer", ["decision"])
log = logging.getLogger("ref.access")


class BadCallback(ValueError):
    """A callback too dangerous to pass on or to parse: answered 400 by the router."""


def read_issuer(body: bytes) -> str | None:
    """The SAMLResponse's Issuer, None when the body carries no SAMLResponse."""
    try:
        fields = parse_qs(body.decode("latin-1"), max_num_fields=64)
    except ValueError as exc:
        raise BadCallback("too many fields") from exc
    values = fields.get("SAMLResponse")
    if not values:
        return None
    if len(values) > 1 or len(fields.get("RelayState", ())) > 1:
        raise BadCallback("duplicate field")
    try:
        document = binascii.a2b_base64(values[0], strict_mode=True)
    except (binascii.Error, ValueError):
        return None  # unreadable but harmless: legacy answers it as it always did
    if b"<!DOCTYPE" in document:
        raise BadCallback("DOCTYPE")
    try:
        root = etree.fromstring(document, _PARSER)
    except etree.XMLSyntaxError:
        return None
    if root.tag != f"{_PROTOCOL}Response":
        return None
    assertions = root.findall(f"{_ASSERTION}Assertion")
    if len(assertions) != 1:
        raise BadCallback("other than one Assertion")
    issuers = [root.find(f"{_ASSERTION}Issuer"), assertions[0].find(f"{_ASSERTION}Issuer")]
    texts = set()
    for issuer in issuers:
        if issuer is None or len(issuer):
            raise BadCallback("missing or nested Issuer")
        texts.add((issuer.text or "").strip())
    if len(texts) != 1:
        raise BadCallback("the Response and Assertion issuers disagree")
    return texts.pop()


class CheckedRouter(RawAiohttpProxy):
    """`raw-aiohttp`, routing the callback path by Issuer: 307 when migrated, else legacy."""

    def __init__(self, upstream: str, connections: str | None) -> None:
        super().__init__(upstream)
        if connections is None:
            raise ValueError("raw-checked needs --connections")
        # Issuer -> (connection id, the new provider's URL, or None: not migrated)
        self.connections: dict[str, tuple[str, str | None]] = {
            issuer: (connection, url)
            for issuer, (connection, url) in json.loads(Path(connections).read_text()).items()
        }
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        started = time.perf_counter()
        body = await _read_body(receive)
        connection, decision, target = "none", "legacy", None
        try:
            if len(body) > _MAX_BODY:
                raise BadCallback("body too large")
            if scope["method"] == "POST" and scope["path"] == CALLBACK_PATH:
                issuer = read_issuer(body)
                known = self.connections.get(issuer) if issuer is not None else None
                if known is not None:
                    connection, target = known
                    decision = "new" if target else "legacy"
        except BadCallback:
            decision, status = "refused", 400
            await _answer(send, 400, [(b"content-type", b"text/plain")], b"bad callback\n")
        else:
            if target is not None:
                status = 307
                await _answer(send, 307, [(b"location", target.encode())], b"")
            else:
                status = await self.forward(scope, body, send)
        elapsed = time.perf_counter() - started
        REQUESTS.labels(connection, decision, str(status)).inc()
        LATENCY.labels(decision).observe(elapsed)
        log.info(
            json.dumps(
                {
                    "time": time.time(),
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "connection": connection,
                    "decision": decision,
                    "duration_ms": round(elapsed * 1000, 3),
                },
                separators=(",", ":"),
            )
        )


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
