"""What every export source gives the run: pages of import lines, and a cursor for the next."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from proxy.http.rate_limits import ApiUnavailable
from proxy.users_import.line_schema import UserLine


class ExportFailed(ApiUnavailable):
    """The source can't be read (unreachable, refused the credentials, rate limit never lifts,
    a malformed answer); the message says what and never carries a credential."""


@dataclass(frozen=True)
class Page:
    """One page of a source: its users as import lines (or why one was skipped) and the cursor
    of the next page (None: this was the last)."""

    lines: list[dict[str, Any]]
    next_cursor: str | None
    skipped: list[str] = field(default_factory=list)  # one reason per user left out


class UserSource(Protocol):
    """A legacy provider's users, page by page, from a cursor this source gave earlier."""

    @property
    def identity(self) -> str:
        """Names the source (kind and URL or file), so a state file is resumed from it only."""
        ...

    async def page(self, cursor: str | None) -> Page:
        """The page at `cursor` (None: the first)."""
        ...

    async def close(self) -> None: ...


def import_line(fields: dict[str, Any]) -> dict[str, Any] | str:
    """`fields` (None values dropped) as a line `users import` takes, or why it can't be one
    (the reason names the field, never a value)."""
    line = {key: value for key, value in fields.items() if value not in (None, "")}
    if "email" not in line:
        return "no email"
    try:
        UserLine.model_validate(line)
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False, include_context=False)[0]
        location = ".".join(str(part) for part in error["loc"]) or "(user)"
        return f"{location}: {error['msg']}"
    return line


def page_of(
    users: Iterable[Any], convert: Callable[[Any], dict[str, Any] | str], next_cursor: str | None
) -> Page:
    """A page of the users `convert` turns into import lines, with the others' reasons."""
    lines: list[dict[str, Any]] = []
    skipped: list[str] = []
    for user in users:
        line = convert(user)
        if isinstance(line, dict):
            lines.append(line)
        else:
            skipped.append(line)
    return Page(lines, next_cursor, skipped)
