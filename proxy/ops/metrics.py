"""Prometheus metrics.

Label values are bounded: connection ids come from the connection map, never from the request,
and only the first `max_connection_labels` distinct ids get a label of their own (the rest share
"other"); reasons and outcomes are fixed codes. With several workers, prometheus-client's
multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set by `authswitch serve`) aggregates them.
"""

from __future__ import annotations

import os
import platform

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from foundation.version import authswitch_version

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
OTHER = "other"

CALLBACKS = Counter(
    "authswitch_callbacks_total",
    "Callbacks handled, by connection, destination, decision reason, outcome and the answer's "
    "status class (2xx..5xx, none).",
    ["connection", "destination", "reason", "outcome", "status_class"],
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
    "connection_limit (closed at once), trailer_too_large (a chunked body's trailer line over "
    "server.max_header_bytes: closed mid-request).",
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


# -- login outcomes and the rollout guard (proxy/outcomes/) ------------------------------------

LOGIN_OUTCOMES = Counter(
    "authswitch_login_outcomes_total",
    "Login outcomes counted per connection and side (legacy/new), by source (proxy: the answer "
    "authswitch proxied; events: the provider's own report) and outcome (succeeded, failed, "
    "forwarded: handed to the new provider, result unseen).",
    ["connection", "side", "source", "outcome"],
)
OUTCOME_OBSERVATIONS_DROPPED = Counter(
    "authswitch_outcome_observations_dropped_total",
    "Proxy observations dropped because the outcome store was unreachable and the buffer full.",
)
OUTCOME_STORE_ERRORS = Counter(
    "authswitch_outcome_store_errors_total",
    "Outcome store operations that failed, by operation.",
    ["operation"],
)
OUTCOME_EVENTS = Counter(
    "authswitch_outcome_events_total",
    "Provider events received, by source and result (counted, duplicate, unmapped, ignored).",
    ["source", "result"],
)
OUTCOME_WEBHOOK_REQUESTS = Counter(
    "authswitch_outcome_webhook_requests_total",
    "Outcome webhook deliveries, by source and result (accepted, bad_signature, stale, replay, "
    "malformed, unavailable).",
    ["source", "result"],
)
OUTCOME_SOURCE_SEEN = Gauge(
    "authswitch_outcome_source_last_seen_timestamp_seconds",
    "When an outcome source last answered (a successful poll or a verified webhook).",
    ["source"],
    multiprocess_mode="max",
)
GUARD_VERDICTS = Counter(
    "authswitch_guard_verdicts_total",
    "Guard verdicts per connection (healthy, unproven, failing, silent) and mode.",
    ["connection", "verdict", "mode"],
)
GUARD_KILLS = Counter(
    "authswitch_guard_kills_total",
    "Connections the guard turned off (mode enforce), or found failing or silent (mode observe, "
    "once per verdict).",
    ["connection", "mode"],
)
GUARD_CONCLUSIVE = Gauge(
    "authswitch_guard_conclusive",
    "1 while the guard's verdict on a connection on the new provider is failing or silent "
    "(in mode observe: until someone acts), 0 otherwise.",
    ["connection", "mode"],
    multiprocess_mode="livemax",
)
GUARD_SKIPPED = Counter(
    "authswitch_guard_rounds_skipped_total",
    "Guard rounds that did nothing because outcomes or the flag store could not be read.",
    ["reason"],
)
GUARD_LEADER = Gauge(
    "authswitch_guard_leader",
    "1 while this process holds the guard's lease.",
    multiprocess_mode="max",
)


# -- shadow readiness ---------------------------------------------------------------------

SHADOW_CHECKS = Counter(
    "authswitch_shadow_checks_total",
    "Sampled legacy callbacks checked against the new provider's import, by connection and "
    "result (accepted, refused).",
    ["connection", "result"],
)
SHADOW_REASONS = Counter(
    "authswitch_shadow_reasons_total",
    "Why the new provider would refuse a sampled callback, by connection and reason code.",
    ["connection", "reason"],
)
SHADOW_DROPPED = Counter(
    "authswitch_shadow_dropped_total",
    "Sampled callbacks not checked, by connection and reason: queue_full (the check queue was "
    "full) or cpu_budget (the checks had used shadow.max_cpu_share).",
    ["connection", "reason"],
)
SHADOW_CHECK_SECONDS = Histogram(
    "authswitch_shadow_check_duration_seconds",
    "Time one shadow check took in its worker thread.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)
SHADOW_ERRORS = Counter(
    "authswitch_shadow_errors_total",
    "Shadow checks that ended in an error (e.g. the readiness store unreachable), by error type.",
    ["error"],
)

# -- the build (the value is always 1; the labels say what runs) -------------------------------

BUILD_INFO = Gauge(
    "authswitch_build_info",
    "Always 1; labels: the authswitch version and the Python version running it.",
    ["version", "python"],
    multiprocess_mode="max",
)
BUILD_INFO.labels(authswitch_version(), platform.python_version()).set(1)
