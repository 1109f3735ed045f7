r"""Request targets authswitch refuses before routing: what it can't match and forward alike.

Routes match the decoded path; legacy receives the raw one under `legacy.url`'s path prefix. A
dot segment (`/../admin`, `/%2e%2e/admin`, an encoded slash around one, `/..;/admin` as Tomcat
reads it, `\..\` as Windows servers do) would match as one path and, once the upstream
normalises it, reach another (outside the prefix, or a callback route that authswitch did not
see as one). Browsers remove dot segments before sending, so only
hand-made requests carry them: they are refused, never normalised into something else.
An asterisk-form target (`OPTIONS *`) names no resource that a reverse proxy could forward.
"""

from __future__ import annotations

from typing import Final

DOT_SEGMENTS: Final = "dot_segments"
NOT_A_PATH: Final = "request_target_not_a_path"

MESSAGES: Final[dict[str, str]] = {
    DOT_SEGMENTS: "the request path contains '.' or '..' segments, which are not forwarded",
    NOT_A_PATH: "the request target must be an absolute path ('OPTIONS *' is not forwarded)",
}


def target_problem(path: str) -> str | None:
    """Why this decoded request path is refused (a reason code), or None to route it."""
    if not path.startswith("/"):
        return NOT_A_PATH
    # Cheap tests first: almost every path has no dot segment at all. Servers differ on what
    # else makes one: Tomcat and Jetty drop `;parameters` from a segment before normalising
    # (`/..;/admin`), Windows servers take a backslash for a slash (`/x\..\admin`).
    if "." in path and ("/." in path or "\\." in path):
        for segment in path.replace("\\", "/").split("/"):
            if segment.partition(";")[0] in (".", ".."):
                return DOT_SEGMENTS
    return None
