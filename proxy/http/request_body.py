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
    """Read the whole request body, refusing more than `limit` bytes (413) and a body not
    complete within `deadline_seconds` (408)."""
    if declared_length is not None and declared_length > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    deadline = _Deadline(deadline_seconds)
    try:
        async with deadline:
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


class _Deadline:
    """`asyncio.timeout(seconds)` for the body read, at a third of its cost on every callback.

    asyncio's asks for the running loop three times (each time a `getpid()` system call, dear
    in a VM) and keeps a state machine for rescheduling, which this deadline never needs.
    Semantics are asyncio's: on expiry the task is cancelled; the cancellation is turned into
    TimeoutError only if it is this deadline's alone (`uncancel()` leaves none pending), so a
    shutdown that cancels the task at the same moment still cancels it.
    """

    __slots__ = ("_expired", "_handle", "_seconds", "_task")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._expired = False
        self._task: asyncio.Task[object] | None = None
        self._handle: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> None:
        loop = asyncio.get_running_loop()
        task = self._task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("a deadline must be used inside a task")
        self._handle = loop.call_later(self._seconds, self._expire)

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        assert self._handle is not None and self._task is not None
        self._handle.cancel()
        if self._expired and self._task.uncancel() == 0 and exc_type is asyncio.CancelledError:
            raise TimeoutError

    def _expire(self) -> None:
        assert self._task is not None
        self._expired = True
        self._task.cancel()


def _too_large(limit: int) -> RequestRejected:
    return RequestRejected(413, "body_too_large", f"callback body exceeds the {limit}-byte limit")
