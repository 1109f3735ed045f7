"""The connection map in Redis: compressed JSON documents, published atomically.

With ``key_prefix: authswitch:prod``::

    authswitch:prod:connections:doc       string  the map: zlib-compressed JSON
    authswitch:prod:connections:served    string  what replicas route by, the same way
    authswitch:prod:connections:version   string  its ``version``, as an integer
    authswitch:prod:connections:audit     stream  one entry per push (who, why, what)
    authswitch:prod:connections:history   hash    version -> that map's doc, the last N pushed
    authswitch:prod:connections:changed   pub/sub channel; the message is the new version

``served`` holds each connection's routing fields only (``served.py``), a fifth of the doc:
replicas read it (or ``doc`` when it is missing) and tools read ``doc``. Both are written one
connection per line, which replicas validate in chunks.

A push is ``WATCH version`` -> compare -> ``MULTI``: ``SET doc``, ``SET served``, ``SET version``,
``HSET history`` (and ``HDEL`` of the versions beyond the last N), ``XADD audit``,
``PUBLISH changed`` -> ``EXEC``: replicas see the old map or the new one, a map is never stored
without its audit entry, and two pushes can't silently overwrite each other. The history keeps
whole docs so that ``connections rollback VERSION`` can push one of them again.
"""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from dataclasses import dataclass
from typing import Any

import redis
from pydantic import ValidationError

from connection_map.file_store import ConnectionMapError, describe_invalid_map
from connection_map.index import ConnectionMap
from connection_map.model import ConnectionMapDocument
from connection_map.served import ServedMapInvalid, parse_served_json, served_from, served_row
from foundation.redis_announce import ChangeAnnouncer

# A bound on what a corrupted or hostile doc can make a replica allocate.
_MAX_DOC_BYTES = 512 * 1024 * 1024  # decompressed; a 100k-connection map is ~130 MB


@dataclass(frozen=True, slots=True)
class MapKeys:
    """The names one deployment's connection map lives under."""

    prefix: str

    @property
    def doc(self) -> str:
        return f"{self.prefix}:connections:doc"

    @property
    def served(self) -> str:
        return f"{self.prefix}:connections:served"

    @property
    def version(self) -> str:
        return f"{self.prefix}:connections:version"

    @property
    def audit(self) -> str:
        return f"{self.prefix}:connections:audit"

    @property
    def changed(self) -> str:
        return f"{self.prefix}:connections:changed"

    @property
    def history(self) -> str:
        return f"{self.prefix}:connections:history"


class PushRefused(Exception):
    """A push was refused (stale version, concurrent push); nothing was written."""


def render_map_doc(document: ConnectionMapDocument) -> bytes:
    """The bytes kept under the ``doc`` key: compact JSON without defaults, zlib-compressed.

    One connection per line (``{"version":N,"connections":[`` / a connection per line /
    ``]}``), which replicas validate in chunks; any other valid JSON map is read too.
    """
    raw = document.model_dump(mode="json", exclude_defaults=True)
    return _render_lines(document.version, raw.get("connections", []))


def map_sha256(document: ConnectionMapDocument) -> str:
    """The content hash a push records (and a push preview is bound to)."""
    return hashlib.sha256(render_map_doc(document)).hexdigest()


def render_served_doc(document: ConnectionMapDocument) -> bytes:
    """The bytes kept under the ``served`` key: `render_map_doc` of the routing fields only."""
    rows = [served_row(served_from(c)) for c in document.connections]
    return _render_lines(document.version, rows)


def _render_lines(version: int, rows: list[dict[str, Any]]) -> bytes:
    lines = [f'{{"version":{version},"connections":[']
    lines.append(",\n".join(json.dumps(row, separators=(",", ":")) for row in rows))
    text = "\n".join(lines) + ("\n]}" if rows else "]}")
    return zlib.compress(text.encode(), 6)


