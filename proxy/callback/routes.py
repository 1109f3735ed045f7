"""Matching request paths against the configured callback routes (connection_map's table)."""

from __future__ import annotations

from dataclasses import dataclass

from connection_map.routes import Route, RouteTable, Strategy
from proxy.callback.intake import SINGLE_VALUED


@dataclass(frozen=True, slots=True)
class RouteMatch:
    route: Route
    params: dict[str, str]
    single_valued: frozenset[str]


def single_valued_fields(route: Route) -> frozenset[str]:
    """Fields that may appear once: the artifacts, and the route's connection parameter."""
    if Strategy.QUERY in route.identify:
        return SINGLE_VALUED | {route.query_param}
    return SINGLE_VALUED


class CallbackRoutes:
    """The configured routes, each with the fields its callbacks may carry once only."""

    def __init__(self, routes: tuple[Route, ...]) -> None:
        self._table = RouteTable(routes)
        self._single_valued = {route.path: single_valued_fields(route) for route in routes}

    def match(self, path: str) -> RouteMatch | None:
        found = self._table.match(path)
        if found is None:
            return None
        route, params = found
        return RouteMatch(route, params, self._single_valued[route.path])
