"""One export run: pages from the source into the state file until the source has no more."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from proxy.users_export.source import UserSource
from proxy.users_export.state import ExportState


@dataclass
class ExportSummary:
    users: int  # in the state file, this run's and earlier runs'
    this_run: int
    pages: int
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> users
    resumed: bool = False
    waits: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "this_run": self.this_run,
            "pages": self.pages,
            "skipped": self.skipped,
            "resumed": self.resumed,
            "rate_limit_waits": len(self.waits),
            "rate_limit_wait_seconds": round(sum(self.waits), 3),
        }


async def export_users(
    source: UserSource,
    state: ExportState,
    *,
    on_page: Callable[[ExportState], None] = lambda state: None,
) -> ExportSummary:
    """Export every page left after the state's cursor; the state is durable after each page."""
    resumed = state.size > 0 or state.cursor is not None
    this_run = pages = 0
    while not state.done:
        page = await source.page(state.cursor)
        this_run += state.append(page.lines, page.skipped, page.next_cursor)
        pages += 1
        on_page(state)
    return ExportSummary(
        users=state.users,
        this_run=this_run,
        pages=pages,
        skipped=dict(state.skipped),
        resumed=resumed,
    )
