"""Reading a request body whole, with a size cap and a deadline (callbacks and broker hooks)."""

from __future__ import annotations

import asyncio

from proxy.http.asgi_types import Receive


class RequestRejected(Exception):
    """A request authswitch refuses; answered with `status` and a reason code."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class ClientDisconnected(Exception):
    """The client went away before its request body was complete."""


async def read_body(
    receive: Receive, declared_length: int | None, limit: int, deadline_seconds: float
) -> bytes:
    """Read the whole request body, refusing more than `limit` bytes (413)."""
    if declared_length is not None and declared_length > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(deadline_seconds):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientDisconnected
                chunk = message.get("body", b"")
                if chunk:
                    size += len(chunk)
                    if size > limit:
                        raise _too_large(limit)
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    break
    except TimeoutError:
        raise RequestRejected(
            408, "body_timeout", f"request body not received within {deadline_seconds:g} s"
        ) from None
    return b"".join(chunks)


def _too_large(limit: int) -> RequestRejected:
    return RequestRejected(413, "body_too_large", f"callback body exceeds the {limit}-byte limit")
