"""The file backend of ``RolloutStore``: the flags file, a lock file beside it, a JSONL audit trail.

Compare-and-set is an exclusive ``flock`` on ``.<flags file>.lock`` held while the version is
checked, the new file is written (temp file + rename, so the proxy never reads half a file) and
the audit line is appended and fsynced. ``flock`` locks belong to an open file, so two writers
contend whether they are two processes or two threads of one.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import ValidationError

from flags.audit import AuditRecord
from flags.file.format import FlagFileError
from flags.file.store import load_rollout_state, write_rollout_state
from flags.rollout_store import (
    StoredStateInvalid,
    StoreTransaction,
    StoreUnavailable,
    write_with_cas,
)
from flags.state import RolloutState

_LOCK_POLL_SECONDS = 0.01


def default_audit_path(flags_file: str | os.PathLike[str]) -> Path:
    """``flags.yaml`` -> ``flags.audit.jsonl`` in the same directory."""
    path = Path(flags_file)
    return path.with_name(f"{path.stem}.audit.jsonl")


class FileRolloutStore:
    """Rollout state in the file the file provider watches; audit trail in a JSONL file."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        audit_path: str | os.PathLike[str] | None = None,
        lock_timeout_seconds: float = 5.0,
    ) -> None:
        self.path = Path(path)
        self.audit_path = Path(audit_path) if audit_path is not None else default_audit_path(path)
        self.lock_path = self.path.with_name(f".{self.path.name}.lock")
        self._lock_timeout = lock_timeout_seconds

    @property
    def description(self) -> str:
        return f"file {str(self.path)!r}"

    def read(self) -> RolloutState:
        """The state in the file; the default state if the file does not exist yet."""
        if not self.path.exists():
            return RolloutState()
        try:
            return load_rollout_state(self.path)
        except FlagFileError as exc:
            raise StoredStateInvalid(str(exc)) from None

    def write(
        self,
        expected_version: int,
        new_state: RolloutState,
        *,
        actor: str,
        reason: str,
        action: str,
    ) -> AuditRecord:
        return write_with_cas(
            self._transaction(),
            expected_version,
            new_state,
            actor=actor,
            reason=reason,
            action=action,
        )

    def history(self, limit: int) -> list[AuditRecord]:
        try:
            with self.audit_path.open("rb") as handle:
                lines = handle.read().splitlines()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StoreUnavailable(f"audit file {str(self.audit_path)!r}: {exc.strerror}") from None
        records: list[AuditRecord] = []
        for number, line in reversed(list(enumerate(lines, start=1))):
            if len(records) >= limit:
                break
            if not line.strip():
                continue
            try:
                records.append(AuditRecord.model_validate_json(line))
            except ValidationError:
                raise StoredStateInvalid(
                    f"audit file {str(self.audit_path)!r}: line {number} is not an audit record"
                ) from None
        return records

    @contextmanager
    def _transaction(self) -> Iterator[StoreTransaction]:
        with self._locked():
            yield _FileTransaction(self)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreUnavailable(f"lock file {str(self.lock_path)!r}: {exc.strerror}") from None
        try:
            give_up = time.monotonic() + self._lock_timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                        raise
                    if time.monotonic() >= give_up:
                        raise StoreUnavailable(
                            f"lock file {str(self.lock_path)!r}: another writer has held it for "
                            f"{self._lock_timeout:g} s"
                        ) from None
                    time.sleep(_LOCK_POLL_SECONDS)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock


class _FileTransaction:
    def __init__(self, store: FileRolloutStore) -> None:
        self._store = store

    def current(self) -> RolloutState:
        return self._store.read()

    def commit(self, state: RolloutState, record: AuditRecord) -> None:
        store = self._store
        try:
            write_rollout_state(store.path, state)
        except OSError as exc:
            raise StoreUnavailable(f"flags file {str(store.path)!r}: {exc.strerror}") from None
        line = json.dumps(record.model_dump(mode="json"), separators=(",", ":")) + "\n"
        try:
            with store.audit_path.open("a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            # The state is already in force; say loudly that its record is missing.
            raise StoreUnavailable(
                f"version {state.version} is written but its audit record is not: audit file "
                f"{str(store.audit_path)!r}: {exc.strerror}"
            ) from None
