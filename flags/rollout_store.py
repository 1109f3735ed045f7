"""Where the rollout state is kept and changed: one small interface for the file and Redis backends.

Every write goes the same way whatever the backend: check the actor and reason, open the
backend's transaction (a lock file, a Redis ``WATCH``), compare the stored version with the one
the writer read (compare-and-set), then store version + 1 and its audit record together. Two
writers that read the same version can't both commit: the second gets ``VersionConflict``.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from flags.audit import AuditRecord, check_action, check_actor, check_reason
from flags.state import RolloutState


class RolloutStoreError(Exception):
    """The rollout state can't be read or written; the message says where and why, no secret."""


class StoreUnavailable(RolloutStoreError):
    """The backend did not answer (Redis unreachable, a file that can't be read or locked)."""


class StoredStateInvalid(RolloutStoreError):
    """The backend answered, but what it holds is not a valid rollout state."""


class VersionConflict(RolloutStoreError):
    """The state changed since the writer read it; nothing was written. Read again and retry."""

    def __init__(self, expected: int, actual: int | None) -> None:
        self.expected = expected
        self.actual = actual
        now = f"version {actual}" if actual is not None else "a newer version"
        super().__init__(
            f"the rollout state changed since it was read: expected version {expected}, "
            f"found {now}; nothing was written"
        )


class EmptyStoreRefused(RolloutStoreError):
    """The store holds no state but replicas served a version of it: Redis lost its data.

    Writing a delta on top of the empty default would send every connection back to legacy at
    once; nothing is written until someone initialises the empty store on purpose.
    """

    def __init__(self, where: str, replica_version: int) -> None:
        self.replica_version = replica_version
        super().__init__(
            f"{where}: the rollout state is missing, but replicas were serving version "
            f"{replica_version} (did Redis lose its data?); nothing was written. Restore the "
            "state, or start again from the empty state (every connection on legacy) with "
            "'authswitch flags initialise-empty-store --reason ...'"
        )


class StoreNotEmpty(RolloutStoreError):
    """Initialising the empty store was asked for, but a state is stored; nothing was written."""


class RolloutStore(Protocol):
    """Read, change (compare-and-set, audited) and list the history of one rollout state."""

    @property
    def description(self) -> str:
        """Which backend and where, for people (never a credential)."""
        ...

    def read(self) -> RolloutState:
        """The current state; the default state (version 0) if none was ever written."""
        ...

    def write(
        self,
        expected_version: int,
        new_state: RolloutState,
        *,
        actor: str,
        reason: str,
        action: str,
    ) -> AuditRecord:
        """Store ``new_state`` as ``expected_version + 1`` with its audit record, or raise."""
        ...

    def history(self, limit: int) -> list[AuditRecord]:
        """The latest ``limit`` audit records, newest first."""
        ...


class StoreTransaction(Protocol):
    """The backend side of one compare-and-set: read under the lock/watch, then commit."""

    def current(self) -> RolloutState: ...

    def commit(self, state: RolloutState, record: AuditRecord) -> None:
        """Store the state and append the record as one step; ``VersionConflict`` if raced."""
        ...


def write_with_cas(
    transaction: AbstractContextManager[StoreTransaction],
    expected_version: int,
    new_state: RolloutState,
    *,
    actor: str,
    reason: str,
    action: str,
    now: datetime | None = None,
) -> AuditRecord:
    """The write path shared by every backend: validate, compare-and-set, audit."""
    actor, reason, action = check_actor(actor), check_reason(reason), check_action(action)
    # Validated again: a state built with model_copy(update=...) skips pydantic's checks.
    candidate = {**new_state.model_dump(), "version": expected_version + 1}
    after = RolloutState.model_validate(candidate)
    with transaction as tx:
        before = tx.current()
        if before.version != expected_version:
            raise VersionConflict(expected_version, before.version)
        record = AuditRecord.of_change(
            before, after, actor=actor, reason=reason, action=action, time=now
        )
        tx.commit(after, record)
    return record
