"""Noticing a client that stops taking part in a forwarded exchange.

One timer per exchange, not one per step, and only once a wait on the client begins: a
forwarded answer is one or two `send`s, a deadline around each cost ~2 µs, and every request
would pay it for a client that almost never stalls.
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class ClientIdleWatch:
    """Cancels the task when one wait on the client (`waiting` ... `done`) has lasted a whole
    period of `seconds`: such a wait is cut after `seconds` to twice that. Waits on anything
    else (the upstream) never count. Leaving the `with` turns that cancellation, and only
    that one, into TimeoutError, as `asyncio.timeout` does."""

    __slots__ = ("_expired", "_handle", "_loop", "_seconds", "_seen", "_steps", "_task", "_waiting")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._waiting = False
        self._steps = 0
        self._seen = -1  # the step count when a check last found a wait, else -1
        self._expired = False
        self._handle: asyncio.TimerHandle | None = None

    def __enter__(self) -> ClientIdleWatch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._handle is None:  # never waited on the client
            return
        self._handle.cancel()
        if self._expired and self._task.uncancel() == 0 and exc_type is asyncio.CancelledError:
            raise TimeoutError

    def waiting(self) -> None:
        """A wait on the client begins (the first one starts the timer)."""
        self._waiting = True
        if self._handle is None:
            loop = self._loop = asyncio.get_running_loop()
            task = asyncio.current_task(loop)
            if task is None:
                raise RuntimeError("a client idle watch must be used inside a task")
            self._task = task
            self._handle = loop.call_later(self._seconds, self._check)

    def done(self) -> None:
        """It ended."""
        self._waiting = False
        self._steps += 1

    def _check(self) -> None:
        if self._waiting and self._seen == self._steps:  # the same wait, a whole period long
            self._expired = True
            self._task.cancel()
            return
        self._seen = self._steps if self._waiting else -1
        self._handle = self._loop.call_later(self._seconds, self._check)
