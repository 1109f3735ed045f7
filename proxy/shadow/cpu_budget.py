"""A CPU budget for the shadow checks: at most a set share of one core, averaged over time.

A SAML check costs a few milliseconds of CPU, several times a fall-through callback, and
python3-saml holds the GIL around parts of it: checking every callback of a busy connection
would take the event loop's core. The budget is a token bucket of CPU-seconds, refilled at
``share`` CPU-seconds per second up to ``burst``; the workers spend what each check took
(thread CPU time) and a sample drawn while the bucket is empty is skipped and counted, like a
sample that finds the queue full.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class CpuBudget:
    """How much CPU the checks may still take; shared by the event loop and the workers."""

    def __init__(
        self, share: float, *, burst: float = 0.1, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._share = share
        self._burst = burst
        self._clock = clock
        self._tokens = burst
        self._at = clock()
        self._lock = threading.Lock()

    def available(self) -> bool:
        """True while a check may start (the event loop asks before queueing a sample)."""
        with self._lock:
            self._refill()
            return self._tokens > 0

    def spend(self, cpu_seconds: float) -> None:
        """Charge a finished check (a worker thread); the bucket may go below zero."""
        with self._lock:
            self._refill()
            self._tokens -= cpu_seconds

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._share)
        self._at = now
