"""Callback routes and identification: the one model the proxy routes by and triage checks.

A *route* is a legacy callback URL authswitch intercepts (a path, its protocol, and the
strategies that tell which connection a callback on it belongs to). The proxy's route table,
its identification of each callback, and triage's verdict on whether a connection can move all
use this module, so they can never disagree about what happens to a callback.

Identification: every listed strategy that finds something votes; the votes must agree. A
strategy that finds nothing (no query parameter, no SAMLResponse) abstains. Disagreement, an
unknown id or an IdP entity id shared by several connections sends the callback to legacy:
routing a callback to the wrong provider breaks a login, falling through to legacy never does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from connection_map.index import ConnectionMap
from connection_map.served import ServedConnection

PATH_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(:path)?\}")
# Which methods a route must accept for an IdP's callback to reach it.
_NEEDED_METHOD = {"saml": ("POST",), "oidc": ("GET", "POST")}


class Strategy(StrEnum):
    """A way to tell which connection a callback belongs to."""

    PATH = "path"  # the {connection} segment of the route path
    QUERY = "query"  # a query parameter (route.query_param)
    SAML_ISSUER = "saml_issuer"  # the Issuer of the SAMLResponse
    CALLBACK_PATH = "callback_path"  # the request path is a connection's own OIDC callback path
    RELAY_STATE_PREFIX = "relay_state_prefix"  # RelayState starts with a connection's prefix
    OIDC_STATE = "oidc_state"  # the flow record of the OIDC `state` names the connection


class Route(BaseModel):
    """A legacy callback URL authswitch intercepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Annotated[str, Field(pattern=r"^/", max_length=1024)]
    protocol: Literal["saml", "oidc"]
    identify: Annotated[tuple[Strategy, ...], Field(min_length=1)]
    query_param: Annotated[str, Field(min_length=1, max_length=128)] = "connection"
    methods: tuple[Literal["GET", "POST"], ...] = ("GET", "POST")

    @model_validator(mode="after")
    def _check_strategies(self) -> Route:
        params = [name for name, _ in PATH_PARAM.findall(self.path)]
        repeated = sorted({p for p in params if params.count(p) > 1})
        if repeated:  # the route table compiles each to a named group: names must be unique
            raise ValueError(f"'{{{repeated[0]}}}' appears more than once in the path")
        if Strategy.PATH in self.identify and "connection" not in params:
            raise ValueError("strategy 'path' needs a '{connection}' segment in the path")
        if Strategy.SAML_ISSUER in self.identify and self.protocol != "saml":
            raise ValueError("strategy 'saml_issuer' only applies to saml routes")
        if Strategy.RELAY_STATE_PREFIX in self.identify and self.protocol != "saml":
            raise ValueError("strategy 'relay_state_prefix' only applies to saml routes")
        if Strategy.OIDC_STATE in self.identify and self.protocol != "oidc":
            raise ValueError("strategy 'oidc_state' only applies to oidc routes")
        if len(set(self.identify)) != len(self.identify):
            raise ValueError("a strategy is listed twice in 'identify'")
        return self

    def receives(self, protocol: str) -> bool:
        """Whether an IdP's `protocol` callback can reach this route (protocol and methods)."""
        return self.protocol == protocol and any(
            method in self.methods for method in _NEEDED_METHOD.get(protocol, ())
        )


