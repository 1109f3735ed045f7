"""Routing decisions: which provider a connection's callback goes to under a rollout state."""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from flags.bucketing import BUCKETS, bucket
from flags.state import RolloutState

FLAG_KEY: str = "authswitch.route"
"""The one OpenFeature string flag; targeting key = connection id, values are a ``Destination``."""

Destination = Literal["new", "legacy"]
"""Where a callback goes: the new provider or legacy. The one definition; the proxy uses it too."""


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """Where a connection goes and which rule decided it."""

    route: Destination
    reason: str  # "kill_all" | "override_off" | "override_on" | "canary" | "stage_in" | "stage_out"


_KILL_ALL = RouteDecision("legacy", "kill_all")
_OVERRIDE_OFF = RouteDecision("legacy", "override_off")
_OVERRIDE_ON = RouteDecision("new", "override_on")
_CANARY = RouteDecision("new", "canary")
_STAGE_IN = RouteDecision("new", "stage_in")
_STAGE_OUT = RouteDecision("legacy", "stage_out")


def _decide(
    *,
    kill_all: bool,
    overrides: Mapping[str, str],
    canary: Container[str],
    stage_basis_points: int,
    salt: str,
    connection_id: str,
) -> RouteDecision:
    # The single statement of precedence, shared by `evaluate` and the providers' hot path.
    if kill_all:
        return _KILL_ALL
    override = overrides.get(connection_id)
    if override == "off":
        return _OVERRIDE_OFF
    if override == "on":
        return _OVERRIDE_ON
    if connection_id in canary:
        return _CANARY
    if stage_basis_points <= 0:
        return _STAGE_OUT
    if stage_basis_points >= BUCKETS or bucket(salt, connection_id) < stage_basis_points:
        return _STAGE_IN
    return _STAGE_OUT


def evaluate(state: RolloutState, connection_id: str) -> RouteDecision:
    """Decide the route: kill_all > override off > override on > canary > percentage stage."""
    return _decide(
        kill_all=state.kill_all,
        overrides=state.overrides,
        canary=state.canary,
        stage_basis_points=state.stage_basis_points,
        salt=state.salt,
        connection_id=connection_id,
    )


@dataclass(frozen=True, slots=True)
class CompiledRollout:
    """A rollout state with its lookups pre-built; providers swap this as one reference.

    Deciding is pure in-memory work (a dict lookup, a frozenset lookup, one hash), so it is safe
    on the request path and readers never need a lock.
    """

    state: RolloutState
    canary: frozenset[str]
    overrides: Mapping[str, str]
    stage_basis_points: int
    flag_metadata: Mapping[str, bool | int | float | str]

    @classmethod
    def from_state(cls, state: RolloutState) -> CompiledRollout:
        return cls(
            state=state,
            canary=frozenset(state.canary),
            overrides=MappingProxyType(dict(state.overrides)),
            stage_basis_points=state.stage_basis_points,
            flag_metadata=MappingProxyType(
                {"version": state.version, "stage_percent": state.stage_percent}
            ),
        )

    def decide(self, connection_id: str) -> RouteDecision:
        """Same answer as ``evaluate(self.state, connection_id)``, without rebuilding lookups."""
        state = self.state
        return _decide(
            kill_all=state.kill_all,
            overrides=self.overrides,
            canary=self.canary,
            stage_basis_points=self.stage_basis_points,
            salt=state.salt,
            connection_id=connection_id,
        )
