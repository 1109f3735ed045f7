"""Small raw-ASGI responses authswitch answers itself (errors, redirects, ops)."""

from __future__ import annotations

import json

from proxy.http.asgi_types import RawHeaders, Send

_NO_STORE: RawHeaders = [
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
]


async def send_bytes(
    send: Send, status: int, body: bytes, headers: RawHeaders, *, content_type: bytes
) -> None:
    """Send a complete response with a known body."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_json(
    send: Send, status: int, payload: object, headers: RawHeaders | None = None
) -> None:
    body = json.dumps(payload, separators=(",", ":")).encode()
    extra = [*_NO_STORE, *(headers or [])]
    await send_bytes(send, status, body, extra, content_type=b"application/json")


async def send_error(
    send: Send, status: int, reason: str, message: str, request_id: str, *, close: bool = False
) -> None:
    """An error authswitch itself answers: a stable reason code and a sentence, no secrets.
    `close`: the connection closes after it (the request's body was not all read)."""
    headers = [(b"x-request-id", request_id.encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send_json(
        send, status, {"error": reason, "message": message, "request_id": request_id}, headers
    )