class RouteTable:
    """Routes compiled once: exact paths by dict first, then templates in configured order
    (`{name}` is one path segment, `{name:path}` the rest)."""

    def __init__(self, routes: tuple[Route, ...] | list[Route]) -> None:
        self.routes = tuple(routes)
        self._exact: dict[str, Route] = {}
        self._templates: list[tuple[re.Pattern[str], Route]] = []
        for route in self.routes:
            if PATH_PARAM.search(route.path):
                self._templates.append((compile_path_template(route.path), route))
            else:
                self._exact.setdefault(route.path, route)

    def match(self, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route serving `path`, with the template's parameters, if any route does."""
        route = self._exact.get(path)
        if route is not None:
            return route, {}
        for pattern, candidate in self._templates:
            found = pattern.fullmatch(path)
            if found is not None:
                return candidate, found.groupdict()
        return None


@lru_cache(maxsize=256)
def compile_path_template(template: str) -> re.Pattern[str]:
    """`/sso/{connection}/acs` → a regex: `{name}` is one path segment, `{name:path}` the rest."""
    parts: list[str] = []
    position = 0
    for param in PATH_PARAM.finditer(template):
        parts.append(re.escape(template[position : param.start()]))
        body = ".+" if param.group(2) else "[^/]+"
        parts.append(f"(?P<{param.group(1)}>{body})")
        position = param.end()
    parts.append(re.escape(template[position:]))
    return re.compile("".join(parts))


# -- identification --------------------------------------------------------------------------


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
    # With AMBIGUOUS because an Issuer is shared: the connections that share it.
    shared_issuer: tuple[str, ...] = ()


_UNIDENTIFIED = Identification(Outcome.UNIDENTIFIED)
_UNKNOWN = Identification(Outcome.UNKNOWN)
_AMBIGUOUS = Identification(Outcome.AMBIGUOUS)


def identify_connection(
    route: Route,
    params: Mapping[str, str],
    query: Mapping[str, str],
    path: str,
    connections: ConnectionMap,
    *,
    issuer: str | None = None,
    relay_state: str | None = None,
    flow_connection: str | None = None,
) -> Identification:
    """Which connection a callback on `route` belongs to, or why none.

    `issuer` is the SAMLResponse's Issuer, `relay_state` its RelayState, `flow_connection` the
    connection named by the callback's recorded flow (its OIDC `state`), each None when absent.
    """
    chosen: Identification | None = None
    shared_issuer: tuple[str, ...] = ()
    for strategy in route.identify:
        if strategy is Strategy.PATH:
            vote = _by_id(params.get("connection"), strategy, connections)
        elif strategy is Strategy.QUERY:
            vote = _by_id(query.get(route.query_param), strategy, connections)
        elif strategy is Strategy.SAML_ISSUER:
            if issuer is None:
                continue
            match = connections.by_issuer(issuer)
            if match is None:
                return _UNKNOWN
            if match.connection is None:
                shared_issuer = match.ambiguous
                continue
            vote = Identification(Outcome.IDENTIFIED, match.connection, strategy)
        elif strategy is Strategy.RELAY_STATE_PREFIX:
            # A RelayState without a known prefix claims nothing: it is often just a return URL.
            found = connections.by_relay_state(relay_state) if relay_state is not None else None
            vote = Identification(Outcome.IDENTIFIED, found, strategy) if found else None
        elif strategy is Strategy.OIDC_STATE:
            vote = _by_id(flow_connection, strategy, connections)
        else:
            own = connections.by_callback_path(path)
            vote = Identification(Outcome.IDENTIFIED, own, strategy) if own else None
        if vote is None:
            continue
        if vote.outcome is not Outcome.IDENTIFIED:
            return vote
        if chosen is None:
            chosen = vote
        elif chosen.connection is not vote.connection:
            return _AMBIGUOUS
    if chosen is None:
        return (
            Identification(Outcome.AMBIGUOUS, shared_issuer=shared_issuer)
            if shared_issuer
            else _UNIDENTIFIED
        )
    connection = chosen.connection
    if shared_issuer and connection is not None and connection.id not in shared_issuer:
        return _AMBIGUOUS
    return chosen


def _by_id(
    connection_id: str | None, strategy: Strategy, connections: ConnectionMap
) -> Identification | None:
    if connection_id is None:
        return None
    connection = connections.get(connection_id)
    if connection is None:
        return _UNKNOWN
    return Identification(Outcome.IDENTIFIED, connection, strategy)
