"""The Redis backend of ``RolloutStore`` (key layout: ``flags.redis.keys``).

A write is ``WATCH doc version replica_version`` -> read the doc and compare its version ->
``MULTI``: ``SET doc``, ``SET version``, ``XADD audit``, ``DEL replica_version``,
``PUBLISH changed <version>`` -> ``EXEC``. If a watched key changed after the ``WATCH``,
``EXEC`` does nothing and the writer gets ``VersionConflict``: two SREs can't overwrite each
other, and a state is never stored without its audit entry (nor published before it is
stored). The audit stream is never trimmed: changes are rare and it is the record.

When Redis loses its data, the state and its audit stream are gone together, but the replicas
still serve the last version they read: they write it to the ``replica_version`` key (see
``flags.redis.provider``). A write that finds no state while that key is set is refused
(``EmptyStoreRefused``), so a routine ``flags enable`` can't silently send every other connection
back to legacy; ``initialise_empty_store`` starts again from the empty state on purpose, audited.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import redis
from pydantic import ValidationError

from flags.audit import AuditRecord, check_actor, check_reason, format_time
from flags.redis.keys import RedisKeys, redact_url
from flags.rollout_store import (
    EmptyStoreRefused,
    StoredStateInvalid,
    StoreNotEmpty,
    StoreUnavailable,
    VersionConflict,
    write_with_cas,
)
from flags.state import RolloutState
from flags.validation_messages import describe_validation_error
from foundation.redis_announce import ChangeAnnouncer
from foundation.redis_client import refresh_cluster_topology

_STATE_KEYS = tuple(RolloutState.model_fields)


def render_stored_state(state: RolloutState) -> bytes:
    """The JSON document kept under the ``doc`` key."""
    return json.dumps(state.model_dump(mode="json"), separators=(",", ":")).encode()


def parse_stored_state(raw: bytes, where: str) -> RolloutState:
    """Validate the ``doc`` key's bytes; ``StoredStateInvalid`` names the key and the problem."""
    try:
        document = json.loads(raw)
    except ValueError:
        raise StoredStateInvalid(f"{where}: not a JSON document") from None
    if not isinstance(document, dict):
        raise StoredStateInvalid(f"{where}: not a JSON object")
    try:
        return RolloutState.model_validate(document)
    except ValidationError as exc:
        problem = describe_validation_error(exc, allowed_keys=_STATE_KEYS)
        raise StoredStateInvalid(f"{where}: {problem}") from None


