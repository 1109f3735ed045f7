"""One row per connection: the map's facts, triage, the flag's answer and why, live outcomes,
the guard's verdict and shadow readiness, each taken from the module the proxy and the CLIs use
(route_report, rollout_status, the readiness gate), so the console can never disagree with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from connection_map import Connection
from flags import AuditRecord, RolloutState
from flags.route_report import ConnectionRoute, route_report
from proxy.console.map_reader import MapView
from proxy.flag_backend import connection_facts_of
from proxy.outcomes.counts import OutcomeStore, OutcomesUnavailable
from proxy.outcomes.guard import RolloutGuard, legacy_side_source, new_side_source
from proxy.outcomes.settings import OutcomesSettings
from proxy.outcomes.status_report import ConnectionStatus, SideFigures, rollout_status
from proxy.shadow.gate import not_ready_because, readiness_of
from proxy.shadow.readiness_store import ReadinessStore
from proxy.shadow.settings import ShadowSettings


@dataclass(frozen=True, slots=True)
class Instruments:
    """Where live numbers come from; None when this deployment doesn't keep them."""

    outcomes: OutcomeStore | None
    guard: RolloutGuard | None
    outcome_settings: OutcomesSettings
    readiness: ReadinessStore | None
    shadow: ShadowSettings
    window_minutes: int


@dataclass(frozen=True, slots=True)
class ConnectionRow:
    connection: Connection
    route: ConnectionRoute
    triage_class: str
    triage_reasons: tuple[str, ...]
    legacy: SideFigures | None
    new: SideFigures | None
    guard_verdict: str | None
    readiness: str
    """``ready``, ``not ready: why``, or ``not checked`` (no shadow store)."""

    @property
    def id(self) -> str:
        return self.connection.id


def connection_rows(
    view: MapView,
    state: RolloutState,
    history: Sequence[AuditRecord],
    instruments: Instruments,
    *,
    now: float,
) -> tuple[list[ConnectionRow], str | None]:
    """The rows in id order, and why outcome numbers are missing (None: they are there)."""
    routes = {
        r.id: r
        for r in route_report(state, [connection_facts_of(c) for c in view.document.connections])
    }
    statuses, missing = _statuses(view, state, history, instruments, now)
    rows = []
    for connection in sorted(view.document.connections, key=lambda c: c.id):
        status = statuses.get(connection.id)
        rows.append(
            ConnectionRow(
                connection,
                routes[connection.id],
                connection.assessment.value,
                _triage_reasons(connection, view),
                status.legacy if status else None,
                status.new if status else None,
                status.judgement.verdict if status and status.judgement else None,
                _readiness(connection, instruments),
            )
        )
    return rows, missing


def _statuses(
    view: MapView,
    state: RolloutState,
    history: Sequence[AuditRecord],
    instruments: Instruments,
    now: float,
) -> tuple[dict[str, ConnectionStatus], str | None]:
    if instruments.outcomes is None or instruments.guard is None:
        return {}, "outcomes are not kept here (outcomes.enabled is off): no data"
    try:
        rows = rollout_status(
            state,
            list(history),
            view.index,
            instruments.outcomes,
            instruments.guard,
            new_source=new_side_source(instruments.outcome_settings),
            legacy_source=legacy_side_source(instruments.outcome_settings),
            window_minutes=instruments.window_minutes,
            now=now,
        )
    except OutcomesUnavailable as exc:
        return {}, f"outcome counts unavailable: {exc}"
    return {row.connection: row for row in rows}, None


def _triage_reasons(connection: Connection, view: MapView) -> tuple[str, ...]:
    """The stored verdict's reasons (what the proxy routes by), and triage's own if it now
    disagrees (the map was edited without an import re-running triage)."""
    triage = view.triage[connection.id]
    if triage.assessment == connection.assessment:
        return connection.assessment_reasons or triage.messages
    return (
        *connection.assessment_reasons,
        f"triage now says {triage.assessment.value} (the proxy routes by the stored "
        f"{connection.assessment.value} until the map is re-imported)",
        *triage.messages,
    )


def _readiness(connection: Connection, instruments: Instruments) -> str:
    if instruments.readiness is None:
        return "not checked"
    why = not_ready_because(
        readiness_of(connection, instruments.shadow, instruments.readiness), instruments.shadow
    )
    return "ready" if why is None else f"not ready: {why}"
