"""Which request a log line is about: the load balancer's request id and the caller's trace.

An incoming request id (`tracing.request_id_header`, default `X-Request-Id`) is used when it is
short and made of safe characters, so authswitch's lines join the load balancer's; otherwise
authswitch makes one. A valid W3C `traceparent` gives the trace id the line carries. Neither is
trusted for anything but correlation, and neither header is changed on its way upstream.
"""

from __future__ import annotations

import random
import re

from proxy.http.asgi_types import RawHeaders
from proxy.http.trace_context import parse_traceparent

MAX_REQUEST_ID_LENGTH = 128
# UUIDs, ULIDs, hex, AWS `Root=1-...;Parent=...`, Heroku/nginx ids; nothing that could break a
# log line, a header or a shell (no quotes, spaces, backslashes, control characters).
_SAFE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:;=+/@-]{1,%d}" % MAX_REQUEST_ID_LENGTH)


def new_request_id() -> str:
    """Correlates log lines and answers; it guards nothing, so no urandom syscall per request."""
    return f"{random.getrandbits(64):016x}"


def valid_request_id(value: bytes) -> str | None:
    """The incoming request id if it is safe to log and echo, else None."""
    if _SAFE_REQUEST_ID.fullmatch(value) is None:
        return None
    return value.decode("ascii")


def correlate(headers: RawHeaders, request_id_header: bytes) -> tuple[str, str | None]:
    """The request id to log and answer with, and the caller's trace id (None without one
    valid `traceparent`); one pass over the headers."""
    incoming: bytes | None = None
    traceparent: bytes | None = None
    traceparents = 0
    for name, value in headers:
        if name == request_id_header:
            if incoming is None:
                incoming = value
        elif name == b"traceparent":
            traceparent = value
            traceparents += 1
    request_id = None if incoming is None else valid_request_id(incoming)
    trace_id = None
    if traceparents == 1:
        assert traceparent is not None
        parent = parse_traceparent(traceparent.strip(b" \t"))
        trace_id = None if parent is None else parent.trace_id
    return request_id or new_request_id(), trace_id
