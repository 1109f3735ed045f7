"""Writing the map back as the connections CSV, so the same file can go to the new provider.

Cells are neutralised against CSV (formula) injection as OWASP advises: a delimiter, quote or
line break inside a cell is quoted as RFC 4180 says (the csv module does), and a cell that
starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (which
spreadsheets read as a formula) gets a leading ``'``, as does a cell that already starts with
``'`` (so the importer can take exactly one off). A cell that is only PEM blocks (certificates,
keys: ``-----BEGIN ...``) is left as it is: base64 and armour lines hold no formula, and the
new provider's import must read the key unchanged. The importer reads a neutralised cell back
as the value it was (``restored_cell``).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from connection_map.csv_columns import (
    ALL_HEADER,
    BY_NAME,
    KEY_COLUMNS,
    OIDC_HEADER,
    SAML_HEADER,
)
from connection_map.model import Connection, Protocol, SpKeyUse

_FORMULA_LEAD = ("=", "+", "-", "@", "\t", "\r")
_PEM_ONLY = re.compile(
    r"(?:-----BEGIN [A-Z0-9 ]{1,64}-----\r?\n[A-Za-z0-9+/=\r\n]+-----END [A-Z0-9 ]{1,64}-----\s*)+"
)


def neutralised_cell(value: str) -> str:
    """`value` as a cell no spreadsheet evaluates (see the module's docstring)."""
    formula = value.startswith(_FORMULA_LEAD) and not _PEM_ONLY.fullmatch(value)
    return "'" + value if formula or value.startswith("'") else value


def restored_cell(cell: str) -> str:
    """The value a cell of ours held: the leading ``'`` neutralised_cell added, taken off. A
    cell written by hand keeps its ``'`` unless a formula character or another ``'`` follows
    it (only a hand-written cell starting with two quotes reads differently)."""
    if cell.startswith("'") and cell[1:].startswith(("'", *_FORMULA_LEAD)):
        return cell[1:]
    return cell


@dataclass(frozen=True, slots=True)
class CsvExport:
    text: str
    rows: int
    missing_secrets: tuple[tuple[str, str], ...]  # (connection id, column) left empty


def export_connections_csv(
    connections: Iterable[Connection],
    *,
    protocol: Protocol | None = None,
    secrets: Mapping[str, Mapping[str, str]] | None = None,
    id_column: str = "externalId",
) -> CsvExport:
    """The connections (of one protocol, or all) as CSV; secrets only from `secrets`."""
    header = {None: ALL_HEADER, Protocol.SAML: SAML_HEADER, Protocol.OIDC: OIDC_HEADER}[protocol]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    missing: list[tuple[str, str]] = []
    count = 0
    for connection in connections:
        if protocol is not None and connection.protocol is not protocol:
            continue
        given = (secrets or {}).get(connection.id, {})
        cells = _cells(connection, given, missing)
        cells[id_column] = connection.id
        writer.writerow([neutralised_cell(cells.get(name, "")) for name in header])
        count += 1
    return CsvExport(out.getvalue(), count, tuple(missing))


def _cells(
    connection: Connection, secrets: Mapping[str, str], missing: list[tuple[str, str]]
) -> dict[str, str]:
    cells: dict[str, str] = {}
    for name in ALL_HEADER:
        column = BY_NAME[name]
        if connection.protocol not in column.protocols:
            continue
        if not column.field:  # clientSecret
            cells[name] = _secret(connection.id, name, secrets, missing)
            continue
        value = _lookup(connection, column.field)
        if name in KEY_COLUMNS:
            use = value if isinstance(value, SpKeyUse) else SpKeyUse()
            needed = use.enabled and use.key_exportable
            cells[name] = _secret(connection.id, name, secrets, missing) if needed else ""
        elif value is not None:
            cells[name] = _text(name, value)
    return cells


def _secret(cid: str, name: str, secrets: Mapping[str, str], missing: list[tuple[str, str]]) -> str:
    value = secrets.get(name, "")
    if not value:
        missing.append((cid, name))
    return value


def _lookup(connection: Connection, path: tuple[str, ...]) -> Any:
    value: Any = connection
    for part in path:
        value = getattr(value, part, None)
        if value is None:
            return None
    return value


def _text(name: str, value: Any) -> str:
    if name == "x509Cert":
        return "\n".join(pem.strip() for pem in value)
    if name == "idpUrl":
        return value[0].url if value else ""
    if name == "domains":
        return ",".join(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
