"""Attributing a callback to a connection, by the strategies its route lists.

Every listed strategy that finds something votes; the votes must agree. A strategy that
finds nothing (no query parameter, no SAMLResponse) abstains. Disagreement, an unknown id
or an IdP entity id shared by several connections sends the callback to legacy: routing a
callback to the wrong provider breaks a login, falling through to legacy never does.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from connection_map import ConnectionMap, ServedConnection
from proxy.callback.intake import CallbackFields
from proxy.config import Route, Strategy
from proxy.flow_store import FlowRecord, FlowStore

if TYPE_CHECKING:
    from proxy.callback.context import Callback


class Outcome(StrEnum):
    IDENTIFIED = "identified"
    UNIDENTIFIED = "unidentified"  # no strategy found anything
    UNKNOWN = "unknown_connection"  # a strategy found an id or issuer the map doesn't have
    AMBIGUOUS = "ambiguous"  # strategies disagree, or an issuer is shared by connections


@dataclass(frozen=True, slots=True)
class Identification:
    outcome: Outcome
    connection: ServedConnection | None = None
    strategy: Strategy | None = None


_UNIDENTIFIED = Identification(Outcome.UNIDENTIFIED)
_UNKNOWN = Identification(Outcome.UNKNOWN)
_AMBIGUOUS = Identification(Outcome.AMBIGUOUS)


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
    callback.identification = identify_connection(
        callback.match.route,
        callback.match.params,
        fields,
        callback.issuer,
        callback.scope["path"],
        connections,
        flow=callback.flow,
    )


def identify_connection(
    route: Route,
    params: dict[str, str],
    fields: CallbackFields,
    issuer: str | None,
    path: str,
    connections: ConnectionMap,
    *,
    flow: FlowRecord | None = None,
) -> Identification:
    """Which connection this callback belongs to, or why none.

    `flow` is the record of the callback's flow (its OIDC `state`), for the `oidc_state` strategy.
    """
    chosen: Identification | None = None
    shared_issuer: tuple[str, ...] = ()
    for strategy in route.identify:
        vote = _vote(strategy, route, params, fields, issuer, path, connections, flow)
        if vote is None:
            continue
        if isinstance(vote, tuple):
            shared_issuer = vote
            continue
        if vote.outcome is not Outcome.IDENTIFIED:
            return vote
        if chosen is None:
            chosen = vote
        elif chosen.connection is not vote.connection:
            return _AMBIGUOUS
    if chosen is None:
        return _AMBIGUOUS if shared_issuer else _UNIDENTIFIED
    connection = chosen.connection
    if shared_issuer and connection is not None and connection.id not in shared_issuer:
        return _AMBIGUOUS
    return chosen


def _vote(
    strategy: Strategy,
    route: Route,
    params: dict[str, str],
    fields: CallbackFields,
    issuer: str | None,
    path: str,
    connections: ConnectionMap,
    flow: FlowRecord | None,
) -> Identification | tuple[str, ...] | None:
    if strategy is Strategy.PATH:
        return _by_id(params.get("connection"), strategy, connections)
    if strategy is Strategy.QUERY:
        return _by_id(fields.query.get(route.query_param), strategy, connections)
    if strategy is Strategy.SAML_ISSUER:
        if issuer is None:
            return None
        match = connections.by_issuer(issuer)
        if match is None:
            return _UNKNOWN
        if match.connection is None:
            return match.ambiguous
        return Identification(Outcome.IDENTIFIED, match.connection, strategy)
    if strategy is Strategy.RELAY_STATE_PREFIX:
        # A RelayState without a known prefix claims nothing: it is often just a return URL.
        relay_state = fields.get("RelayState")
        found = connections.by_relay_state(relay_state) if relay_state is not None else None
        return Identification(Outcome.IDENTIFIED, found, strategy) if found else None
    if strategy is Strategy.OIDC_STATE:
        return _by_id(flow.connection_id if flow else None, strategy, connections)
    connection = connections.by_callback_path(path)
    if connection is None:
        return None
    return Identification(Outcome.IDENTIFIED, connection, strategy)


def _by_id(
    connection_id: str | None, strategy: Strategy, connections: ConnectionMap
) -> Identification | None:
    if connection_id is None:
        return None
    connection = connections.get(connection_id)
    if connection is None:
        return _UNKNOWN
    return Identification(Outcome.IDENTIFIED, connection, strategy)
