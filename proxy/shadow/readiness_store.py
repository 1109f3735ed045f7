"""Per-connection readiness counts: in this process's memory, or in Redis for every replica.

Counts belong to one import of a connection (``import_digest``: its SAML settings, legacy
endpoint and accepted values): once the import is fixed, readiness starts again from the next
samples instead of carrying the failures of the import that was wrong.

Redis layout (``P`` = the key prefix)::

    P:shadow:r:<connection>:<import digest>  hash  samples, accepted, dropped, first, last,
                                                    signer, signer_valid, signer_in_import,
                                                    reason:<code> -> count, detail:<code> -> text

Hashes expire `retention` after their last write. Nothing of a response is stored: reason codes
and texts that name certificate fingerprints and import values only.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field, replace
from typing import Protocol, cast

import redis

from connection_map import Connection
from proxy.shadow.saml_check import Verdict
from proxy.shadow.settings import ShadowConnection

RETENTION_SECONDS = 30 * 86_400


def import_digest(connection: Connection, accepts: ShadowConnection) -> str:
    """What the checks of this connection depend on, as a short digest."""
    parts = [
        connection.saml.model_dump_json() if connection.saml else "",
        connection.legacy.model_dump_json() if connection.legacy else "",
        accepts.model_dump_json(),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


@dataclass(slots=True)
class Readiness:
    """What the samples of one connection's current import say."""

    connection: str
    import_digest: str
    samples: int = 0
    accepted: int = 0
    dropped: int = 0
    first_seen: float | None = None
    last_seen: float | None = None
    reasons: dict[str, int] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)
    signer: str | None = None  # the certificate that signs today: fingerprint
    signer_valid: str | None = None  # its validity, "YYYY-MM-DD to YYYY-MM-DD"
    signer_in_import: bool | None = None

    @property
    def ratio(self) -> float | None:
        return self.accepted / self.samples if self.samples else None


class ReadinessStore(Protocol):
    def record(self, connection: str, digest: str, verdict: Verdict, now: float) -> None: ...
    def record_dropped(self, connection: str, digest: str) -> None: ...
    def read(self, connection: str, digest: str) -> Readiness: ...


def _apply(entry: Readiness, verdict: Verdict, now: float) -> None:
    entry.samples += 1
    entry.accepted += verdict.accepted
    if entry.first_seen is None:
        entry.first_seen = now
    entry.last_seen = now
    for reason in verdict.reasons:
        entry.reasons[reason] = entry.reasons.get(reason, 0) + 1
    entry.details.update(verdict.details)
    if verdict.signer is not None:
        entry.signer = verdict.signer.fingerprint
        entry.signer_valid = _validity(verdict)
        entry.signer_in_import = verdict.signer.in_import


def _validity(verdict: Verdict) -> str:
    signer = verdict.signer
    assert signer is not None
    return f"{signer.not_before:%Y-%m-%d} to {signer.not_after:%Y-%m-%d}"


class MemoryReadinessStore:
    """This process only (tests, a single replica); at most `max_entries` imports kept."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._entries: dict[tuple[str, str], Readiness] = {}
        self._lock = threading.Lock()
        self._max = max_entries

    def _entry(self, connection: str, digest: str) -> Readiness:
        key = (connection, digest)
        entry = self._entries.get(key)
        if entry is None:
            if len(self._entries) >= self._max:
                self._entries.pop(next(iter(self._entries)))
            entry = self._entries[key] = Readiness(connection, digest)
        return entry

    def record(self, connection: str, digest: str, verdict: Verdict, now: float) -> None:
        with self._lock:
            _apply(self._entry(connection, digest), verdict, now)

    def record_dropped(self, connection: str, digest: str) -> None:
        with self._lock:
            self._entry(connection, digest).dropped += 1

    def read(self, connection: str, digest: str) -> Readiness:
        with self._lock:
            found = self._entries.get((connection, digest))
            if found is None:
                return Readiness(connection, digest)
            return replace(found, reasons=dict(found.reasons), details=dict(found.details))


class RedisReadinessStore:
    """Shared by every replica and the CLI. Synchronous: called from the worker threads."""

    def __init__(self, client: redis.Redis, key_prefix: str) -> None:
        self._client = client
        self._prefix = f"{key_prefix}:shadow:r"

    def _key(self, connection: str, digest: str) -> str:
        return f"{self._prefix}:{connection}:{digest}"

    def record(self, connection: str, digest: str, verdict: Verdict, now: float) -> None:
        key = self._key(connection, digest)
        pipe = self._client.pipeline(transaction=False)
        pipe.hincrby(key, "samples", 1)
        if verdict.accepted:
            pipe.hincrby(key, "accepted", 1)
        pipe.hsetnx(key, "first", repr(now))
        pipe.hset(key, "last", repr(now))
        for reason in verdict.reasons:
            pipe.hincrby(key, f"reason:{reason}", 1)
        for reason, text in verdict.details.items():
            pipe.hset(key, f"detail:{reason}", text)
        if verdict.signer is not None:
            pipe.hset(
                key,
                mapping={
                    "signer": verdict.signer.fingerprint,
                    "signer_valid": _validity(verdict),
                    "signer_in_import": "1" if verdict.signer.in_import else "0",
                },
            )
        pipe.expire(key, RETENTION_SECONDS)
        pipe.execute()

    def record_dropped(self, connection: str, digest: str) -> None:
        key = self._key(connection, digest)
        pipe = self._client.pipeline(transaction=False)
        pipe.hincrby(key, "dropped", 1)
        pipe.expire(key, RETENTION_SECONDS)
        pipe.execute()

    def read(self, connection: str, digest: str) -> Readiness:
        raw = cast(dict[bytes, bytes], self._client.hgetall(self._key(connection, digest)))
        values = {k.decode(): v.decode() for k, v in raw.items()}
        entry = Readiness(
            connection,
            digest,
            samples=int(values.get("samples", 0)),
            accepted=int(values.get("accepted", 0)),
            dropped=int(values.get("dropped", 0)),
            first_seen=float(values["first"]) if "first" in values else None,
            last_seen=float(values["last"]) if "last" in values else None,
            signer=values.get("signer"),
            signer_valid=values.get("signer_valid"),
            signer_in_import=values["signer_in_import"] == "1"
            if "signer_in_import" in values
            else None,
        )
        for name, value in values.items():
            if name.startswith("reason:"):
                entry.reasons[name.removeprefix("reason:")] = int(value)
            elif name.startswith("detail:"):
                entry.details[name.removeprefix("detail:")] = value
        return entry
