"""Gated promotion: the next stage step only while every moved connection is proven healthy.

`rollout plan` advances ``stage_percent`` to the next configured step when

- the current stage has soaked ``soak_minutes`` since it was last changed;
- every migratable connection routed to the new provider now is ``healthy`` by the guard's
  test (enough evidence that it fails no more than its legacy baseline) - an ``unproven``,
  ``failing`` or ``silent`` one pauses the rollout, named with its numbers;
- the guard turned no connection off since the current stage began;
- with the shadow readiness gate on (``shadow.gate``), every connection the step would move is
  ready; gated promotion never forces past it (``flags stage --force`` is a person's call).

The plan itself is `flags stage`'s (`plan_stage`): the same preview token, so ``--apply`` does
exactly what the preview showed, re-checked against what is stored at that moment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from connection_map import ConnectionMap
from flags import AuditRecord, RolloutState, StagePlan, plan_stage
from flags.evaluation import evaluate
from proxy.outcomes.guard import ACTOR, RolloutGuard
from proxy.outcomes.settings import PromotionSettings


@dataclass(frozen=True, slots=True)
class Promotion:
    """What `rollout plan` found: the next step, and either a plan or why it pauses."""

    current_percent: float
    next_percent: float | None
    paused: tuple[str, ...]
    plan: StagePlan | None
    verdicts: dict[str, str]

    def as_dict(self) -> dict[str, object]:
        plan = self.plan
        return {
            "current_percent": self.current_percent,
            "next_percent": self.next_percent,
            "ready": not self.paused and plan is not None,
            "paused": list(self.paused),
            "verdicts": self.verdicts,
            "plan": None
            if plan is None
            else {
                "version": plan.version,
                "to_new": list(plan.to_new),
                "held": list(plan.held),
                "token": plan.token,
            },
        }


def stage_started(history: Sequence[AuditRecord]) -> datetime | None:
    """When the stage was last changed (newest record touching ``stage_percent``)."""
    for record in history:
        if "stage_percent" in record.after:
            return _time(record)
    return None


def _time(record: AuditRecord) -> datetime:
    return datetime.fromisoformat(record.time.replace("Z", "+00:00"))


def plan_promotion(
    state: RolloutState,
    history: Sequence[AuditRecord],
    connections: ConnectionMap,
    guard: RolloutGuard,
    settings: PromotionSettings,
    *,
    now: float,
    not_ready: Callable[[Sequence[str]], Mapping[str, str]] | None = None,
) -> Promotion:
    """The next step's plan, or the reasons it must wait."""
    current = state.stage_percent
    following = [step for step in settings.steps if step > current]
    if not following:
        return Promotion(current, None, ("the stage is at the last step",), None, {})
    target = following[0]
    paused: list[str] = []
    if state.kill_all:
        paused.append("the global kill switch is on")
    started = stage_started(history)
    if started is not None:
        soaked = (now - started.timestamp()) / 60
        if soaked < settings.soak_minutes:
            paused.append(
                f"stage {current:g} % has soaked {soaked:.0f} of {settings.soak_minutes:g} minutes"
            )
    verdicts: dict[str, str] = {}
    for connection in connections:
        if not connection.migratable or evaluate(state, connection.id).route != "new":
            continue
        judgement, _ = guard.judge_connection(connection.id, state, history)
        verdicts[connection.id] = judgement.verdict
        if judgement.verdict != "healthy":
            paused.append(f"{connection.id} is {judgement.verdict}: {judgement.summary()}")
    for record in history:
        if started is not None and _time(record) < started:
            break
        if record.actor == ACTOR:
            killed = ", ".join(sorted(record.after.get("overrides", {})))
            paused.append(f"the guard turned {killed} off at {record.time}")
    plan = plan_stage(state, target, {c.id: c.migratable for c in connections})
    if not_ready is not None:
        for connection_id, why in not_ready(plan.to_new).items():
            paused.append(f"{connection_id} is not ready (shadow readiness): {why}")
    return Promotion(current, target, tuple(paused), plan, verdicts)
