"""Operator actions: each is previewed (exactly which connections change route, with a token
bound to the state version), then applied only with that token, a reason and the person as
actor; the shadow readiness gate applies as in the CLI."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from redis.exceptions import RedisError

from flags import AuditRecord, RolloutState, RolloutStore
from flags.rollout_change import (
    ChangePlan,
    Mutation,
    plan_change,
    same_state,
    set_canary,
    set_kill_all,
    set_override,
    set_stage,
    stale_preview,
)
from proxy.console.map_reader import MapView
from proxy.shadow.gate import forced_past_gate, gate_refusals
from proxy.shadow.readiness_store import ReadinessStore
from proxy.shadow.settings import ShadowSettings

# action -> (what it does, in words; needs a connection; may move a connection to new)
ACTIONS: dict[str, tuple[str, bool, bool]] = {
    "disable": ("Kill switch: send {c} to legacy whatever else says", True, False),
    "enable": ("Enable: send {c} to the new provider whatever the stage", True, True),
    "clear": ("Clear the override of {c}: it follows the canary list and stage again", True, True),
    "canary_add": ("Add {c} to the canary list", True, True),
    "canary_remove": ("Remove {c} from the canary list", True, False),
    "kill_all": ("Global kill switch: every connection goes to legacy", False, False),
    "unkill_all": ("Lift the global kill switch", False, True),
    "stage": ("Set the stage to {p}%", False, True),
}


class ActionRefused(Exception):
    """The action can't be previewed or applied; the message says why (safe to show)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True, slots=True)
class ActionRequest:
    action: str
    connection: str = ""
    percent: str = ""

    def describe(self) -> str:
        return ACTIONS[self.action][0].format(c=self.connection, p=self.percent)


@dataclass(frozen=True, slots=True)
class Preview:
    request: ActionRequest
    plan: ChangePlan
    state: RolloutState
    not_ready: dict[str, str]
    unchanged: bool


def parse_action(params: Mapping[str, str]) -> ActionRequest:
    action = params.get("action", "")
    if action not in ACTIONS:
        raise ActionRefused(400, f"unknown action {action[:40]!r}")
    _, needs_connection, _ = ACTIONS[action]
    connection = params.get("connection", "").strip() if needs_connection else ""
    percent = params.get("percent", "").strip().removesuffix("%") if action == "stage" else ""
    if needs_connection and not connection:
        raise ActionRefused(400, "this action needs a connection")
    if action == "stage":
        try:
            float(percent)
        except ValueError:
            raise ActionRefused(400, "the stage must be a number from 0 to 100") from None
    return ActionRequest(action, connection, percent)


def mutation_of(request: ActionRequest) -> Mutation:
    action, connection = request.action, request.connection
    if action in ("disable", "enable", "clear"):
        return set_override(connection, {"disable": "off", "enable": "on"}.get(action))
    if action in ("canary_add", "canary_remove"):
        return set_canary(connection, action == "canary_add")
    if action in ("kill_all", "unkill_all"):
        return set_kill_all(action == "kill_all")
    return set_stage(float(request.percent))


class ActionDesk:
    """Previews and applies actions against the rollout store the proxy follows."""

    def __init__(
        self,
        store: RolloutStore,
        shadow: ShadowSettings,
        readiness: ReadinessStore | None,
    ) -> None:
        self._store, self._shadow, self._readiness = store, shadow, readiness

    def preview(self, request: ActionRequest, view: MapView) -> Preview:
        self._check_connection(request, view)
        state = self._store.read()
        try:
            plan = plan_change(state, mutation_of(request), _movable(view))
        except ValueError as exc:  # pydantic: a stage outside 0-100 or finer than 0.01
            raise ActionRefused(400, f"not a valid change: {_first_error(exc)}") from None
        not_ready = self._not_ready(plan.to_new, view)
        return Preview(request, plan, state, not_ready, same_state(plan.new_state, state))

    def apply(
        self,
        request: ActionRequest,
        view: MapView,
        *,
        token: str,
        actor: str,
        reason: str,
        force: bool,
    ) -> tuple[Preview, AuditRecord | None]:
        """Write exactly the previewed change; ``ActionRefused(409)`` if the preview is stale."""
        preview = self.preview(request, view)
        why = stale_preview(token, planned=preview.plan.token, version=preview.plan.version)
        if why is not None:
            raise ActionRefused(409, f"{why}; nothing was written: preview again")
        if preview.not_ready:
            if not force:
                listed = "; ".join(f"{c}: {w}" for c, w in preview.not_ready.items())
                raise ActionRefused(
                    409, f"not ready to move (shadow readiness) - {listed}; nothing was written"
                )
            reason = forced_past_gate(reason, preview.not_ready)
        if preview.unchanged:
            return preview, None
        record = self._store.write(
            preview.plan.version,
            preview.plan.new_state,
            actor=actor,
            reason=reason,
            action=request.action,
        )
        return preview, record

    def _check_connection(self, request: ActionRequest, view: MapView) -> None:
        if not request.connection:
            return
        entry = view.index.get(request.connection)
        if entry is None:
            raise ActionRefused(
                404, f"connection {request.connection!r} is not in the connection map"
            )
        moving = request.action in ("enable", "canary_add")
        if moving and not entry.migratable:
            raise ActionRefused(
                409,
                f"connection {request.connection!r} stays on legacy whatever the flags say "
                f"(assessment {entry.assessment.value}"
                + ("" if entry.new_provider else ", not imported")
                + ")",
            )

    def _not_ready(self, ids: tuple[str, ...], view: MapView) -> dict[str, str]:
        if not self._shadow.gate or not ids or self._readiness is None:
            return {}
        connections = {c.id: c for c in view.document.connections}
        entries = [connections[i] for i in ids if i in connections]
        try:
            return gate_refusals(entries, self._shadow, self._readiness)
        except RedisError as exc:
            raise ActionRefused(
                503, f"shadow readiness counts unavailable: {type(exc).__name__}"
            ) from None


def _movable(view: MapView) -> dict[str, bool]:
    return {c.id: c.migratable for c in view.index}


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        found = errors()
        if found:
            return str(found[0].get("msg", exc))
    return str(exc)
