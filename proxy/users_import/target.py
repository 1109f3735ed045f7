"""What a bulk import needs from a new provider: create many users, update one.

A target answers per user; an error that concerns the whole request (the provider down, a
timeout, 5xx, 429) raises TargetUnavailable and the batch is retried: creates are idempotent
because a user already there is answered `exists`, never created twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from proxy.users_import.hash_passing import HashTarget
from proxy.users_import.line_schema import UserLine

Kind = Literal["created", "exists", "updated", "failed"]


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    reason: str | None = None  # for `failed`: short, grouped in the report, never a value


CREATED = Outcome("created")
EXISTS = Outcome("exists")
UPDATED = Outcome("updated")


def failed(reason: str) -> Outcome:
    return Outcome("failed", reason)


class TargetUnavailable(Exception):
    """The whole request failed (the message never carries the payload); worth a retry."""


class ImportTarget(Protocol):
    # The provider password hashes are passed to, in its documented form; None: none taken.
    hash_target: HashTarget | None

    @property
    def transport(self) -> str:
        """How users are sent, for the report: `bulk`, `single` (SCIM), or the provider type."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def create_many(self, users: Sequence[UserLine]) -> list[Outcome]:
        """One outcome per user, in order: created, exists or failed."""
        ...

    async def existing(self, users: Sequence[UserLine]) -> set[str]:
        """The case-folded user names among `users` that the provider already has."""
        ...

    async def update(self, user: UserLine) -> Outcome:
        """Replace an existing user's attributes: updated or failed."""
        ...
