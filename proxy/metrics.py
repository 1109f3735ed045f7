"""Prometheus metrics for callbacks. Label values are bounded: connection ids come from the
map (never from the request), reasons and outcomes are fixed codes."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
PASSTHROUGH = Counter(
    "authswitch_passthrough_total",
    "Non-callback requests passed to the legacy upstream, by outcome.",
    ["outcome"],
)
