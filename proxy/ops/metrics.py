"""Prometheus metrics.

Label values are bounded: connection ids come from the connection map, never from the request,
and only the first `max_connection_labels` distinct ids get a label of their own (the rest share
"other"); reasons and outcomes are fixed codes. With several workers, prometheus-client's
multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set by `authswitch serve`) aggregates them.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
OTHER = "other"

CALLBACKS = Counter(
    "authswitch_callbacks_total",
    "Callbacks handled, by connection, destination, decision reason and outcome.",
    ["connection", "destination", "reason", "outcome"],
)
CALLBACK_SECONDS = Histogram(
    "authswitch_callback_duration_seconds",
    "Time from the callback's arrival to the end of its answer.",
    ["destination"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DECISION_SECONDS = Histogram(
    "authswitch_decision_duration_seconds",
    "From a callback's body received to its destination decided: parsing, identification "
    "(SAML Issuer included), connection map and flag lookups.",
    buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1),
)
FORWARD_SECONDS = Histogram(
    "authswitch_forward_duration_seconds",
    "From the decision to the end of the answer: the redirect or form, or the upstream "
    "round trip and the streamed body.",
    ["destination"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PASSTHROUGH = Counter(
    "authswitch_passthrough_total",
    "Non-callback requests passed to the legacy upstream, by outcome.",
    ["outcome"],
)

REFUSED_CONNECTIONS = Counter(
    "authswitch_refused_connections_total",
    "Client connections closed before a request reached routing, by reason: header_too_large, "
    "too_many_headers (431), header_timeout (408, or closed if nothing was sent), "
    "connection_limit (closed at once).",
    ["reason"],
)


class ConnectionLabels:
    """Maps connection ids to label values, at most `limit` distinct ones plus "other"."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._known: set[str] = set()

    def __call__(self, connection_id: str | None) -> str:
        if connection_id is None:
            return "unknown"
        if connection_id in self._known:
            return connection_id
        if len(self._known) < self._limit:
            self._known.add(connection_id)
            return connection_id
        return OTHER


def exposition() -> tuple[bytes, str]:
    """The metrics text of this process, or of all workers in multiprocess mode."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
