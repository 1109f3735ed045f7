"""Accounting: every callback ends with one log line and its metrics, however it ends."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from prometheus_client import Counter, Histogram

from proxy.http.asgi_types import Scope
from proxy.ops import metrics
from proxy.ops.json_logging import direct_sink
from proxy.outcomes.answer_rules import status_class

if TYPE_CHECKING:
    from proxy.callback.context import Callback

access_log = logging.getLogger("authswitch.access")


def _access_line(event: str, fields: dict[str, object]) -> None:
    """One access line, as `access_log.info(event, extra={"fields": fields})` would write it.

    With logging as `configure_logging` sets it up, the line is formatted and buffered
    directly (a LogRecord, the handler walk and two locks were half of its cost); otherwise
    it is handed to the logger's handlers, minus the stack walk for the caller's file and line
    (which the JSON line does not carry)."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    sink = direct_sink(access_log)
    if sink is not None:
        handler, formatter = sink
        handler.add_line(formatter.fields_line(access_log.name, "info", event, fields))
    else:
        access_log.handle(
            access_log.makeRecord(
                access_log.name, logging.INFO, "", 0, event, (), None, extra={"fields": fields}
            )
        )


class CallbackAccounting:
    """Counts and logs finished callbacks; connection labels are capped (metrics cardinality)."""

    def __init__(self, max_connection_labels: int) -> None:
        self._connection_label = metrics.ConnectionLabels(max_connection_labels)
        # Labelled children bound once per label set: `labels()` takes a lock and builds the
        # key on every call. Bounded like the labels (capped connections, fixed codes).
        self._counters: dict[tuple[str, str, str, str, str], Counter] = {}
        self._forward_seconds: dict[str, Histogram] = {}
        self._callback_seconds: dict[str, Histogram] = {}

    def account(self, callback: Callback) -> None:
        """Record a finished callback: metrics by connection, destination, reason and outcome;
        one log line."""
        finished = time.perf_counter()
        destination = callback.destination
        if callback.decision is not None:
            metrics.DECISION_SECONDS.observe(callback.decided - callback.received)
            forward = self._forward_seconds.get(destination)
            if forward is None:
                forward = self._forward_seconds[destination] = metrics.FORWARD_SECONDS.labels(
                    destination
                )
            forward.observe(finished - callback.decided)
        connection = callback.connection
        connection_id = connection.id if connection is not None else None
        identification = callback.identification
        strategy = identification.strategy if identification is not None else None
        elapsed = finished - callback.started
        key = (
            self._connection_label(connection_id),
            destination,
            callback.reason,
            callback.outcome,
            status_class(callback.status),
        )
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = metrics.CALLBACKS.labels(*key)
        counter.inc()
        duration = self._callback_seconds.get(destination)
        if duration is None:
            duration = self._callback_seconds[destination] = metrics.CALLBACK_SECONDS.labels(
                destination
            )
        duration.observe(elapsed)
        scope = callback.scope
        _access_line(
            "callback",
            {
                "request_id": callback.request_id,
                "trace_id": callback.trace_id,
                "span_id": callback.span_id,
                "method": scope["method"],
                "path": scope["path"],
                "connection": connection_id,
                "strategy": strategy.value if strategy else None,
                "destination": destination,
                "reason": callback.reason,
                "outcome": callback.outcome,
                "status": callback.status,
                "duration_ms": round(elapsed * 1000, 3),
            },
        )


# Bound once per outcome (a handful of fixed codes), as CallbackAccounting does.
_passthrough_counters: dict[str, Counter] = {}


def account_pass_through(
    scope: Scope,
    request_id: str,
    started: float,
    status: int,
    outcome: str,
    trace_id: str | None = None,
    span_id: str | None = None,
) -> None:
    """Record a non-callback request passed to legacy: a counter by outcome, a log line."""
    counter = _passthrough_counters.get(outcome)
    if counter is None:
        counter = _passthrough_counters[outcome] = metrics.PASSTHROUGH.labels(outcome)
    counter.inc()
    _access_line(
        "request",
        {
            "request_id": request_id,
            "trace_id": trace_id,
            "span_id": span_id,
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "outcome": outcome,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
        },
    )