class RedisRolloutStore:
    """Rollout state, version, audit stream and change channel of one deployment in Redis."""

    def __init__(
        self, client: redis.Redis, keys: RedisKeys, *, url: str = "", publish: bool = True
    ) -> None:
        """``publish`` False: no PUBLISH (managed Redis without pub/sub; replicas poll)."""
        self._client = client
        self.keys = keys
        self._where = f"redis {redact_url(url)}" if url else "redis"
        self.announcer = ChangeAnnouncer(client, publish=publish, where=self._where)

    @property
    def description(self) -> str:
        return f"{self._where} key prefix {self.keys.prefix!r}"

    def read(self) -> RolloutState:
        try:
            raw = self._client.get(self.keys.doc)
        except redis.RedisError as exc:
            raise self._unavailable(exc) from None
        return self._parse(raw)

    def write(
        self,
        expected_version: int,
        new_state: RolloutState,
        *,
        actor: str,
        reason: str,
        action: str,
    ) -> AuditRecord:
        try:
            return write_with_cas(
                self._transaction(),
                expected_version,
                new_state,
                actor=actor,
                reason=reason,
                action=action,
            )
        except redis.RedisError as exc:
            raise self._unavailable(exc) from None

    def initialise_empty_store(self, *, actor: str, reason: str) -> AuditRecord:
        """Store the empty state (every connection on legacy) where no state is; audited.

        Its version follows the one replicas last served, so they take it as a newer state.
        ``RolloutStoreError`` if a state is stored: nothing is then changed.
        """
        actor, reason = check_actor(actor), check_reason(reason)
        try:
            with self._transaction() as tx:
                stored = tx.stored_version()
                if stored is not None:
                    raise StoreNotEmpty(
                        f"{self.description}: holds version {stored}, not an empty store; "
                        "nothing was written"
                    )
                seen = tx.replica_version()
                state = RolloutState(version=seen + 1)
                record = AuditRecord(
                    version=state.version,
                    time=format_time(datetime.now(UTC)),
                    actor=actor,
                    action="initialise_empty_store",
                    reason=reason,
                    before={"replica_version": seen} if seen else {},
                    after={},
                )
                tx.commit(state, record)
        except redis.RedisError as exc:
            raise self._unavailable(exc) from None
        return record

    def history(self, limit: int) -> list[AuditRecord]:
        try:
            entries = self._client.xrevrange(self.keys.audit, count=limit)
        except redis.RedisError as exc:
            raise self._unavailable(exc) from None
        return [self._record(entry_id, fields) for entry_id, fields in entries or ()]

    @contextmanager
    def _transaction(self) -> Iterator[_RedisTransaction]:
        keys = self.keys
        with self._client.pipeline(transaction=True) as pipe:
            pipe.watch(keys.doc, keys.version, keys.replica_version)  # type: ignore[no-untyped-call]
            yield _RedisTransaction(self, pipe)

    def _parse(self, raw: Any) -> RolloutState:
        if raw is None:
            return RolloutState()
        return parse_stored_state(bytes(raw), f"{self._where} key {self.keys.doc!r}")

    def _record(self, entry_id: Any, fields: Any) -> AuditRecord:
        try:
            text = {_text(key): _text(value) for key, value in (fields or {}).items()}
            return AuditRecord.model_validate(
                {
                    **text,
                    "version": int(text["version"]),
                    "before": json.loads(text["before"]),
                    "after": json.loads(text["after"]),
                }
            )
        except (KeyError, ValueError, ValidationError):
            name = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            raise StoredStateInvalid(
                f"{self._where} stream {self.keys.audit!r}: entry {name} is not an audit record"
            ) from None

    def _unavailable(self, exc: redis.RedisError) -> StoreUnavailable:
        refresh_cluster_topology(self._client, exc)  # so that the next attempt finds the master
        # redis-py messages name host and port, never the password.
        return StoreUnavailable(f"{self._where}: {type(exc).__name__}: {exc}")


class _RedisTransaction:
    def __init__(self, store: RedisRolloutStore, pipe: Any) -> None:
        self._store = store
        self._pipe = pipe

    def current(self) -> RolloutState:
        raw = self._pipe.get(self._store.keys.doc)
        if raw is None and (seen := self.replica_version()):
            raise EmptyStoreRefused(self._store.description, seen)
        return self._store._parse(raw)

    def stored_version(self) -> int | None:
        raw = self._pipe.get(self._store.keys.doc)
        return None if raw is None else self._store._parse(raw).version

    def replica_version(self) -> int:
        """The highest version a replica served before finding the store empty (0: none)."""
        raw = self._pipe.get(self._store.keys.replica_version)
        try:
            return max(0, int(raw)) if raw is not None else 0
        except ValueError:
            return 0

    def commit(self, state: RolloutState, record: AuditRecord) -> None:
        keys, pipe = self._store.keys, self._pipe
        entry = record.model_dump(mode="json")
        fields = {
            **{k: str(v) for k, v in entry.items() if k not in ("before", "after")},
            "before": json.dumps(entry["before"], separators=(",", ":")),
            "after": json.dumps(entry["after"], separators=(",", ":")),
        }
        pipe.multi()
        pipe.set(keys.doc, render_stored_state(state))
        pipe.set(keys.version, state.version)
        pipe.xadd(keys.audit, fields)
        pipe.delete(keys.replica_version)  # a state is stored again: the empty-store guard is done
        self._store.announcer.queue(pipe, keys.changed, state.version)
        try:
            pipe.execute()
        except redis.WatchError:
            raise VersionConflict(state.version - 1, None) from None
        self._store.announcer.after_commit(keys.changed, state.version)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
