"""Identify: which connection a callback belongs to, by the strategies its route lists.

The rules themselves live in :mod:`connection_map.routes`, shared with triage, so that what
triage says about a connection and what the proxy does with its callbacks never disagree. This
step gathers what the callback claims (path, query, Issuer, RelayState, recorded flow) and asks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from connection_map import ConnectionMap
from connection_map.routes import identify_connection

if TYPE_CHECKING:
    from proxy.callback.context import Callback
    from proxy.flow_store import FlowStore


async def recall_flow(callback: Callback, flows: FlowStore) -> None:
    """The recorded start of the callback's flow, if any: SAML names it by InResponseTo, OIDC
    by state. Only with flow affinity on (it is what `oidc_state` and affinity go by)."""
    fields = callback.fields
    assert fields is not None  # intake ran
    protocol = callback.match.route.protocol
    flow_id = callback.in_response_to if protocol == "saml" else fields.get("state")
    if flow_id:
        callback.flow = await flows.lookup(flow_id)


def identify(callback: Callback, connections: ConnectionMap) -> None:
    """Which connection the callback belongs to, or why none (in `callback.identification`)."""
    fields = callback.fields
    assert fields is not None  # intake ran
    flow = callback.flow
    callback.identification = identify_connection(
        callback.match.route,
        callback.match.params,
        fields.query,
        callback.scope["path"],
        connections,
        issuer=callback.issuer,
        relay_state=fields.get("RelayState"),
        flow_connection=flow.connection_id if flow is not None else None,
    )
