"""Deciding where a callback goes: the connection map's entry joined with the rollout flag."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext

from connection_map import Connection
from flags import FLAG_KEY
from proxy.flow_store import FlowRecord
from proxy.identify import Identification, Outcome

Destination = Literal["new", "legacy"]


@dataclass(frozen=True, slots=True)
class Decision:
    destination: Destination
    reason: str
    connection: Connection | None


class RouteDecider:
    """Turns an identified callback into a destination; in-memory only, no I/O."""

    def __init__(self, flags: OpenFeatureClient) -> None:
        self._flags = flags
        # One context per connection, reused: building it is a third of an evaluation's cost.
        # Bounded by the connection map (ids come from the map, never from the request).
        self._contexts: dict[str, EvaluationContext] = {}

    def decide(
        self,
        identification: Identification,
        protocol: str,
        *,
        bounced_back: bool,
        unsolicited: bool,
        flow: FlowRecord | None = None,
    ) -> Decision:
        """Where the callback goes. A recorded `flow` of this connection wins over the flag."""
        connection = identification.connection
        if connection is None or identification.outcome is not Outcome.IDENTIFIED:
            return Decision("legacy", identification.outcome.value, None)
        if bounced_back:
            return Decision("legacy", "bounced_back", connection)
        if connection.protocol.value != protocol:
            return Decision("legacy", "protocol_mismatch", connection)
        if connection.new_provider is None:
            return Decision("legacy", "not_imported", connection)
        if not connection.migratable:
            return Decision("legacy", f"assessment_{connection.assessment.value}", connection)
        if flow is not None and flow.connection_id == connection.id:
            # The login can only finish where it started: the provider that issued the
            # AuthnRequest or state. This wins over the flag, kill switches included (they stop
            # new flows at the decision endpoint); the map's rules above still win over it.
            return Decision(flow.destination, "flow_affinity", connection)
        if unsolicited and not connection.idp_initiated:
            return Decision("legacy", "idp_initiated_not_allowed", connection)
        context = self._contexts.get(connection.id)
        if context is None:
            context = self._contexts[connection.id] = EvaluationContext(targeting_key=connection.id)
        details = self._flags.get_string_details(FLAG_KEY, "legacy", context)
        if details.error_code is not None:
            return Decision("legacy", f"flag_error_{details.error_code.value.lower()}", connection)
        reason = details.variant or "flag"
        if details.value == "new":
            return Decision("new", reason, connection)
        return Decision("legacy", reason, connection)
