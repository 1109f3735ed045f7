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

Each routing field is declared once, in :class:`ServedConnection` (or :class:`ServedTarget`),
with its place in the map's JSON as ``JsonPath`` metadata; the conversions below and the
validation schema are derived from those declarations at import time (``json_paths``). Adding
a routing field is the model field plus one line here.
"""

from __future__ import annotations

import marshal
import re
from collections.abc import Callable, Iterable
from typing import Annotated, Any, NamedTuple

from pydantic import AfterValidator, Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from connection_map.json_paths import JsonPath, record_functions, record_schema
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

    url: Annotated[str, JsonPath("url", schema=NewProviderUrl)]
    mode: Annotated[ForwardMode, JsonPath("mode", always_written=True)] = ForwardMode.REDIRECT
    connection_id: Annotated[str | None, JsonPath("connection_id")] = None


class ServedConnection(NamedTuple):
    """The facts the proxy routes by (a tuple: ~120 bytes, built in well under a microsecond).

    Each field's type is the one the map's schema validates it with, and its JsonPath says
    where the full model and the JSON hold it: everything else here is derived from these lines.
    """

    id: Annotated[ConnectionId, JsonPath("id")]
    protocol: Annotated[Protocol, JsonPath("protocol")]
    idp_entity_id: Annotated[Text | None, JsonPath("saml", "idp_entity_id")] = None
    callback_path: Annotated[CallbackPath | None, JsonPath("oidc", "callback_path")] = None
    relay_state_prefix: Annotated[Text | None, JsonPath("relay_state_prefix")] = None
    new_provider: Annotated[ServedTarget | None, JsonPath("new_provider")] = None
    assessment: Annotated[Assessment, JsonPath("assessment")] = Assessment.TRANSPARENT
    idp_initiated: Annotated[bool, JsonPath("idp_initiated")] = True

    @property
    def migratable(self) -> bool:
        """True when a flag may send this connection's callbacks to the new provider."""
        return self.new_provider is not None and self.assessment is Assessment.TRANSPARENT


_DERIVED = record_functions(ServedConnection)

served_from: Callable[[Connection], ServedConnection] = _DERIVED["from_model"]
"""The record of a fully validated connection."""

served_row: Callable[[ServedConnection], dict[str, Any]] = _DERIVED["to_json"]
"""`record` in the map's JSON shape, defaults left out (what the ``served`` doc holds)."""

_record: Callable[[dict[str, Any]], ServedConnection] = _DERIVED["from_json"]
_to_rows: Callable[[Iterable[ServedConnection]], list[tuple[Any, ...]]] = _DERIVED["to_rows"]
_from_rows: Callable[[list[tuple[Any, ...]]], list[ServedConnection]] = _DERIVED["from_rows"]


def pack_records(connections: Iterable[Connection]) -> bytes:
    """The served records of `connections`, as bytes that :func:`unpack_records` reads back.

    A map read from YAML leaves hundreds of megabytes of small objects behind; records made
    while they are alive would pin their memory pages (a 30k-connection file kept ~500 MB
    that way). Packed, the document can be freed first and the records made afterwards.
    """
    return marshal.dumps(_to_rows(map(served_from, connections)))


def unpack_records(data: bytes) -> list[ServedConnection]:
    return _from_rows(marshal.loads(data))  # noqa: S302 (bytes pack_records made in this process)


# -- the routing fields as a schema of dicts --------------------------------------------------

# Validated for the protocol rules (an oidc connection has no legacy.sp_entity_id), not kept.
_CHECKED_ONLY: dict[tuple[str, str], Any] = {("legacy", "sp_entity_id"): Text | None}

_CONNECTION = record_schema(
    ServedConnection, also=_CHECKED_ONLY, order=list(Connection.model_fields)
)


def _sections(row: dict[str, Any]) -> dict[str, Any]:
    legacy = row.get("legacy")
    check_protocol_sections(
        row["protocol"],
        has_saml=row.get("saml") is not None,
        has_oidc=row.get("oidc") is not None,
        has_sp_entity_id=bool(legacy and legacy.get("sp_entity_id")),
    )
    return row


_annotated: Any = Annotated  # over a schema built at import time, which mypy can't see
_Row: Any = _annotated[_CONNECTION, AfterValidator(_sections)]
_typed_dict: Any = TypedDict
_ROWS: TypeAdapter[list[dict[str, Any]]] = TypeAdapter(list[_Row])
_DOCUMENT: TypeAdapter[dict[str, Any]] = TypeAdapter(
    _typed_dict(
        "_Document",
        {"version": Annotated[int, Field(ge=0)], "connections": list[_Row]},
        total=False,
    )
)


class ServedMapInvalid(Exception):
    """The JSON is not a map the proxy can route by (with pydantic's error when it has one)."""

    def __init__(self, message: str, *, exc: ValidationError | None = None) -> None:
        super().__init__(message)
        self.validation_error = exc


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
