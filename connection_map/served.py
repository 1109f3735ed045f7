"""What the proxy keeps of a connection, and reading it fast from the map's JSON.

The proxy routes by eight facts of a connection (id, protocol, SAML Issuer, OIDC callback path,
RelayState prefix, the new provider's target, the assessment and whether IdP-initiated logins
may move). A replica keeps those alone, as :class:`ServedConnection`: at 100 000 connections the
full models (certificates, organisations, triage facts) would take ~800 MB and seconds to build.

:func:`parse_served_json` validates those fields with the schema's own types and messages
(``model.ConnectionId``, ``CallbackPath``, ``NewProviderUrl`` ...), the protocol rules and
the uniqueness rules, straight into dicts (no model objects), then into records. The other
fields are for triage and export: ``connections push`` validated the whole document before it
wrote it, and a replica ignores them, so a newer release's extra fields don't stop an older
replica during a rolling upgrade.

The Redis doc is written one connection per line (``redis_store.render_map_doc``); a replica
validates it in chunks of lines, so the thread building a new map lets the event loop run
between chunks instead of holding the GIL for the whole document.
"""

from __future__ import annotations

import marshal
import re
from collections.abc import Iterable
from typing import Annotated, Any, NamedTuple, NotRequired, Required

from pydantic import AfterValidator, Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from connection_map.model import (
    Assessment,
    CallbackPath,
    Connection,
    ConnectionId,
    ForwardMode,
    NewProviderUrl,
    Protocol,
    Text,
    check_protocol_sections,
    check_unique,
)

CHUNK_CONNECTIONS = 500  # ~3 ms of validation holding the GIL per chunk


class ServedTarget(NamedTuple):
    """Where a migrated connection's callbacks go."""

    url: str
    mode: ForwardMode = ForwardMode.REDIRECT
    connection_id: str | None = None


class ServedConnection(NamedTuple):
    """The facts the proxy routes by (a tuple: ~120 bytes, built in well under a microsecond)."""

    id: str
    protocol: Protocol
    idp_entity_id: str | None = None
    callback_path: str | None = None
    relay_state_prefix: str | None = None
    new_provider: ServedTarget | None = None
    assessment: Assessment = Assessment.TRANSPARENT
    idp_initiated: bool = True

    @property
    def migratable(self) -> bool:
        """True when a flag may send this connection's callbacks to the new provider."""
        return self.new_provider is not None and self.assessment is Assessment.TRANSPARENT


def served_from(connection: Connection) -> ServedConnection:
    """The record of a fully validated connection."""
    target = connection.new_provider
    return ServedConnection(
        connection.id,
        connection.protocol,
        connection.saml.idp_entity_id if connection.saml else None,
        connection.oidc.callback_path if connection.oidc else None,
        connection.relay_state_prefix,
        ServedTarget(str(target.url), target.mode, target.connection_id) if target else None,
        connection.assessment,
        connection.idp_initiated,
    )


def served_row(record: ServedConnection) -> dict[str, Any]:
    """`record` in the map's JSON shape, defaults left out (what the ``served`` doc holds)."""
    row: dict[str, Any] = {"id": record.id, "protocol": record.protocol.value}
    if record.idp_entity_id is not None:
        row["saml"] = {"idp_entity_id": record.idp_entity_id}
    if record.callback_path is not None:
        row["oidc"] = {"callback_path": record.callback_path}
    if record.relay_state_prefix is not None:
        row["relay_state_prefix"] = record.relay_state_prefix
    target = record.new_provider
    if target is not None:
        row["new_provider"] = {"url": target.url, "mode": target.mode.value}
        if target.connection_id is not None:
            row["new_provider"]["connection_id"] = target.connection_id
    if record.assessment is not Assessment.TRANSPARENT:
        row["assessment"] = record.assessment.value
    if not record.idp_initiated:
        row["idp_initiated"] = False
    return row


def pack_records(connections: Iterable[Connection]) -> bytes:
    """The served records of `connections`, as bytes that :func:`unpack_records` reads back.

    A map read from YAML leaves hundreds of megabytes of small objects behind; records made
    while they are alive would pin their memory pages (a 30k-connection file kept ~500 MB
    that way). Packed, the document can be freed first and the records made afterwards.
    """
    rows = [
        (
            r.id,
            r.protocol.value,  # marshal takes plain strings, not enum members
            r.idp_entity_id,
            r.callback_path,
            r.relay_state_prefix,
            (t.url, t.mode.value, t.connection_id) if (t := r.new_provider) else None,
            r.assessment.value,
            r.idp_initiated,
        )
        for r in map(served_from, connections)
    ]
    return marshal.dumps(rows)


_PROTOCOLS = {member.value: member for member in Protocol}
_MODES = {member.value: member for member in ForwardMode}
_ASSESSMENTS = {member.value: member for member in Assessment}


