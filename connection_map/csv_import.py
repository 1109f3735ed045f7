"""Importing the connections CSV: every row checked, every problem reported, all or nothing."""

from __future__ import annotations

import csv
import difflib
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from connection_map.certificates import CertificateError, check_private_key, split_pem_certificates
from connection_map.csv_columns import (
    BY_NAME,
    KEY_COLUMNS,
    PROTOCOL_COLUMNS,
    SECRET_COLUMNS,
    column_for,
)
from connection_map.csv_export import restored_cell
from connection_map.model import Connection, ConnectionMapDocument, Protocol

_TRUE = frozenset({"true", "yes", "1", "y", "on"})
_FALSE = frozenset({"false", "no", "0", "n", "off"})
_LIST_SEPARATORS = re.compile(r"[,;\s]+")


@dataclass(frozen=True, slots=True)
class ImportProblem:
    """One thing wrong with the input; never carries a cell's value."""

    message: str
    row: int | None = None  # as a spreadsheet numbers it: the header is row 1
    line: int | None = None  # the file line the row starts on (differs after multi-line cells)
    column: str | None = None
    connection_id: str | None = None

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            at_line = f" (line {self.line})" if self.line not in (None, self.row) else ""
            where.append(f"row {self.row}{at_line}")
        if self.connection_id is not None:
            where.append(f"id {self.connection_id!r}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return (", ".join(where) + ": " if where else "") + self.message


class ImportRefused(Exception):
    """The input has problems; nothing was imported. ``problems`` lists every one."""

    def __init__(self, source: str, problems: list[ImportProblem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        count = len(problems)
        super().__init__(
            f"{source}: {count} problem{'s' if count != 1 else ''}, nothing imported:\n"
            + "\n".join(f"  {problem}" for problem in problems)
        )


@dataclass(frozen=True, slots=True)
class CsvImport:
    """The map with the CSV's connections in it, and what the CSV said that the map won't keep."""

    document: ConnectionMapDocument
    imported: tuple[str, ...]  # connection ids, in file order
    secrets: Mapping[str, Mapping[str, str]] = field(repr=False)  # id -> secret column -> value
    # Header columns the import ignored (unknown or without a name): said, not refused, as
    # the new provider's template and tooling tolerate them; `strict` refuses them instead.
    warnings: tuple[ImportProblem, ...] = ()


@dataclass
class _Row:
    number: int
    line: int
    cells: dict[str, str]
    problems: list[ImportProblem] = field(default_factory=list)
    connection_id: str | None = None

    def problem(self, message: str, column: str | None = None) -> None:
        self.problems.append(
            ImportProblem(message, self.number, self.line, column, self.connection_id)
        )


def import_connections_csv(
    document: ConnectionMapDocument,
    text: str,
    *,
    source: str = "connections.csv",
    id_column: str = "externalId",
    protocol: Protocol | None = None,
    strict: bool = False,
) -> CsvImport:
    """Merge the CSV's rows into `document`; raise ImportRefused listing every problem.
    Unknown and unnamed columns are ignored with a warning, or refused when `strict`."""
    header, rows, warnings = _read(text, source, id_column, strict)
    existing = {c.id: c for c in document.connections}
    merged: dict[str, Connection] = {}
    secrets: dict[str, dict[str, str]] = {}
    first_row: dict[str, int] = {}
    problems: list[ImportProblem] = []
    for row in rows:
        connection = _connection(row, header, id_column, protocol, existing)
        cid = row.connection_id
        if cid is not None and cid in first_row:
            row.problem(f"the same id is on row {first_row[cid]}", id_column)
        elif cid is not None:
            first_row[cid] = row.number
        problems.extend(row.problems)
        if connection is not None and not row.problems:
            merged[connection.id] = connection
            secrets[connection.id] = {
                name: row.cells[name] for name in SECRET_COLUMNS if row.cells.get(name)
            }
    if not rows:
        problems.append(ImportProblem("the file has a header but no rows", row=1, line=1))
    if problems:
        raise ImportRefused(source, problems)
    connections = [merged.pop(c.id, c) for c in document.connections] + list(merged.values())
    try:
        updated = ConnectionMapDocument(
            version=document.version + 1, connections=tuple(connections)
        )
    except ValidationError as exc:
        messages = [e["msg"] for e in exc.errors(include_url=False, include_input=False)]
        raise ImportRefused(
            source, [ImportProblem(f"the map would be invalid: {m}") for m in messages]
        ) from None
    return CsvImport(updated, tuple(first_row), secrets, tuple(warnings))


def _read(
    text: str, source: str, id_column: str, strict: bool
) -> tuple[list[str], list[_Row], list[ImportProblem]]:
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
    records = _records(reader, source)
    try:
        _, _, header_cells = next(records)
    except StopIteration:
        raise ImportRefused(source, [ImportProblem("the file is empty")]) from None
    header = [cell.strip() for cell in header_cells]
    problems, ignored = _header_problems(header, id_column)
    if strict:
        problems, ignored = problems + ignored, []
    ignored = [replace(p, message=p.message + ": its cells are ignored") for p in ignored]
    if problems:
        raise ImportRefused(source, problems)
    rows = []
    for number, line, cells in records:
        if not any(cell.strip() for cell in cells):
            continue
        values = (restored_cell(cell).strip() for cell in cells)
        row = _Row(number, line, dict(zip(header, values, strict=False)))
        row.connection_id = row.cells.get(id_column) or None
        if len(cells) != len(header):
            row.problem(f"has {len(cells)} cells, the header has {len(header)}")
        rows.append(row)
    return header, rows, ignored


def _records(reader: Any, source: str) -> Iterator[tuple[int, int, list[str]]]:
    number = 0
    line = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # csv's messages describe the syntax ("unexpected end of data"), not the content.
            raise ImportRefused(
                source, [ImportProblem(f"unreadable CSV: {exc}", number + 1, line)]
            ) from None
        number += 1
        yield number, line, cells
        line = reader.line_num + 1


def _header_problems(
    header: list[str], id_column: str
) -> tuple[list[ImportProblem], list[ImportProblem]]:
    """(what refuses the file, which columns are ignored: unknown or without a name)."""
    problems = []
    ignored = []
    seen: set[str] = set()
    for name in header:
        if not name:  # a spreadsheet's trailing empty columns
            ignored.append(ImportProblem("a column without a name", 1, 1, "(empty)"))
            continue
        if name in seen:
            problems.append(ImportProblem("appears twice in the header", 1, 1, name))
        seen.add(name)
        if name not in BY_NAME:
            close = difflib.get_close_matches(name, list(BY_NAME), n=1, cutoff=0.75)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            ignored.append(ImportProblem(f"unknown column{hint}", 1, 1, name))
    if id_column not in seen:
        problems.append(
            ImportProblem(
                "the header has no such column; it gives each connection its id", 1, 1, id_column
            )
        )
    return problems, ignored


def _connection(
    row: _Row,
    header: list[str],
    id_column: str,
    forced: Protocol | None,
    existing: Mapping[str, Connection],
) -> Connection | None:
    cells = row.cells
    cid = cells.get(id_column) or None
    row.connection_id = cid
    if cid is None:
        row.problem("is empty; it gives the connection its id", id_column)
    protocol = forced or _protocol(row)
    if protocol is None:
        return None
    _check_columns(row, protocol)
    fields = _fields(row, protocol)
    previous = existing.get(cid) if cid is not None else None
    if previous is not None and previous.protocol is not protocol:
        row.problem(
            f"the map has this connection as {previous.protocol.value}, the row is {protocol.value}"
        )
        return None
    base: dict[str, Any] = previous.model_dump() if previous is not None else {}
    # Validated even when the row already has problems, so every one is reported at once.
    raw = _merge(base, {"id": cid or "row-without-id", "protocol": protocol.value, **fields})
    if protocol is Protocol.SAML:
        raw.setdefault("saml", {})
    try:
        connection = Connection.model_validate(raw)
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            location = tuple(error["loc"])
            column = id_column if location[:1] == ("id",) else column_for(location, protocol)
            row.problem(error["msg"].removeprefix("Value error, "), column)
        return None
    return connection if not row.problems else None


def _protocol(row: _Row) -> Protocol | None:
    found = {
        protocol: [name for name in names if row.cells.get(name)]
        for protocol, names in PROTOCOL_COLUMNS.items()
    }
    saml, oidc = found[Protocol.SAML], found[Protocol.OIDC]
    if saml and oidc:
        row.problem(
            f"has SAML columns ({', '.join(saml)}) and OIDC columns ({', '.join(oidc)}): "
            "one connection is one protocol"
        )
        return None
    if not saml and not oidc:
        row.problem(
            "has neither SAML (idpEntityId, idpMetadataUrl, ...) nor OIDC (clientId, ...) values"
        )
        return None
    return Protocol.SAML if saml else Protocol.OIDC


def _check_columns(row: _Row, protocol: Protocol) -> None:
    cells = row.cells
    for name, value in cells.items():
        column = BY_NAME.get(name)
        if value and column is not None and protocol not in column.protocols:
            row.problem(f"does not apply to {protocol.value} connections", name)
    if protocol is Protocol.OIDC:
        for name in ("clientId", "clientSecret", "discoveryEndpoint"):
            if not cells.get(name):
                row.problem("is required for an OIDC connection", name)
    elif not cells.get("idpMetadataUrl"):
        for name in ("idpEntityId", "idpUrl", "x509Cert"):
            if not cells.get(name):
                row.problem("is required for a SAML connection without idpMetadataUrl", name)


def _fields(row: _Row, protocol: Protocol) -> dict[str, Any]:
    """The map fields the row's non-empty cells give; an empty cell leaves a field alone."""
    cells = row.cells
    fields: dict[str, Any] = {}
    for name, value in cells.items():
        column = BY_NAME.get(name)
        if not value or column is None or not column.field or protocol not in column.protocols:
            continue
        converted = _convert(row, name, value)
        if converted is not None:
            _put(fields, column.field, converted)
    return fields


def _convert(row: _Row, name: str, value: str) -> Any:
    if name in KEY_COLUMNS:
        try:
            check_private_key(value)
        except CertificateError as exc:
            row.problem(str(exc), name)
            return None
        return {"enabled": True, "key_exportable": True}
    if name == "x509Cert":
        try:
            return split_pem_certificates(value)
        except CertificateError as exc:
            row.problem(str(exc), name)
            return None
    if name == "idpUrl":
        return [{"url": value}]
    if name == "domains":
        return [d.lower() for d in _LIST_SEPARATORS.split(value) if d]
    if name == "idpInitiatedEnabled":
        lowered = value.lower()
        if lowered in _TRUE or lowered in _FALSE:
            return lowered in _TRUE
        row.problem("must be true or false", name)
        return None
    return value


def _put(target: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = value


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        old = merged.get(key)
        if key == "idp_sso_urls" and isinstance(old, list):
            merged[key] = _sso_urls(old, value)
        elif isinstance(value, dict) and isinstance(old, dict):
            merged[key] = _merge(old, value)
        else:
            merged[key] = value
    return merged


def _sso_urls(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # idpUrl is one URL; the map may know several (from metadata). Keep them, the CSV's first.
    url = new[0]["url"]
    kept = [entry for entry in old if entry.get("url") == url] or new
    return kept[:1] + [entry for entry in old if entry.get("url") != url]
