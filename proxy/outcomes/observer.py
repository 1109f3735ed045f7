"""The proxy's own observations: recorded on the callback path without I/O, flushed behind it.

``observe`` appends one small tuple to a bounded deque (no lock, no syscall); a background task
moves the buffer to the store every ``flush_seconds`` (off the event loop for Redis). When the
store is down the batch is kept for the next flush up to the buffer's bound, then the oldest
observations are dropped and counted: login traffic never waits for the outcome store.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable

from proxy.ops import metrics
from proxy.outcomes.answer_rules import AnswerRules
from proxy.outcomes.counts import Observation, OutcomeStore, OutcomesUnavailable, Side
from proxy.outcomes.settings import ProxyObservation

log = logging.getLogger("authswitch.outcomes")

# The proxy's outcome codes (proxy/app.py) -> side and whether authswitch saw the answer.
_PROXIED = {"legacy_proxied": "legacy", "new_proxied": "new"}
_FORWARDED = {"new_redirect": "new", "new_form_post": "new"}
_UPSTREAM_FAILED = {
    "legacy_unavailable": "legacy",
    "legacy_upstream_error": "legacy",
    "new_upstream_error": "new",
}


class ProxyObserver:
    """Buffers the proxy's observations and flushes them to the outcome store."""

    def __init__(
        self,
        store: OutcomeStore,
        settings: ProxyObservation,
        *,
        in_thread: bool,
        label: Callable[[str | None], str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._label = label
        self._rules = AnswerRules(settings)
        self._buffer: deque[Observation] = deque()
        self._limit = settings.buffer_size
        self._flush_seconds = settings.flush_seconds
        self._in_thread = in_thread
        self._clock = clock
        self._enabled = settings.enabled

    def observe(
        self,
        connection: str | None,
        destination: str,
        route: str,
        outcome_code: str,
        status: int | None,
        location: bytes | None,
    ) -> None:
        """Record one callback's outcome (no I/O: a deque append).

        ``destination`` (``new``/``legacy``), ``outcome_code`` (the callbacks metric's outcome),
        the answer's ``status`` and ``Location`` as the client got them.
        """
        if connection is None or not self._enabled:
            return
        side: str | None
        if (side := _PROXIED.get(outcome_code)) is not None:
            outcome = self._rules.classify(route, status or 0, location)
        elif (side := _FORWARDED.get(outcome_code)) is not None:
            outcome = "forwarded"
        elif (side := _UPSTREAM_FAILED.get(outcome_code)) is not None:
            outcome = "failed"
        elif outcome_code == "upstream_truncated" and destination in ("new", "legacy"):
            side, outcome = destination, "failed"  # the answer broke off mid-way
        else:
            return  # rejected, client gone, cancelled: no login outcome to speak of
        if len(self._buffer) >= self._limit:
            self._buffer.popleft()
            metrics.OUTCOME_OBSERVATIONS_DROPPED.inc()
        minute = int(self._clock() // 60)
        self._buffer.append(Observation(connection, _side(side), "proxy", outcome, minute))
        if side == "new" and outcome != "forwarded":
            # proxy mode: the new provider's answer is also a forward
            self._buffer.append(Observation(connection, "new", "proxy", "forwarded", minute))

    async def run(self) -> None:
        """Flush forever (cancel to stop; `flush` once more at shutdown)."""
        while True:
            await asyncio.sleep(self._flush_seconds)
            await self.flush()

    async def flush(self) -> None:
        if not self._buffer:
            return
        batch = list(self._buffer)
        self._buffer.clear()
        try:
            if self._in_thread:
                counted = await asyncio.to_thread(self._store.add, batch)
            else:
                counted = self._store.add(batch)
        except OutcomesUnavailable as exc:
            room = self._limit - len(self._buffer)
            kept = batch[-room:] if room > 0 else []
            self._buffer.extendleft(reversed(kept))
            metrics.OUTCOME_OBSERVATIONS_DROPPED.inc(len(batch) - len(kept))
            metrics.OUTCOME_STORE_ERRORS.labels("flush").inc()
            log.warning("outcome observations not stored yet: %s", exc)
            return
        count_in_metrics(counted, self._label)


def count_in_metrics(counted: list[Observation], label: Callable[[str | None], str]) -> None:
    """`authswitch_login_outcomes_total` for observations the store counted."""
    for item in counted:
        metrics.LOGIN_OUTCOMES.labels(
            label(item.connection), item.side, item.source, item.outcome
        ).inc()


def _side(value: str) -> Side:
    return "new" if value == "new" else "legacy"
