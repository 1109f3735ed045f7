"""Request targets authswitch refuses before routing: what it can't match and forward alike.

Routes match the decoded path; legacy receives the raw one under `legacy.url`'s path prefix. A
dot segment (`/../admin`, `/%2e%2e/admin`, an encoded slash around one) would match as one path
and, once the upstream normalises it, reach another (outside the prefix, or a callback route
that authswitch did not see as one). Browsers remove dot segments before sending, so only
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
    if "/." in path:  # cheap test first: almost every path has no dot segment at all
        for segment in path.split("/"):
            if segment in (".", ".."):
                return DOT_SEGMENTS
    return None
