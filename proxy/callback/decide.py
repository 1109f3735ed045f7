"""Deciding where a callback goes: the connection map's entry joined with the rollout flag."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagEvaluationDetails

from connection_map import ServedConnection
from connection_map.routes import Identification, Outcome
from flags import Destination, RouteFlagProvider
from proxy.callback.route_flag import RouteFlag
from proxy.config import BounceBack, OpenFeatureFlag

if TYPE_CHECKING:
    from proxy.callback.context import Callback
    from proxy.flow_store import FlowRecord


# A variant from another flag system becomes a reason (logs, a metrics label) only if it looks
# like a code; anything else is reported as the value's generic reason.
_VARIANT = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


@dataclass(frozen=True, slots=True)
class Decision:
    destination: Destination
    reason: str
    connection: ServedConnection | None


def decide(callback: Callback, decider: RouteDecider, bounce: BounceBack) -> None:
    """Where the identified callback goes; the decision's reason is the callback's reason."""
    assert callback.fields is not None and callback.identification is not None
    decision = callback.decision = decider.decide(
        callback.identification,
        callback.match.route.protocol,
        bounced_back=callback.fields.query.get(bounce.param) == bounce.value,
        unsolicited=callback.unsolicited,
        flow=callback.flow,
    )
    callback.reason = decision.reason
    callback.destination = decision.destination  # the forward step may still change it
    callback.decided = time.perf_counter()


class RouteDecider:
    """Turns an identified callback into a destination; in-memory only, no I/O."""

    def __init__(
        self,
        flags: OpenFeatureClient,
        flag: OpenFeatureFlag | None = None,
        *,
        builtin: RouteFlagProvider | None = None,
    ) -> None:
        self._flags = flags
        # `authswitch.route`; asked of `builtin` directly when the SDK would add nothing.
        self._route = RouteFlag(flags, builtin)
        # One context per connection, reused: building it is a third of an evaluation's cost.
        # Bounded by the connection map (ids come from the map, never from the request).
        self._contexts: dict[str, EvaluationContext] = {}
        # flags.backend openfeature: the configured flag; None: the built-in `authswitch.route`.
        self._flag = flag
        self._keys: dict[str, str] = {}  # connection id -> flag key, bounded like _contexts

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
        if self._flag is not None:
            return self._configured_flag(connection, context, self._flag)
        answer = self._route.evaluate(context)
        if answer.error_code is not None:
            return Decision("legacy", f"flag_error_{answer.error_code.value.lower()}", connection)
        reason = answer.variant or "flag"
        if answer.value == "new":
            return Decision("new", reason, connection)
        return Decision("legacy", reason, connection)

    def _configured_flag(
        self, connection: ServedConnection, context: EvaluationContext, flag: OpenFeatureFlag
    ) -> Decision:
        """The configured flag: a string ("new"/"legacy") or a boolean (true = new)."""
        key = self._keys.get(connection.id)
        if key is None:
            key = self._keys[connection.id] = flag.key_for(connection.id)
        details: FlagEvaluationDetails[str] | FlagEvaluationDetails[bool]
        if flag.type == "boolean":
            details = self._flags.get_boolean_details(key, False, context)
        else:
            details = self._flags.get_string_details(key, "legacy", context)
        if details.error_code is not None:
            return Decision("legacy", f"flag_error_{details.error_code.value.lower()}", connection)
        value = details.value
        if value is True or value == "new":
            destination: Destination = "new"
        elif value is False or value == "legacy":
            destination = "legacy"
        else:  # never echoed: it may be anything the other flag system holds
            return Decision("legacy", "flag_bad_value", connection)
        variant = details.variant
        if variant is not None and _VARIANT.fullmatch(variant):
            reason = variant
        elif type(value) is bool:
            reason = "flag_on" if value else "flag_off"
        else:
            reason = "flag"
        return Decision(destination, reason, connection)
