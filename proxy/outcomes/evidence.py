"""`rollout evidence CONN`: what goes on the change ticket for one connection.

Its triage facts, its flag history, its outcome counts per side and day before and after its
last routing change, and the guard's decisions (records with actor ``guard``) and verdict now.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from connection_map import ServedConnection
from flags import AuditRecord, RolloutState
from proxy.outcomes.counts import SIDES, SOURCES, OutcomeStore
from proxy.outcomes.guard import ACTOR, RolloutGuard, routing_changed

DAY_MINUTES = 1440


def connection_evidence(
    connection: ServedConnection,
    state: RolloutState,
    history: Sequence[AuditRecord],
    outcomes: OutcomeStore,
    guard: RolloutGuard,
    *,
    days: int,
    now: float,
) -> dict[str, object]:
    """The evidence document (JSON-ready)."""
    changes = [r for r in history if routing_changed(r, connection.id, state)]
    judgement, flipped = guard.judge_connection(connection.id, state, history)
    today = int(now // 60) // DAY_MINUTES
    daily: list[dict[str, object]] = []
    for day in range(today - days + 1, today + 1):
        tally = outcomes.tally(connection.id, day * DAY_MINUTES, (day + 1) * DAY_MINUTES)
        start = datetime.fromtimestamp(day * DAY_MINUTES * 60, UTC)
        phase = "before" if flipped is None or start < _day_of(flipped) else "after"
        if flipped is not None and start == _day_of(flipped):
            phase = "change"
        counts = {
            side: {
                source: {
                    outcome: tally.get(side, source, outcome)
                    for outcome in ("succeeded", "failed", "forwarded")
                    if tally.get(side, source, outcome)
                }
                for source in SOURCES
                if any(key[0] == side and key[1] == source for key in tally.counts)
            }
            for side in SIDES
        }
        daily.append({"day": start.date().isoformat(), "phase": phase, "counts": counts})
    target = connection.new_provider
    return {
        "connection": connection.id,
        "facts": {
            "protocol": connection.protocol.value,
            "assessment": connection.assessment.value,
            "migratable": connection.migratable,
            "idp_initiated": connection.idp_initiated,
            "new_provider": None
            if target is None
            else {"mode": target.mode.value, "connection_id": target.connection_id},
        },
        "last_routing_change": flipped.isoformat() if flipped else None,
        "flag_history": [_record(r) for r in changes],
        "guard_decisions": [_record(r) for r in changes if r.actor == ACTOR],
        "guard_now": judgement.as_dict(),
        "outcomes_per_day": daily,
    }


def _day_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _record(record: AuditRecord) -> dict[str, object]:
    return {
        "version": record.version,
        "time": record.time,
        "actor": record.actor,
        "action": record.action,
        "change": record.summary(),
        "reason": record.reason,
    }
