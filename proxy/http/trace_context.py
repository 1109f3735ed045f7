"""W3C Trace Context (https://www.w3.org/TR/trace-context/): reading `traceparent` and
`tracestate` the way the recommendation says a participant must.

authswitch never rewrites these headers for an upstream unless tracing is configured to; it
reads them to put the caller's trace id in its log lines and to parent its own spans.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from proxy.http.asgi_types import RawHeaders

_HEX = frozenset(b"0123456789abcdef")
_ZERO_TRACE = b"0" * 32
_ZERO_SPAN = b"0" * 16
# Section 3.3.1: keys are lower-case; a multi-tenant key is tenant@system.
_KEY = re.compile(
    rb"[a-z][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13}"
)
# Printable ASCII except ',' and '='; no trailing space.
_VALUE = re.compile(rb"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]")
MAX_TRACESTATE_MEMBERS = 32


@dataclass(frozen=True, slots=True)
class TraceParent:
    """A valid incoming `traceparent`: the caller's trace, its span, whether it samples."""

    version: str
    trace_id: str
    parent_id: str
    sampled: bool


def parse_traceparent(value: bytes) -> TraceParent | None:
    """The header's fields, or None when the value is not a valid traceparent (section 3.2)."""
    if len(value) < 55 or not _is_hex(value[:2]) or value[:2] == b"ff":
        return None
    if value[:2] == b"00" and len(value) != 55:
        return None  # version 00 has exactly four fields
    if len(value) > 55 and value[55:56] != b"-":
        return None  # a future version may append fields, after a dash
    if value[2:3] != b"-" or value[35:36] != b"-" or value[52:53] != b"-":
        return None
    trace_id, parent_id, flags = value[3:35], value[36:52], value[53:55]
    if not (_is_hex(trace_id) and _is_hex(parent_id) and _is_hex(flags)):
        return None
    if trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    return TraceParent(
        value[:2].decode(), trace_id.decode(), parent_id.decode(), bool(int(flags, 16) & 1)
    )


def parse_tracestate(values: list[bytes]) -> tuple[tuple[str, str], ...] | None:
    """The list members of every `tracestate` line, in order; None when any is invalid (the
    recommendation says to discard the whole header then, section 3.3.1.1)."""
    members: list[tuple[str, str]] = []
    seen: set[bytes] = set()
    for line in values:
        for member in line.split(b","):
            member = member.strip(b" \t")
            if not member:
                continue  # empty list members are allowed
            key, equals, text = member.partition(b"=")
            if not equals or not _KEY.fullmatch(key) or not _VALUE.fullmatch(text):
                return None
            if key in seen:
                return None
            seen.add(key)
            members.append((key.decode(), text.decode()))
    if len(members) > MAX_TRACESTATE_MEMBERS:
        return None
    return tuple(members)


@dataclass(frozen=True, slots=True)
class IncomingTrace:
    """The caller's trace context, as far as it is valid."""

    parent: TraceParent
    state: tuple[tuple[str, str], ...]


def incoming_trace(headers: RawHeaders) -> IncomingTrace | None:
    """The request's trace context; None without exactly one valid `traceparent` (a repeated
    header is ambiguous, so it is ignored as the recommendation says)."""
    parents: list[bytes] = []
    states: list[bytes] = []
    for name, value in headers:
        if name == b"traceparent":
            parents.append(value)
        elif name == b"tracestate":
            states.append(value)
    if len(parents) != 1:
        return None
    parent = parse_traceparent(parents[0].strip(b" \t"))
    if parent is None:
        return None
    return IncomingTrace(parent, parse_tracestate(states) or ())


def _is_hex(value: bytes) -> bool:
    return bool(value) and _HEX.issuperset(value)
