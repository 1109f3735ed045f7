"""The hook's HTTP exchange in raw ASGI: the few types, reading the body, the JSON answer.

The broker's own (not the callback path's): the broker imports nothing from the service.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
RawHeaders = list[tuple[bytes, bytes]]

_NO_STORE: RawHeaders = [
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
]


class BodyRefused(Exception):
    """The body is too large (413) or too slow (408); `reason` is the answer's error code."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class ClientDisconnected(Exception):
    """The caller went away before its request body was complete."""


async def read_body(receive: Receive, headers: RawHeaders, limit: int, seconds: float) -> bytes:
    """The whole request body: over `limit` bytes (declared or sent) is refused, as is a body
    not complete within `seconds`."""
    declared = [value for name, value in headers if name == b"content-length"]
    if declared and declared[0].isdigit() and int(declared[0]) > limit:
        raise BodyRefused(413, "body_too_large")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(seconds):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientDisconnected
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise BodyRefused(413, "body_too_large")
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)
    except TimeoutError:
        raise BodyRefused(408, "body_timeout") from None


async def send_json(
    send: Send, status: int, payload: object, headers: RawHeaders | None = None
) -> None:
    """A complete JSON answer, never cached."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *_NO_STORE,
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
