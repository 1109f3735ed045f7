"""Changes to the rollout state, and their previews: what the CLI and the console both apply.

Each change is a delta (a function from the stored state to the new one), so a writer that lost
a compare-and-set can re-apply it on top of the winner. A preview of any change lists exactly
the connections whose route it moves, with a token bound to the state version and those lists:
applying with a token from an older state, or after the map changed who moves, is refused.
Stage changes keep the token of ``stage_plan`` so the CLI's and the console's agree.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flags.evaluation import CompiledRollout
from flags.stage_plan import plan_stage, token_version
from flags.state import RolloutState

Mutation = Callable[[RolloutState], RolloutState]


def updated(state: RolloutState, **changes: Any) -> RolloutState:
    """The state with these fields replaced (validated again)."""
    return RolloutState.model_validate({**state.model_dump(), **changes})


def set_override(connection: str, value: str | None) -> Mutation:
    """``on`` / ``off`` (kill switch) for one connection; ``None`` clears it."""

    def mutate(state: RolloutState) -> RolloutState:
        overrides: dict[str, str] = dict(state.overrides)
        if value is None:
            overrides.pop(connection, None)
        else:
            overrides[connection] = value
        return updated(state, overrides=overrides)

    return mutate


def set_canary(connection: str, member: bool) -> Mutation:
    def mutate(state: RolloutState) -> RolloutState:
        canary = [c for c in state.canary if c != connection]
        if member:
            canary = [*state.canary] if connection in state.canary else [*canary, connection]
        return updated(state, canary=canary)

    return mutate


def set_kill_all(value: bool) -> Mutation:
    return lambda state: updated(state, kill_all=value)


def set_stage(percent: float) -> Mutation:
    return lambda state: updated(state, stage_percent=percent)


def same_state(a: RolloutState, b: RolloutState) -> bool:
    """Whether two states say the same apart from their version."""
    return a.model_dump(exclude={"version"}) == b.model_dump(exclude={"version"})


@dataclass(frozen=True, slots=True)
class ChangePlan:
    """What a change would do to connections' routes, and the token that applies exactly it."""

    version: int
    to_new: tuple[str, ...]
    to_legacy: tuple[str, ...]
    held: tuple[str, ...]
    """Connections the flag would move to new, kept on legacy by their assessment."""
    token: str
    new_state: RolloutState


def plan_change(
    state: RolloutState, mutate: Mutation, connections: Mapping[str, bool]
) -> ChangePlan:
    """Preview ``mutate``; ``connections`` maps each connection id to whether it may move."""
    new_state = mutate(state)
    if new_state.stage_percent != state.stage_percent and same_state(
        updated(state, stage_percent=new_state.stage_percent), new_state
    ):
        stage = plan_stage(state, new_state.stage_percent, connections)
        return ChangePlan(
            stage.version, stage.to_new, stage.to_legacy, stage.held, stage.token, stage.new_state
        )
    before, after = CompiledRollout.from_state(state), CompiledRollout.from_state(new_state)
    to_new: list[str] = []
    to_legacy: list[str] = []
    held: list[str] = []
    for connection_id in sorted(set(connections) | set(state.overrides) | set(state.canary)):
        old, new = before.decide(connection_id).route, after.decide(connection_id).route
        if old == new:
            continue
        if not connections.get(connection_id, False):
            if new == "new":
                held.append(connection_id)
            continue
        (to_new if new == "new" else to_legacy).append(connection_id)
    canonical = json.dumps(
        [state.version, new_state.model_dump(mode="json", exclude={"version"}), to_new, to_legacy],
        sort_keys=True,
    )
    token = f"{state.version}-{hashlib.sha256(canonical.encode()).hexdigest()[:16]}"
    return ChangePlan(state.version, tuple(to_new), tuple(to_legacy), tuple(held), token, new_state)


def stale_preview(token: str, *, planned: str, version: int) -> str | None:
    """Why ``token`` does not apply the plan now ``planned`` at ``version``, or None if it does."""
    previewed = token_version(token)
    if previewed is None:
        return f"{token!r} is not a preview token"
    if token == planned:
        return None
    if previewed != version:
        return f"the state changed since the preview (version {previewed} -> {version})"
    return (
        "the plan differs from the previewed one (another change, or the connection map "
        "changed who would move)"
    )