def _decompress(data: bytes, where: str) -> bytes:
    try:
        decompressor = zlib.decompressobj()
        text = decompressor.decompress(data, _MAX_DOC_BYTES)  # releases the GIL as it goes
        if decompressor.unconsumed_tail or not decompressor.eof:
            raise ConnectionMapError(f"{where}: truncated, or larger than {_MAX_DOC_BYTES} bytes")
    except zlib.error:
        raise ConnectionMapError(f"{where}: not a zlib-compressed JSON document") from None
    return text


def _invalid(where: str, text: bytes, exc: ValidationError) -> ConnectionMapError:
    try:
        raw = json.loads(text)
    except ValueError:
        return ConnectionMapError(f"{where}: not a JSON document")
    if not isinstance(raw, dict):
        return ConnectionMapError(f"{where}: top level must be an object")
    return ConnectionMapError(describe_invalid_map(where, raw, exc))


def parse_map_doc(data: bytes, where: str) -> ConnectionMapDocument:
    """Validate the ``doc`` key's bytes as the file loader does; ConnectionMapError if unusable."""
    text = _decompress(data, where)
    try:
        return ConnectionMapDocument.model_validate_json(text)
    except ValidationError as exc:
        raise _invalid(where, text, exc) from None


def parse_served_doc(data: bytes, where: str, *, source: str = "") -> ConnectionMap:
    """The index a replica serves from the ``doc`` key's bytes; ConnectionMapError if unusable.

    Validates the fields the proxy routes by (``served``), not the triage facts, which
    ``connections push`` checked before writing.
    """
    text = _decompress(data, where)
    try:
        version, records = parse_served_json(text)
    except ServedMapInvalid as exc:
        if exc.validation_error is not None:
            raise _invalid(where, text, exc.validation_error) from None
        raise ConnectionMapError(f"{where}: {exc}") from None
    return ConnectionMap.from_records(version, records, source=source)


def as_bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


@dataclass(frozen=True, slots=True)
class PushRecord:
    """One push, from the audit stream: what ``connections history`` lists."""

    version: int
    previous_version: int | None
    time: str
    actor: str
    reason: str
    action: str
    connections: int
    sha256: str
    rolled_back_to: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "previous_version": self.previous_version,
            "time": self.time,
            "actor": self.actor,
            "reason": self.reason,
            "action": self.action,
            "connections": self.connections,
            "sha256": self.sha256,
            "rolled_back_to": self.rolled_back_to,
        }


def _optional_int(value: str) -> int | None:
    return int(value) if value.isdigit() else None


def _push_record(fields: dict[bytes | str, bytes | str]) -> PushRecord | None:
    text = {as_bytes(k).decode(): as_bytes(v).decode() for k, v in fields.items()}
    version = _optional_int(text.get("version", ""))
    if version is None:
        return None  # not an entry this store wrote
    return PushRecord(
        version=version,
        previous_version=_optional_int(text.get("previous_version", "")),
        time=text.get("time", ""),
        actor=text.get("actor", ""),
        reason=text.get("reason", ""),
        action=text.get("action", "push"),
        connections=_optional_int(text.get("connections", "")) or 0,
        sha256=text.get("sha256", ""),
        rolled_back_to=_optional_int(text.get("rolled_back_to", "")),
    )


@dataclass(frozen=True, slots=True)
class PushResult:
    previous_version: int | None
    version: int
    connections: int
    doc_bytes: int
    sha256: str


