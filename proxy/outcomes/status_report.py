"""`rollout status`: per connection its route and why, traffic and success per side, the verdict."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from connection_map import ConnectionMap
from flags import AuditRecord, RolloutState
from flags.evaluation import evaluate
from proxy.outcomes.counts import OutcomeStore, Side, Source, Tally
from proxy.outcomes.guard import HISTORY_LIMIT, RolloutGuard
from proxy.outcomes.sequential_test import Judgement


@dataclass(frozen=True, slots=True)
class SideFigures:
    callbacks_per_minute: float
    succeeded: int
    failed: int

    @property
    def success_rate(self) -> float | None:
        total = self.succeeded + self.failed
        return self.succeeded / total if total else None

    def as_dict(self) -> dict[str, object]:
        rate = self.success_rate
        return {
            "callbacks_per_minute": round(self.callbacks_per_minute, 3),
            "succeeded": self.succeeded,
            "failed": self.failed,
            "success_rate": round(rate, 4) if rate is not None else None,
        }


@dataclass(frozen=True, slots=True)
class ConnectionStatus:
    connection: str
    route: str
    reason: str
    legacy: SideFigures
    new: SideFigures
    judgement: Judgement | None
    flipped_at: datetime | None
    now: datetime

    def as_dict(self) -> dict[str, object]:
        since = (self.now - self.flipped_at).total_seconds() if self.flipped_at else None
        return {
            "connection": self.connection,
            "route": self.route,
            "reason": self.reason,
            "legacy": self.legacy.as_dict(),
            "new": self.new.as_dict(),
            "guard": self.judgement.as_dict() if self.judgement else None,
            "last_routing_change": self.flipped_at.isoformat() if self.flipped_at else None,
            "seconds_since_routing_change": round(since) if since is not None else None,
        }


def _figures(tally: Tally, side: Side, source: Source, minutes: int) -> SideFigures:
    succeeded, failed = tally.judged(side, source)
    callbacks = (
        tally.get(side, "proxy", "forwarded")
        if side == "new"
        else sum(tally.judged("legacy", "proxy"))
    )
    return SideFigures(callbacks / minutes, succeeded, failed)


def rollout_status(
    state: RolloutState,
    history: list[AuditRecord],
    connections: ConnectionMap,
    outcomes: OutcomeStore,
    guard: RolloutGuard,
    *,
    new_source: Source,
    legacy_source: Source = "proxy",
    window_minutes: int,
    now: float,
    only: str | None = None,
) -> list[ConnectionStatus]:
    """One row per connection (or only `only`); `OutcomesUnavailable` if counts can't be read."""
    assert len(history) <= HISTORY_LIMIT
    until = int(now // 60) + 1
    rows: list[ConnectionStatus] = []
    moment = datetime.fromtimestamp(now, UTC)
    for connection in connections:
        if only is not None and connection.id != only:
            continue
        decision = evaluate(state, connection.id)
        route, reason = decision.route, decision.reason
        if route == "new" and not connection.migratable:
            route, reason = "legacy", f"not migratable ({connection.assessment.value})"
        window = outcomes.tally(connection.id, until - window_minutes, until)
        judgement, flipped = guard.judge_connection(connection.id, state, history)
        rows.append(
            ConnectionStatus(
                connection.id,
                route,
                reason,
                _figures(window, "legacy", legacy_source, window_minutes),
                _figures(window, "new", new_source, window_minutes),
                judgement if route == "new" else None,
                flipped,
                moment,
            )
        )
    return rows
