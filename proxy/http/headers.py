"""Reading the few request facts the proxy needs from raw ASGI headers and scope."""

from __future__ import annotations

from proxy.http.asgi_types import RawHeaders, Scope


def header_value(headers: RawHeaders, name: bytes) -> bytes | None:
    """The first value of header `name` (lower-case bytes), or None."""
    for key, value in headers:
        if key == name:
            return value
    return None


def content_length(headers: RawHeaders) -> int | None:
    """The declared Content-Length, or None when absent or not a plain number."""
    value = header_value(headers, b"content-length")
    if value is None or not value.isdigit():
        return None
    return int(value)


def has_body(headers: RawHeaders) -> bool:
    """Whether the request declares a body: forwarding a body-less request must not add one."""
    length = header_value(headers, b"content-length")
    if length is not None:
        return length != b"0"
    return header_value(headers, b"transfer-encoding") is not None


def client_host(scope: Scope) -> str | None:
    """The peer address of the connection, if the server knows it."""
    client = scope.get("client")
    return client[0] if client else None


def unended_line(previous: int, data: bytes) -> int:
    """Bytes of the line still open after `data` arrives, `previous` of it before.

    httptools hands over a header or trailer line only once it ends and buffers it until then;
    this is what a caller holds to a line limit, as the bytes arrive."""
    newline = data.rfind(b"\n")
    return previous + len(data) if newline < 0 else len(data) - newline - 1