class RedisMapStore:
    """Reads and pushes one deployment's connection map."""

    def __init__(
        self,
        client: redis.Redis,
        keys: MapKeys,
        *,
        where: str = "redis",
        publish: bool = True,
        keep_history: int = 20,
    ) -> None:
        """``publish`` False: no PUBLISH (managed Redis without pub/sub; followers poll).
        ``keep_history``: how many pushed maps (the live one included) stay for rollback."""
        self._client = client
        self._keep_history = keep_history
        self.keys = keys
        self.where = f"{where} key {keys.doc!r}"
        self._announcer = ChangeAnnouncer(client, publish=publish, where=self.where)

    def close(self) -> None:
        self._client.close()

    def version(self) -> int | None:
        return self._version(self._client.get(self.keys.version))

    def _version(self, raw: bytes | str | None) -> int | None:
        if raw is None:
            return None
        try:
            return int(raw)
        except ValueError:
            raise PushRefused(
                f"{self.where}: {self.keys.version!r} is not a whole number; nothing written"
            ) from None

    def read(self) -> ConnectionMapDocument | None:
        """The map in Redis (None when nothing was pushed yet); ConnectionMapError if invalid."""
        raw = self._client.get(self.keys.doc)
        if raw is None:
            return None
        return parse_map_doc(as_bytes(raw), f"connection map in {self.where}")

    def history(self, limit: int) -> list[PushRecord]:
        """The last `limit` pushes, newest first."""
        entries: list[tuple[Any, dict[bytes | str, bytes | str]]] = self._client.xrevrange(  # type: ignore[assignment]
            self.keys.audit, count=limit
        )
        records = [_push_record(fields) for _, fields in entries]
        return [record for record in records if record is not None]

    def kept_versions(self) -> set[int]:
        """The versions whose whole map is kept (rollback targets)."""
        names = self._client.hkeys(self.keys.history)
        return {int(n) for n in (as_bytes(name).decode() for name in names) if n.isdigit()}

    def read_version(self, version: int) -> ConnectionMapDocument | None:
        """A kept map (None when it is not kept); ConnectionMapError if it is unusable."""
        raw = self._client.hget(self.keys.history, str(version))
        if raw is None:
            return None
        return parse_map_doc(as_bytes(raw), f"version {version} in {self.where} history")

    def push(
        self,
        document: ConnectionMapDocument,
        *,
        expected_version: int | None,
        actor: str,
        reason: str,
        action: str = "push",
        rolled_back_to: int | None = None,
    ) -> PushResult:
        """Store `document` if Redis still holds `expected_version` (None: no map yet).

        The document must be valid (the caller validated it) and newer than the stored one.
        """
        data, served = render_map_doc(document), render_served_doc(document)
        digest = hashlib.sha256(data).hexdigest()
        with self._client.pipeline(transaction=True) as pipe:
            pipe.watch(self.keys.version)  # type: ignore[no-untyped-call]
            current = self._version(pipe.get(self.keys.version))
            if current != expected_version:
                raise PushRefused(
                    f"{self.where}: version {current} is live, not {expected_version}: "
                    "someone else pushed; nothing written"
                )
            if current is not None and document.version <= current:
                raise PushRefused(
                    f"the map's version {document.version} is not newer than the live version "
                    f"{current}; bump 'version' (imports do) and push again; nothing written"
                )
            dropped = self._beyond_history(pipe, document.version)
            pipe.multi()
            pipe.set(self.keys.doc, data)
            pipe.set(self.keys.served, served)
            pipe.set(self.keys.version, document.version)
            if self._keep_history > 0:
                pipe.hset(self.keys.history, str(document.version), data)
            if dropped:
                pipe.hdel(self.keys.history, *dropped)
            pipe.xadd(
                self.keys.audit,
                {
                    "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "actor": actor,
                    "reason": reason,
                    "action": action,
                    "previous_version": "" if current is None else str(current),
                    "version": str(document.version),
                    "connections": str(len(document.connections)),
                    "sha256": digest,
                    "rolled_back_to": "" if rolled_back_to is None else str(rolled_back_to),
                },
            )
            self._announcer.queue(pipe, self.keys.changed, document.version)
            try:
                pipe.execute()
            except redis.WatchError:
                raise PushRefused(
                    f"{self.where}: another push landed meanwhile; nothing written"
                ) from None
            self._announcer.after_commit(self.keys.changed, document.version)
        return PushResult(current, document.version, len(document.connections), len(data), digest)

    def _beyond_history(self, pipe: Any, new_version: int) -> list[str]:
        """Kept versions that fall out of the last `keep_history` once `new_version` is in."""
        names = [as_bytes(name).decode() for name in pipe.hkeys(self.keys.history)]
        kept = sorted((int(n) for n in names if n.isdigit()), reverse=True)
        keep = max(self._keep_history - 1, 0)  # the new version takes one place
        return [str(v) for v in kept[keep:] if v != new_version]
