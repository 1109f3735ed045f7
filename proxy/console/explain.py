""" "Explain": what happens to a callback for this connection now, and why, step by step.

The callback is the one the connection's IdP sends (to the legacy URL, with its Issuer,
RelayState prefix or OIDC flow), identified by ``identify_connection`` on the proxy's own route
table, then decided by the flag joined with the map as ``route_report`` does: the same code
the proxy and triage run, so the three can't disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import parse_qs, unquote, urlsplit

from connection_map import Connection, Protocol, Route, RouteTable, identify_connection
from connection_map.routes import Outcome
from flags.route_report import ConnectionRoute
from proxy.console.map_reader import MapView


def explain_callback(
    connection: Connection, view: MapView, routes: Sequence[Route], decision: ConnectionRoute
) -> list[str]:
    """The steps a callback goes through, the last one saying where it lands."""
    url = connection.legacy.callback_url if connection.legacy is not None else None
    if url is None:
        return [
            "The map has no legacy callback URL for this connection (legacy.callback_url), "
            "so the console can't say which route its callbacks arrive on.",
            _decided(connection, decision),
        ]
    parts = urlsplit(str(url))
    path = unquote(parts.path) or "/"
    found = RouteTable(tuple(routes)).match(path)
    if found is None or not found[0].receives(connection.protocol.value):
        return [
            f"Its IdP sends callbacks to {url}.",
            f"No configured {connection.protocol.value} route serves {path}: "
            "they pass through to legacy untouched.",
        ]
    route, params = found
    query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    saml = connection.saml
    result = identify_connection(
        route,
        params,
        query,
        path,
        view.index,
        issuer=saml.idp_entity_id if saml is not None else None,
        relay_state=connection.relay_state_prefix,
        flow_connection=connection.id if connection.protocol is Protocol.OIDC else None,
    )
    steps = [
        f"Its IdP sends callbacks to {url}: route {route.path} "
        f"(identified by {', '.join(route.identify)})."
    ]
    if result.outcome is not Outcome.IDENTIFIED or result.connection is None:
        steps.append(f"Identification: {result.outcome.value}; the callback goes to legacy.")
        return steps
    if result.connection.id != connection.id:
        steps.append(
            f"Identification names {result.connection.id!r} instead (by "
            f"{result.strategy}); this connection's callbacks follow that connection's route."
        )
        return steps
    steps.append(f"Identified as {connection.id} by its {result.strategy} strategy.")
    steps.append(_decided(connection, decision))
    steps.append(
        "A login already in flight keeps the route recorded for its flow (flow affinity), "
        "when that is enabled."
    )
    return steps


def _decided(connection: Connection, decision: ConnectionRoute) -> str:
    flag = f"The flag says {decision.flag_route} ({decision.flag_reason}, bucket {decision.bucket})"
    if decision.route == "legacy" and decision.flag_route == "new":
        return f"{flag}, but the map keeps it on legacy ({decision.reason}): it goes to legacy."
    if decision.route == "new" and connection.new_provider is not None:
        target = connection.new_provider
        return f"{flag}: it goes to the new provider at {target.url} ({target.mode.value})."
    return f"{flag}: it goes to legacy."
