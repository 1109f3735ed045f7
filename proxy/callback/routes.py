"""Matching request paths against the configured callback routes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from connection_map.served_routes import PATH_PARAM, compile_path_template
from proxy.callback.intake import SINGLE_VALUED
from proxy.config import Route, Strategy


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


class RouteTable:
    """Callback routes compiled once: exact paths by dict, templates by regex."""

    def __init__(self, routes: tuple[Route, ...]) -> None:
        self._exact: dict[str, Route] = {}
        self._templates: list[tuple[re.Pattern[str], Route]] = []
        self._single_valued = {route.path: single_valued_fields(route) for route in routes}
        for route in routes:
            if PATH_PARAM.search(route.path):
                self._templates.append((compile_path_template(route.path), route))
            else:
                self._exact[route.path] = route

    def match(self, path: str) -> RouteMatch | None:
        route = self._exact.get(path)
        if route is not None:
            return RouteMatch(route, {}, self._single_valued[route.path])
        for pattern, candidate in self._templates:
            found = pattern.fullmatch(path)
            if found is not None:
                return RouteMatch(candidate, found.groupdict(), self._single_valued[candidate.path])
        return None
