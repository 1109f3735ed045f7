"""The rollout guard: judges every connection routed to the new provider, turns failing ones off.

Each round (every `interval_seconds`, only in the process holding the lease): read the rollout
state and its recent history, and for each migratable connection that routes to the new
provider compare its new-side outcomes since its flip (at most `window_hours`) with its own
legacy baseline (`sequential_test`), and check for silence. A failing or silent connection gets
override ``off`` through the flag store's compare-and-set, audited with actor ``guard`` and the
numbers (mode ``enforce``), or is only reported (mode ``observe``). The guard never turns a
connection on. If outcomes or the rollout state can't be read, the round does nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from connection_map import ConnectionMap
from flags import AuditRecord, RolloutState, RolloutStore, RolloutStoreError, VersionConflict
from flags.bucketing import bucket
from flags.evaluation import evaluate
from proxy.ops import metrics
from proxy.outcomes.counts import OutcomeStore, OutcomesUnavailable, Source, Tally
from proxy.outcomes.lease import Lease
from proxy.outcomes.sequential_test import Judgement, judge
from proxy.outcomes.settings import GuardSettings, OutcomesSettings

log = logging.getLogger("authswitch.guard")

ACTOR = "guard"
HISTORY_LIMIT = 500
BASELINE_REFRESH_MINUTES = 5


@dataclass(frozen=True, slots=True)
class GuardDecision:
    connection: str
    judgement: Judgement
    flipped_at: datetime | None
    acted: bool  # the override was written (enforce) - False in observe mode


def routing_changed(record: AuditRecord, connection: str, state: RolloutState) -> bool:
    """Whether this audited change can have moved ``connection`` between the providers.

    ``state`` is the current rollout state. Records are read newest first, so when the
    connection has an override or is a canary now, a stage change older than that can't have
    moved it (the override or canary entry is itself the newer change).
    """
    before, after = record.before, record.after
    if connection in (before.get("overrides") or {}) or connection in (
        after.get("overrides") or {}
    ):
        return True
    was_canary = connection in (before.get("canary") or [])
    is_canary = connection in (after.get("canary") or [])
    if was_canary != is_canary or "kill_all" in after or "salt" in after:
        return True
    if "stage_percent" not in after:
        return False
    if connection in state.overrides or connection in state.canary:
        return False
    place = bucket(state.salt, connection)
    old, new = float(before["stage_percent"]), float(after["stage_percent"])
    return (place < round(old * 100)) != (place < round(new * 100))


def flip_time(
    history: Sequence[AuditRecord], connection: str, state: RolloutState
) -> datetime | None:
    """When the newest change that could have routed ``connection`` where it is now was made."""
    for record in history:  # newest first
        if routing_changed(record, connection, state):
            return datetime.fromisoformat(record.time.replace("Z", "+00:00"))
    return None


def legacy_side_source(settings: OutcomesSettings) -> Source:
    """Legacy is judged on its own log stream (Auth0) when there is one: it saw every login,
    from before authswitch too; else on the answers authswitch proxied to it."""
    return "events" if settings.auth0.enabled else "proxy"


def new_side_source(settings: OutcomesSettings) -> Source:
    choice = settings.guard.new_side_source
    if choice == "auto":
        return "events" if settings.provider_events else "proxy"
    return choice


class RolloutGuard:
    """One round at a time; synchronous (the caller runs it in a thread when stores do I/O)."""

    def __init__(
        self,
        settings: OutcomesSettings,
        outcomes: OutcomeStore,
        rollout: RolloutStore,
        current_map: Callable[[], ConnectionMap],
        lease: Lease,
        *,
        clock: Callable[[], float] = time.time,
        silence_sources: Sequence[str] = (),
        label: Callable[[str | None], str] | None = None,
    ) -> None:
        self._settings = settings
        self._policy: GuardSettings = settings.guard
        self._outcomes = outcomes
        self._rollout = rollout
        self._current_map = current_map
        self._lease = lease
        self._clock = clock
        self._source = new_side_source(settings)
        self._legacy_source = legacy_side_source(settings)
        self._silence_sources = tuple(silence_sources)
        self.last_decisions: dict[str, GuardDecision] = {}
        self._label = label or (lambda connection: connection or "unknown")
        # connection -> (minute read, (succeeded, failed)): days of legacy counts move slowly,
        # and reading them is the round's biggest cost (one hash per hour and connection).
        self._baselines: dict[str, tuple[int, tuple[int, int]]] = {}

    @property
    def mode(self) -> str:
        return self._policy.mode

    def round(self) -> list[GuardDecision]:
        """Judge every connection on the new provider once; act on the conclusive ones."""
        holding = self._lease.hold()
        metrics.GUARD_LEADER.set(1 if holding else 0)
        if not holding or self._policy.mode == "off":
            self._forget()  # another replica judges now: its gauges count, not these
            return []
        try:
            state = self._rollout.read()
            history = self._rollout.history(HISTORY_LIMIT)
        except RolloutStoreError as exc:
            metrics.GUARD_SKIPPED.labels("flags_unreadable").inc()
            log.warning("guard round skipped: rollout state unreadable: %s", exc)
            return []
        now = self._clock()
        decisions: list[GuardDecision] = []
        try:
            judged = [
                self._judge(connection.id, state, history, now)
                for connection in self._current_map()
                if connection.migratable and evaluate(state, connection.id).route == "new"
            ]
        except OutcomesUnavailable as exc:
            metrics.GUARD_SKIPPED.labels("outcomes_unreadable").inc()
            log.warning("guard round skipped: outcomes unreadable: %s", exc)
            return []
        mode = self._policy.mode
        for connection, judgement, flipped in judged:
            label = self._label(connection)
            metrics.GUARD_VERDICTS.labels(label, judgement.verdict, mode).inc()
            conclusive = judgement.verdict in ("failing", "silent")
            metrics.GUARD_CONCLUSIVE.labels(label, mode).set(1 if conclusive else 0)
            previous = self.last_decisions.get(connection)
            repeated = previous is not None and previous.judgement.verdict == judgement.verdict
            acted = False
            # enforce: try every round until written; observe (or evidence the guard won't act
            # on): report once per verdict.
            acts = mode == "enforce" and self._may_act_on(judgement)
            if conclusive and (acts or not repeated):
                acted = self._conclude(connection, judgement, acts=acts)
            decision = GuardDecision(connection, judgement, flipped, acted)
            self.last_decisions[connection] = decision
            decisions.append(decision)
        judged_now = {connection for connection, _, _ in judged}
        for gone in [c for c in self.last_decisions if c not in judged_now]:
            # Off the new provider now (turned off, staged out): nothing to judge any more.
            metrics.GUARD_CONCLUSIVE.labels(self._label(gone), mode).set(0)
            del self.last_decisions[gone]
        return decisions

    def _forget(self) -> None:
        for connection in self.last_decisions:
            metrics.GUARD_CONCLUSIVE.labels(self._label(connection), self._policy.mode).set(0)
        self.last_decisions.clear()

    def judge_connection(
        self, connection: str, state: RolloutState, history: Sequence[AuditRecord]
    ) -> tuple[Judgement, datetime | None]:
        """The verdict for one connection now (the CLI's view; no lease, no action)."""
        _, judgement, flipped = self._judge(connection, state, history, self._clock())
        return judgement, flipped

    def _judge(
        self, connection: str, state: RolloutState, history: Sequence[AuditRecord], now: float
    ) -> tuple[str, Judgement, datetime | None]:
        policy = self._policy
        now_minute = int(now // 60)
        flipped = flip_time(history, connection, state)
        since = now_minute - int(policy.window_hours * 60)
        if flipped is not None:
            since = max(since, int(flipped.timestamp() // 60))
        until = now_minute + 1
        new = self._outcomes.tally(connection, since, until)
        base_succeeded, base_failed = self._baseline(connection, now_minute)
        succeeded, failed = new.judged("new", self._source)
        forwarded = new.get("new", "proxy", "forwarded")
        judgement = judge(
            succeeded, failed, base_succeeded, base_failed, policy, forwarded=forwarded
        )
        if judgement.verdict != "failing" and self._silent(connection, since, now):
            judgement = replace(judgement, verdict="silent")
        return connection, judgement, flipped

    def _baseline(self, connection: str, now_minute: int) -> tuple[int, int]:
        cached = self._baselines.get(connection)
        if cached is not None and now_minute - cached[0] < BASELINE_REFRESH_MINUTES:
            return cached[1]
        start = now_minute - int(self._policy.baseline_days * 1440)
        tally = self._outcomes.tally(connection, start, now_minute + 1)
        counts = tally.judged("legacy", self._legacy_source)
        self._baselines[connection] = (now_minute, counts)
        return counts

    def _silent(self, connection: str, since_minute: int, now: float) -> bool:
        """N forwarded and no success reported in the silence window, the source alive."""
        if self._source != "events" or not self._silence_sources:
            return False
        policy = self._policy
        end = int((now - policy.silence_grace_minutes * 60) // 60)
        start = end - int(policy.silence_minutes)
        if start < since_minute:
            return False  # not on the new provider for the whole window
        window: Tally = self._outcomes.tally(connection, start, end)
        if window.get("new", "proxy", "forwarded") < policy.silence_min_forwarded:
            return False
        if self._outcomes.tally(connection, start, int(now // 60) + 1).get(
            "new", "events", "succeeded"
        ):
            return False
        alive = [self._outcomes.source_alive_at(source) for source in self._silence_sources]
        healthy = any(at is not None and at >= now - policy.silence_minutes * 60 for at in alive)
        return healthy

    def _may_act_on(self, judgement: Judgement) -> bool:
        """Whether the evidence is the provider's own, authenticated word.

        The proxy's counts (answers it proxied, callbacks it forwarded) come from whoever sends
        callbacks, and anyone can: forged callbacks that the new provider refuses would read
        as failures, forged forwarded ones as silence. The guard turns a connection off on
        them only when told to (`guard.act_on_proxy_counts`); it reports them either way.
        """
        if self._policy.act_on_proxy_counts:
            return True
        return judgement.verdict == "failing" and self._source == "events"

    def _conclude(self, connection: str, judgement: Judgement, *, acts: bool) -> bool:
        """Report, and when the guard acts write override ``off``; True if written."""
        mode = self._policy.mode
        metrics.GUARD_KILLS.labels(self._label(connection), mode).inc()
        fields = {"connection": connection, "mode": mode, **judgement.as_dict()}
        if not acts:
            if mode == "enforce":
                fields["not_acting"] = "unauthenticated_evidence"
            log.warning("guard would turn the connection off", extra={"fields": fields})
            return False
        for _ in range(3):
            try:
                state = self._rollout.read()
                if evaluate(state, connection).route != "new":
                    return False  # someone moved it already
                changed = RolloutState.model_validate(
                    {
                        **state.model_dump(),
                        "overrides": {**state.overrides, connection: "off"},
                    }
                )
                self._rollout.write(
                    state.version,
                    changed,
                    actor=ACTOR,
                    reason=f"rollout guard: {judgement.summary()}"[:500],
                    action="disable",
                )
            except VersionConflict:
                continue
            except RolloutStoreError as exc:
                log.error("guard could not turn %s off: %s", connection, exc)
                return False
            log.warning("guard turned the connection off", extra={"fields": fields})
            return True
        return False
