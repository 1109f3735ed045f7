"""Callback intake: read the body with a hard cap and parse the fields routing needs.

Starlette's form parser has no size or field limits and re-encodes what it reads, so the
callback body is read raw, capped, and parsed here; the raw bytes are what gets forwarded.
"""

from __future__ import annotations

import codecs
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote_to_bytes

from proxy.callback.saml_response import PASSED_TO_LEGACY, SamlRejected, inspect_saml_response
from proxy.config import Limits
from proxy.http.asgi_types import RawHeaders, Receive
from proxy.http.headers import content_length, header_value
from proxy.http.request_body import RequestRejected, read_body

if TYPE_CHECKING:
    from proxy.callback.context import Callback

# Fields that carry a single-use artifact or flow identifier: a second copy makes the
# callback ambiguous (which one would the receiver read?), so it is refused.
SINGLE_VALUED = frozenset({"SAMLResponse", "RelayState", "code", "state"})
FORM_CONTENT_TYPE = b"application/x-www-form-urlencoded"


class NotRead(Exception):
    """A callback authswitch does not read but may pass on: legacy gets it unchanged."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def take_in(
    callback: Callback, receive: Receive, limits: Limits, body_seconds: float
) -> None:
    """Read the callback's body, parse its fields and read its SAML facts into `callback`.

    Raises RequestRejected or SamlRejected for what authswitch refuses to route, NotRead for
    what it passes to legacy unread, and ClientDisconnected when the client went away first.
    """
    scope = callback.scope
    headers = scope["headers"]
    body = callback.body = await read_body(
        receive, content_length(headers), limits.max_body_bytes, body_seconds
    )
    callback.received = time.perf_counter()
    content_type = header_value(headers, b"content-type")
    fields = callback.fields = parse_fields(
        scope["query_string"], body, content_type, limits.max_fields, callback.match.single_valued
    )
    protocol = callback.match.route.protocol
    if outside_binding(protocol, scope["method"], fields, content_type, body) or (
        body and _read_otherwise(headers)
    ):
        raise NotRead("outside_binding")
    if protocol != "saml":
        return
    value = fields.get("SAMLResponse")
    if value is None:
        return
    try:
        facts = inspect_saml_response(value, max_decoded_bytes=limits.max_body_bytes)
    except SamlRejected as exc:
        if exc.reason not in PASSED_TO_LEGACY:
            raise
        reason = exc.reason
    else:
        callback.issuer = facts.issuer
        callback.in_response_to = facts.in_response_to
        callback.unsolicited = facts.in_response_to is None
        return
    raise NotRead(f"saml_{reason}")  # outside the except block: no chained parser text


@dataclass(frozen=True, slots=True)
class CallbackFields:
    """The routing-relevant fields of a callback, from its query string and form body."""

    query: dict[str, str]
    form: dict[str, str]
    form_pairs: tuple[tuple[str, str], ...]

    def get(self, name: str) -> str | None:
        value = self.form.get(name)
        return value if value is not None else self.query.get(name)


def parse_fields(
    query_string: bytes,
    body: bytes,
    content_type: bytes | None,
    max_fields: int,
    single_valued: frozenset[str] = SINGLE_VALUED,
) -> CallbackFields:
    """Parse query and url-encoded body with bounded field counts; refuse duplicates (400).

    `single_valued` names the fields that may appear once only: the artifacts, plus whatever
    the route identifies connections by (a second `?connection=` would be a second answer).
    """
    query_pairs = _parse_pairs(query_string, max_fields, "query string")
    form_pairs: list[tuple[str, str]] = []
    if body and content_type is not None and _is_form(content_type):
        form_pairs = _parse_pairs(body, max_fields, "form body")
    query = _single_valued(query_pairs, "query string", single_valued)
    form = _single_valued(form_pairs, "form body", single_valued)
    for name in single_valued.intersection(query).intersection(form):
        raise RequestRejected(
            400, "duplicate_field", f"'{name}' appears in both the query string and the body"
        )
    return CallbackFields(query, form, tuple(form_pairs))


# Where each binding carries its artifact. SAML HTTP-POST binding: SAMLResponse and RelayState
# in a url-encoded POST body. OIDC: `code` and `state` in the query of a GET (response_mode
# query) or in the url-encoded body of a POST (form_post). A callback that carries them
# anywhere else is not one authswitch reads: it goes to legacy unchanged.
_SAML_ARTIFACTS = ("SAMLResponse", "RelayState")
_OIDC_ARTIFACTS = ("code", "state")


def outside_binding(
    protocol: str, method: str, fields: CallbackFields, content_type: bytes | None, body: bytes
) -> bool:
    """Whether the callback carries its artifact where its binding does not put it."""
    if body and (content_type is None or not _is_form(content_type)):
        return True  # multipart, JSON, ...: a body authswitch does not read
    if protocol == "saml":
        return any(name in fields.query for name in _SAML_ARTIFACTS)
    if method == "POST":
        return any(name in fields.query for name in _OIDC_ARTIFACTS)
    return False


def _read_otherwise(headers: RawHeaders) -> bool:
    """Whether the receiver would read the body as something else than the bytes authswitch
    parsed: compressed, a second Content-Type, or a charset other than UTF-8."""
    content_types = 0
    for name, value in headers:
        if name == b"content-type":
            content_types += 1
            charset = value.lower().partition(b"charset=")[2].strip(b" \t\"';")
            if charset and charset not in (b"utf-8", b"utf8", b"us-ascii"):
                return True
        elif name == b"content-encoding" and value.strip().lower() != b"identity":
            return True
    return content_types > 1


def _is_form(content_type: bytes) -> bool:
    return content_type.split(b";", 1)[0].strip().lower() == FORM_CONTENT_TYPE


def _parse_pairs(raw: bytes, max_fields: int, where: str) -> list[tuple[str, str]]:
    """What `urllib.parse.parse_qsl(keep_blank_values=True)` gives, without its cost.

    parse_qsl works on str (regex splits, re-encoding to bytes, a Python loop per escape);
    working on the raw bytes, finding separators with memchr and unescaping in C, costs a
    quarter of it on an 8 KB SAMLResponse, whose form parse is a sizeable part of a callback.
    """
    if not raw:
        return []
    chunks = _split_fields(raw, max_fields, where)
    if not raw.isascii():
        raise _bad_encoding(where)
    pairs = []
    try:
        for chunk in chunks:
            if chunk:
                name, _, value = chunk.partition(b"=")
                pairs.append((_unquote_plus(name), _unquote_plus(value)))
    except UnicodeDecodeError:
        raise _bad_encoding(where) from None
    return pairs


# Below this size one `split` (a byte-by-byte walk in C) is cheaper than a `find` per field;
# above it, a body of a few long fields (a SAMLResponse) is cut faster by memchr.
_SPLIT_BELOW = 1024


def _split_fields(raw: bytes, max_fields: int, where: str) -> list[bytes]:
    """`raw.split(b"&")`, refused past `max_fields` pieces before any more are cut."""
    if len(raw) < _SPLIT_BELOW:
        chunks = raw.split(b"&", max_fields)
        if len(chunks) <= max_fields:
            return chunks
    else:
        chunks = []
        start = 0
        while len(chunks) < max_fields:
            end = raw.find(b"&", start)
            if end == -1:
                chunks.append(raw[start:])
                return chunks
            chunks.append(raw[start:end])
            start = end + 1
    raise RequestRejected(400, "too_many_fields", f"{where} has more than {max_fields} fields")


def _unquote_plus(value: bytes) -> str:
    if b"+" in value:
        value = value.replace(b"+", b" ")
    if b"%" in value:
        value = _unquote(value)
    return value.decode("utf-8")


def _unquote(value: bytes) -> bytes:
    """`urllib.parse.unquote_to_bytes(value)`, in C when every `%` starts a `%XX` escape.

    unquote_to_bytes loops in Python over every escape, and a base64 SAMLResponse has one for
    each `+`, `/` and `=`. Written as `\\xXX`, the escapes are what `codecs.escape_decode`
    decodes in C: it reads the same hex digits (either case) and raises on a `\\x` not
    followed by two of them, where unquote_to_bytes would keep the `%` as it is. A value with a
    backslash of its own, or such a `%`, takes unquote_to_bytes.
    """
    if b"\\" not in value:
        try:
            decoded: bytes = codecs.escape_decode(value.replace(b"%", b"\\x"))[0]
        except ValueError:
            pass
        else:
            return decoded
    return unquote_to_bytes(value)


def _bad_encoding(where: str) -> RequestRejected:
    return RequestRejected(400, "bad_encoding", f"{where} is not valid url-encoded UTF-8")


def _single_valued(
    pairs: list[tuple[str, str]], where: str, single_valued: frozenset[str]
) -> dict[str, str]:
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields and name in single_valued:
            raise RequestRejected(
                400, "duplicate_field", f"'{name}' appears more than once in the {where}"
            )
        fields.setdefault(name, value)
    return fields
