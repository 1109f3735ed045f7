"""Matching request paths against the configured callback routes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from proxy.config import Route

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(:path)?\}")


@dataclass(frozen=True, slots=True)
class RouteMatch:
    route: Route
    params: dict[str, str]


class RouteTable:
    """Callback routes compiled once: exact paths by dict, templates by regex."""

    def __init__(self, routes: tuple[Route, ...]) -> None:
        self._exact: dict[str, Route] = {}
        self._templates: list[tuple[re.Pattern[str], Route]] = []
        for route in routes:
            if _PARAM.search(route.path):
                self._templates.append((_compile(route.path), route))
            else:
                self._exact[route.path] = route

    def match(self, path: str) -> RouteMatch | None:
        route = self._exact.get(path)
        if route is not None:
            return RouteMatch(route, {})
        for pattern, candidate in self._templates:
            found = pattern.fullmatch(path)
            if found is not None:
                return RouteMatch(candidate, found.groupdict())
        return None


def _compile(template: str) -> re.Pattern[str]:
    parts: list[str] = []
    position = 0
    for param in _PARAM.finditer(template):
        parts.append(re.escape(template[position : param.start()]))
        body = ".+" if param.group(2) else "[^/]+"
        parts.append(f"(?P<{param.group(1)}>{body})")
        position = param.end()
    parts.append(re.escape(template[position:]))
    return re.compile("".join(parts))