def unpack_records(data: bytes) -> list[ServedConnection]:
    protocols, modes, assessments = _PROTOCOLS, _MODES, _ASSESSMENTS
    return [
        ServedConnection(
            cid,
            protocols[protocol],
            issuer,
            path,
            prefix,
            ServedTarget(target[0], modes[target[1]], target[2]) if target else None,
            assessments[assessment],
            idp_initiated,
        )
        for cid, protocol, issuer, path, prefix, target, assessment, idp_initiated in (
            marshal.loads(data)  # noqa: S302 (bytes pack_records made in this process)
        )
    ]


# -- the routing fields as a schema of dicts --------------------------------------------------


class _Saml(TypedDict, total=False):
    idp_entity_id: Text | None


class _Oidc(TypedDict, total=False):
    callback_path: CallbackPath | None


class _Legacy(TypedDict, total=False):
    sp_entity_id: Text | None


class _Target(TypedDict):
    url: NewProviderUrl
    mode: NotRequired[ForwardMode]
    connection_id: NotRequired[str | None]


class _Connection(TypedDict, total=False):
    id: Required[ConnectionId]
    protocol: Required[Protocol]
    saml: _Saml | None
    oidc: _Oidc | None
    legacy: _Legacy | None
    relay_state_prefix: Text | None
    new_provider: _Target | None
    assessment: Assessment
    idp_initiated: bool


def _sections(row: _Connection) -> _Connection:
    legacy = row.get("legacy")
    check_protocol_sections(
        row["protocol"],
        has_saml=row.get("saml") is not None,
        has_oidc=row.get("oidc") is not None,
        has_sp_entity_id=bool(legacy and legacy.get("sp_entity_id")),
    )
    return row


_Row = Annotated[_Connection, AfterValidator(_sections)]


class _Document(TypedDict, total=False):
    version: Annotated[int, Field(ge=0)]
    connections: list[_Row]


_ROWS: TypeAdapter[list[_Row]] = TypeAdapter(list[_Row])
_DOCUMENT: TypeAdapter[_Document] = TypeAdapter(_Document)


class ServedMapInvalid(Exception):
    """The JSON is not a map the proxy can route by (with pydantic's error when it has one)."""

    def __init__(self, message: str, *, exc: ValidationError | None = None) -> None:
        super().__init__(message)
        self.validation_error = exc


def _record(row: _Connection) -> ServedConnection:
    saml, oidc, target = row.get("saml"), row.get("oidc"), row.get("new_provider")
    return ServedConnection(
        row["id"],
        row["protocol"],
        saml.get("idp_entity_id") if saml else None,
        oidc.get("callback_path") if oidc else None,
        row.get("relay_state_prefix"),
        ServedTarget(
            str(target["url"]),
            target.get("mode", ForwardMode.REDIRECT),
            target.get("connection_id"),
        )
        if target
        else None,
        row.get("assessment", Assessment.TRANSPARENT),
        row.get("idp_initiated", True),
    )


# The layout render_map_doc writes: a head, one connection per line, the tail.
_HEAD = re.compile(rb'\{"version":(0|[1-9][0-9]{0,17}),"connections":\[\n')
_TAIL = b"]}"


def parse_served_json(text: bytes) -> tuple[int, list[ServedConnection]]:
    """The version and the records of a map document; ServedMapInvalid when unusable."""
    head = _HEAD.match(text)
    if head is not None and text.endswith(_TAIL):
        records = _read_chunked(text, head.end(), len(text) - len(_TAIL))
        if records is not None:
            return int(head.group(1)), _checked(records)
    return _read_whole(text)


def _read_chunked(text: bytes, start: int, end: int) -> list[ServedConnection] | None:
    """The records of the lines in ``text[start:end]``, or None when a chunk fails (then the
    whole document is validated, which says where).

    A chunk is the document's own bytes up to a line end, with the one comma at the cut
    dropped, so the chunks are valid exactly when the document's array is; when a cut falls
    inside an object (a pretty-printed doc) a chunk fails and the whole document decides.
    """
    records: list[ServedConnection] = []
    while start < end:
        cut = start
        for _ in range(CHUNK_CONNECTIONS):
            cut = text.find(b"\n", cut, end) + 1
            if cut == 0:  # every line, the last one included, ends with a newline
                return None
            if cut == end:
                break
        chunk = text[start : cut - 1]
        if cut < end:
            if not chunk.endswith(b","):
                return None
            chunk = chunk[:-1]
        try:
            rows = _ROWS.validate_json(b"[" + chunk + b"]")
        except ValidationError:
            return None
        records.extend(map(_record, rows))
        start = cut
    return records


def _read_whole(text: bytes) -> tuple[int, list[ServedConnection]]:
    try:
        document = _DOCUMENT.validate_json(text)
    except ValidationError as exc:
        raise ServedMapInvalid("invalid", exc=exc) from None
    records = [_record(row) for row in document.get("connections", [])]
    return document.get("version", 0), _checked(records)


def _checked(records: list[ServedConnection]) -> list[ServedConnection]:
    try:
        check_unique([(r.id, r.callback_path, r.relay_state_prefix) for r in records])
    except ValueError as exc:
        raise ServedMapInvalid(f"key 'connections': Value error, {exc}") from None
    return records
