"""The one object a callback's steps pass along: what was received, found, decided and done."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from connection_map import ServedConnection
from connection_map.routes import Identification
from flags import Destination
from proxy.callback.decide import Decision
from proxy.callback.intake import CallbackFields
from proxy.callback.routes import RouteMatch
from proxy.http.asgi_types import Scope

if TYPE_CHECKING:
    from proxy.flow_store import FlowRecord


@dataclass(slots=True, eq=False)
class Callback:
    """One callback in flight; each step fills in its part. Slotted: one allocation per request."""

    scope: Scope
    match: RouteMatch
    request_id: str
    started: float
    trace_id: str | None = None  # the caller's W3C trace, or authswitch's span's with tracing
    span_id: str | None = None  # authswitch's span, with tracing on
    # intake
    body: bytes = b""
    fields: CallbackFields | None = None
    received: float = 0.0
    # SAML facts (routing issuer, InResponseTo; unsolicited when a response has none)
    issuer: str | None = None
    in_response_to: str | None = None
    unsolicited: bool = False
    # identify and decide
    flow: FlowRecord | None = None
    identification: Identification | None = None
    decision: Decision | None = None
    decided: float = 0.0
    # the result, for accounting
    status: int = 0
    outcome: str = ""
    # "none" until decided: a callback that ends before (client gone, cancelled) went nowhere.
    destination: Destination | Literal["rejected", "none"] = "none"
    reason: str = ""

    def goes_to_new_provider(self) -> bool:
        """Whether the decision sends this callback to the new provider."""
        decision = self.decision
        return (
            decision is not None
            and decision.destination == "new"
            and decision.connection is not None
        )

    @property
    def connection(self) -> ServedConnection | None:
        """The connection the decision names, if any."""
        return None if self.decision is None else self.decision.connection
