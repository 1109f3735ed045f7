"""The callback routes authswitch serves, as triage sees them.

``connection_map`` never imports the proxy; the CLI turns the proxy's configured routes into
these plain values. :func:`match_route` matches the way the proxy's route table does: exact
paths first, then templates in the configured order (``{name}`` is one segment,
``{name:path}`` the rest); tests in ``tests/proxy`` hold the two to the same answers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

PATH_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(:path)?\}")
# Which methods a route must accept for an IdP's callback to reach it.
_NEEDED_METHOD = {"saml": ("POST",), "oidc": ("GET", "POST")}


@dataclass(frozen=True, slots=True)
class ServedRoute:
    path: str  # "/login/callback", "/sso/{connection}/acs", "/cb/{rest:path}"
    protocol: str  # "saml" | "oidc"
    identify: tuple[str, ...]  # "path", "query", "saml_issuer", "callback_path"
    query_param: str = "connection"
    methods: tuple[str, ...] = ("GET", "POST")


def match_route(
    routes: Sequence[ServedRoute], path: str, protocol: str
) -> tuple[ServedRoute, dict[str, str]] | None:
    """The route that would receive a callback on `path`, with its parameters, if it can."""
    found = _match(routes, path)
    if found is None:
        return None
    route, params = found
    if route.protocol != protocol:
        return None  # the proxy would treat it as the other protocol's callback
    if not any(method in route.methods for method in _NEEDED_METHOD.get(protocol, ())):
        return None
    return route, params


def _match(routes: Sequence[ServedRoute], path: str) -> tuple[ServedRoute, dict[str, str]] | None:
    for route in routes:
        if not PATH_PARAM.search(route.path) and route.path == path:
            return route, {}
    for route in routes:
        if PATH_PARAM.search(route.path):
            found = compile_path_template(route.path).fullmatch(path)
            if found is not None:
                return route, found.groupdict()
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
