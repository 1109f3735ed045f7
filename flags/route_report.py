"""Where each connection's callbacks go under a rollout state, and why: what ``flags status`` shows.

The connection facts come from the caller (the connection map): this package never reads it.
The effective route joins them with the flag exactly as the proxy does: a connection that is
not imported, or whose assessment is not ``transparent``, stays on legacy whatever the flag says.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from flags.bucketing import bucket
from flags.evaluation import CompiledRollout, Destination
from flags.state import RolloutState

TRANSPARENT = "transparent"


@dataclass(frozen=True, slots=True)
class ConnectionFacts:
    """What the connection map says about a connection, as far as routing is concerned."""

    id: str
    protocol: str
    assessment: str
    imported: bool
    """It has a ``new_provider`` entry."""

    @property
    def migratable(self) -> bool:
        return self.imported and self.assessment == TRANSPARENT

    @property
    def held_by(self) -> str | None:
        """Why it can't move (``not_imported``, ``assessment_<value>``), or ``None``."""
        if not self.imported:
            return "not_imported"
        if self.assessment != TRANSPARENT:
            return f"assessment_{self.assessment}"
        return None


@dataclass(frozen=True, slots=True)
class ConnectionRoute:
    """One row of ``flags status``."""

    id: str
    protocol: str
    assessment: str
    bucket: int
    enters_at_percent: float
    """The lowest stage at which the percentage alone sends it to the new provider."""
    flag_route: Destination
    flag_reason: str
    route: Destination
    """Where its callbacks go: the flag's answer unless the connection can't move."""
    reason: str


def route_report(
    state: RolloutState, connections: Iterable[ConnectionFacts]
) -> list[ConnectionRoute]:
    """One row per connection, in id order."""
    rollout = CompiledRollout.from_state(state)
    rows = []
    for facts in sorted(connections, key=lambda c: c.id):
        decision = rollout.decide(facts.id)
        its_bucket = bucket(state.salt, facts.id)
        held = facts.held_by
        rows.append(
            ConnectionRoute(
                id=facts.id,
                protocol=facts.protocol,
                assessment=facts.assessment,
                bucket=its_bucket,
                enters_at_percent=(its_bucket + 1) / 100,
                flag_route=decision.route,
                flag_reason=decision.reason,
                route="legacy" if held else decision.route,
                reason=held or decision.reason,
            )
        )
    return rows


def ids_not_in(state: RolloutState, known: Iterable[str]) -> list[str]:
    """Connection ids the state names (canary, overrides) that the map does not have."""
    named = set(state.canary) | set(state.overrides)
    return sorted(named - set(known))
