"""Stage changes, previewed: exactly which connections would change route, and a token for it.

The token is a hash of (state version, target stage, connections moving to new, connections
moving back to legacy). ``--apply TOKEN`` recomputes the plan from what is stored *now* and
refuses unless the token matches, so an apply does exactly what its preview showed: any write
in between bumps the version, and a connection map change that alters who moves alters the
lists. It needs no secret (no HMAC): it protects against acting on an outdated plan, not
against forgery - whoever can apply can also preview, and the token only ever authorises the
very change it describes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from flags.evaluation import CompiledRollout
from flags.state import RolloutState


@dataclass(frozen=True, slots=True)
class StagePlan:
    """What setting the stage to ``target_percent`` would do to connections' routes."""

    version: int
    current_percent: float
    target_percent: float
    to_new: tuple[str, ...]
    """Connections that would go to the new provider and go to legacy now."""
    to_legacy: tuple[str, ...]
    """Connections that would go back to legacy (the stage lowered)."""
    held: tuple[str, ...]
    """Connections the flag would move to new, kept on legacy by their assessment."""
    token: str
    new_state: RolloutState


def plan_stage(
    state: RolloutState, target_percent: float, connections: Mapping[str, bool]
) -> StagePlan:
    """Plan a stage change; ``connections`` maps each connection id to whether it may move.

    ``ValueError`` (pydantic's) if the target is not a valid stage (0-100, steps of 0.01).
    """
    new_state = RolloutState.model_validate({**state.model_dump(), "stage_percent": target_percent})
    before, after = CompiledRollout.from_state(state), CompiledRollout.from_state(new_state)
    to_new: list[str] = []
    to_legacy: list[str] = []
    held: list[str] = []
    for connection_id in sorted(connections):
        old, new = before.decide(connection_id).route, after.decide(connection_id).route
        if old == new:
            continue
        if not connections[connection_id]:
            if new == "new":
                held.append(connection_id)
            continue
        (to_new if new == "new" else to_legacy).append(connection_id)
    token = preview_token(state.version, new_state.stage_basis_points, to_new, to_legacy)
    return StagePlan(
        version=state.version,
        current_percent=state.stage_percent,
        target_percent=new_state.stage_percent,
        to_new=tuple(to_new),
        to_legacy=tuple(to_legacy),
        held=tuple(held),
        token=token,
        new_state=new_state,
    )


def preview_token(
    version: int, stage_basis_points: int, to_new: list[str], to_legacy: list[str]
) -> str:
    """``<version>-<16 hex>``: the version prefix lets an error say which preview it was."""
    canonical = json.dumps([version, stage_basis_points, sorted(to_new), sorted(to_legacy)])
    return f"{version}-{hashlib.sha256(canonical.encode()).hexdigest()[:16]}"


def token_version(token: str) -> int | None:
    """The state version a token was made for, or ``None`` if it isn't a token."""
    version, _, digest = token.partition("-")
    if not version.isdigit() or len(digest) != 16:
        return None
    return int(version)
