"""One exported connection as CSV cells, and the file written from them.

The header is the importer's own (csv_columns.ALL_HEADER) and each cell is neutralised as
csv_export does, so what is written here is read back exactly. `notes` say what the CSV can't
carry (e.g. "signs AuthnRequests with a key that can't be exported"): the operator reads them
before triage.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field

from connection_map.csv_columns import ALL_HEADER, BY_NAME
from connection_map.csv_export import neutralised_cell

_PEM_BEGIN = "-----BEGIN CERTIFICATE-----"
# A user's attribute (OIDC claim names, which Auth0 and Cognito key their attribute maps by) ->
# the CSV column naming the SAML attribute that carries it.
ATTRIBUTE_COLUMNS: dict[str, str] = {
    "email": "emailAttribute",
    "given_name": "firstNameAttribute",
    "family_name": "lastNameAttribute",
    "name": "nameAttribute",
}


@dataclass
class ExportedConnection:
    id: str
    cells: dict[str, str]
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        unknown = set(self.cells) - set(BY_NAME)
        assert not unknown, f"not connections CSV columns: {sorted(unknown)}"


def connections_csv(connections: Iterable[ExportedConnection]) -> str:
    """The connections CSV (every column, the id in externalId)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(ALL_HEADER)
    for connection in connections:
        cells = {**connection.cells, "externalId": connection.id}
        writer.writerow([neutralised_cell(cells.get(name, "")) for name in ALL_HEADER])
    return out.getvalue()


def certificate_pem(value: str) -> str | None:
    """A certificate as PEM, from PEM, base64 DER, or base64 of PEM (vendors store all three);
    None when it is none of them."""
    value = value.strip()
    if value.startswith(_PEM_BEGIN):
        return value
    try:
        raw = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    if raw.lstrip().startswith(_PEM_BEGIN.encode()):
        return raw.decode("ascii", errors="replace").strip()
    if not raw.startswith(b"\x30"):  # a DER certificate is an ASN.1 SEQUENCE
        return None
    body = "\n".join(textwrap.wrap(base64.b64encode(raw).decode(), 64))
    return f"{_PEM_BEGIN}\n{body}\n-----END CERTIFICATE-----"
