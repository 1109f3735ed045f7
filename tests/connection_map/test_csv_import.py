"""Importing the connections CSV: good rows in, every broken row named, nothing half-imported."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from connection_map import (
    Connection,
    ConnectionMapDocument,
    ImportRefused,
    Protocol,
    import_connections_csv,
)
from connection_map.csv_columns import ALL_HEADER
from connection_map.file_store import render_connection_map
from tests.connection_map.csv_fixture import (
    BROKEN,
    CLIENT_SECRET_SUFFIX,
    NOT_A_KEY_SECRET,
    render,
)

EMPTY = ConnectionMapDocument()


def refused(text: str, document: ConnectionMapDocument = EMPTY, **options: object) -> ImportRefused:
    with pytest.raises(ImportRefused) as caught:
        import_connections_csv(document, text, source="connections.csv", **options)  # type: ignore[arg-type]
    return caught.value


def csv_text(*rows: dict[str, str], header: tuple[str, ...] = ALL_HEADER) -> str:
    lines = [",".join(header)]
    lines += [",".join(row.get(name, "") for name in header) for row in rows]
    return "\n".join(lines) + "\n"


def saml_row(ext: str, cert: str, **cells: str) -> dict[str, str]:
    row = {
        "externalId": ext,
        "idpEntityId": f"https://idp.{ext}.example/saml",
        "idpUrl": f"https://idp.{ext}.example/sso",
        "x509Cert": '"' + cert + '"',
    }
    row.update(cells)
    return row


# -- the realistic fixture --------------------------------------------------------------------


def test_every_broken_row_is_reported_and_nothing_is_imported(
    shared_key: rsa.RSAPrivateKey, sp_private_key: str
) -> None:
    text = render(shared_key, sp_private_key)
    error = refused(text)

    assert {(p.row, p.column) for p in error.problems} == BROKEN
    assert len(error.problems) == len(BROKEN), [str(p) for p in error.problems]
    message = str(error)
    assert message.startswith(f"connections.csv: {len(BROKEN)} problems, nothing imported:")
    # Rows after multi-line certificate cells start on a later line, and both are given.
    initech_line = text[: text.index("Initech,")].count("\n") + 1
    assert initech_line > 6
    assert f"row 6 (line {initech_line}), id 'initech', column 'idpEntityId': " in message
    assert "row 18 (line" in message and "the same id is on row 3" in message
    assert "row 15 (line" in message and "one connection is one protocol" in message
    assert "holds a PEM block that is not a CERTIFICATE" in message
    assert "column 'requestSigningKey': is not a PEM private key" in message


def test_secrets_in_the_csv_never_reach_an_error(
    shared_key: rsa.RSAPrivateKey, sp_private_key: str
) -> None:
    message = str(refused(render(shared_key, sp_private_key)))
    key_body = sp_private_key.splitlines()[1]
    assert key_body not in message and "PRIVATE KEY" not in message
    assert NOT_A_KEY_SECRET not in message
    assert CLIENT_SECRET_SUFFIX not in message


def test_the_good_rows_import(shared_key: rsa.RSAPrivateKey, sp_private_key: str) -> None:
    text = render(shared_key, sp_private_key, drop_broken=True)
    result = import_connections_csv(EMPTY, text, source="connections.csv")

    document = result.document
    assert len(document.connections) == 26 == len(result.imported)
    assert document.version == 1
    by_id = {c.id: c for c in document.connections}
    saml = [c for c in document.connections if c.protocol is Protocol.SAML]
    assert len(saml) == 18 and len(by_id) - len(saml) == 8

    acme = by_id["acme"]
    assert acme.name == "Acme SSO" and acme.external_id == "acme"
    assert acme.organization is not None
    assert acme.organization.domains == ("acme.example", "acme.co.uk")
    assert acme.saml is not None and len(acme.saml.signing_certificates) == 1
    assert acme.saml.idp_sso_urls[0].url == "https://acme.okta.com/sso/saml"
    assert acme.legacy is not None
    assert acme.legacy.callback_url == "https://login.legacy.example/login/callback?connection=acme"
    assert acme.legacy.sp_entity_id == "urn:auth0:legacy-tenant"
    assert acme.new_provider is None, "the CSV doesn't know the new provider's target"

    massive, tyrell = by_id["massive"], by_id["tyrell"]
    assert massive.saml is not None and massive.saml.request_signing.key_exportable
    assert tyrell.saml is not None and tyrell.saml.assertion_encryption.enabled
    assert tyrell.saml.name_id_encryption.key_exportable
    assert by_id["vandelay"].idp_initiated is False
    oscorp = by_id["oscorp"]
    assert oscorp.saml is not None and oscorp.saml.idp_entity_id is None
    assert oscorp.saml.idp_metadata_url == "https://sso.oscorp.example/idp/metadata.xml"
    hooli = by_id["hooli"]
    assert hooli.oidc is not None and hooli.oidc.client_id is not None
    assert hooli.legacy is not None
    assert hooli.legacy.callback_url == "https://login.legacy.example/oidc/hooli/callback"

    # The secrets are handed back for an export, never put in the map.
    assert result.secrets["massive"]["requestSigningKey"] == sp_private_key.strip()
    assert result.secrets["hooli"]["clientSecret"].endswith(CLIENT_SECRET_SUFFIX)
    written = render_connection_map(document).decode()
    assert "PRIVATE KEY" not in written and CLIENT_SECRET_SUFFIX not in written


# -- the header -----------------------------------------------------------------------------


def test_strict_refuses_an_unknown_column_with_a_suggestion_and_an_unnamed_one() -> None:
    error = refused("externalId,idpEntityID,idpUrl,\nacme,x,y,\n", strict=True)
    assert [str(p) for p in error.problems] == [
        "row 1, column 'idpEntityID': unknown column (did you mean 'idpEntityId'?)",
        "row 1, column '(empty)': a column without a name",
    ]


def test_unknown_and_unnamed_columns_are_ignored_with_a_warning(good_cert: str) -> None:
    """As the WorkOS template and tooling tolerate them: a note column, trailing empty ones."""
    row = saml_row("acme", good_cert)
    header = (*ALL_HEADER, "notes", "", "")
    text = csv_text({**row, "notes": "call Bob first", "": ""}, header=header)

    result = import_connections_csv(EMPTY, text, source="connections.csv")

    assert result.imported == ("acme",)
    assert [str(w) for w in result.warnings] == [
        "row 1, column 'notes': unknown column: its cells are ignored",
        "row 1, column '(empty)': a column without a name: its cells are ignored",
        "row 1, column '(empty)': a column without a name: its cells are ignored",
    ]
    assert "call Bob" not in str(result.document)


def test_a_repeated_column_and_a_missing_id_column_are_refused() -> None:
    error = refused("name,idpUrl,idpUrl\nacme,x,y\n")
    assert {str(p) for p in error.problems} == {
        "row 1, column 'idpUrl': appears twice in the header",
        "row 1, column 'externalId': the header has no such column; it gives each "
        "connection its id",
    }


@pytest.mark.parametrize(
    ("text", "problem"),
    [("", "the file is empty"), ("externalId\n", "the file has a header but no rows")],
)
def test_an_empty_file_is_refused(text: str, problem: str) -> None:
    assert problem in str(refused(text))


def test_a_row_with_extra_cells_is_refused(good_cert: str) -> None:
    text = "externalId,idpMetadataUrl\nacme,https://idp.example/md,surplus\n"
    (problem,) = refused(text).problems
    assert str(problem) == "row 2, id 'acme': has 3 cells, the header has 2"


def test_a_bom_and_crlf_line_ends_are_read(good_cert: str) -> None:
    text = "\ufeffexternalId,idpMetadataUrl\r\nacme,https://idp.example/md\r\n"
    result = import_connections_csv(EMPTY, text)
    assert result.imported == ("acme",)


def test_every_problem_of_a_row_is_reported_at_once() -> None:
    text = csv_text({"externalId": "acme", "idpUrl": "nope", "domains": "-bad-"})
    assert {(p.row, p.column) for p in refused(text).problems} == {
        (2, "idpEntityId"),
        (2, "x509Cert"),
        (2, "idpUrl"),
        (2, "domains"),
    }


def test_a_cell_of_the_other_protocol_is_refused_when_the_protocol_is_forced() -> None:
    text = csv_text({"externalId": "acme", "idpMetadataUrl": "https://idp/md", "clientId": "x"})
    problems = refused(text, protocol=Protocol.SAML).problems
    assert [(p.column, p.message) for p in problems] == [
        ("clientId", "does not apply to saml connections")
    ]


def test_several_certificates_in_one_cell(good_cert: str) -> None:
    text = csv_text(saml_row("acme", good_cert + good_cert.replace("A", "A")))
    (acme,) = import_connections_csv(EMPTY, text).document.connections
    assert acme.saml is not None and len(acme.saml.signing_certificates) == 2


def test_a_bare_base64_certificate_is_accepted(good_cert: str) -> None:
    bare = "".join(good_cert.strip().splitlines()[1:-1])
    (acme,) = import_connections_csv(EMPTY, csv_text(saml_row("acme", bare))).document.connections
    assert acme.saml is not None and acme.saml.signing_certificates == (good_cert,)


# -- merging into an existing map -------------------------------------------------------------


def existing(**fields: object) -> ConnectionMapDocument:
    entry = {
        "id": "acme",
        "protocol": "saml",
        "saml": {"name_id_format": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"},
        "new_provider": {"url": "https://np.example/sso/acme/acs", "connection_id": "conn_1"},
        "hold": {"assessment": "blocked", "reason": "waiting for the customer"},
        "idp_initiated": False,
        **fields,
    }
    other = {"id": "globex", "protocol": "saml"}
    return ConnectionMapDocument.model_validate({"version": 4, "connections": [entry, other]})


def test_an_import_keeps_what_the_csv_does_not_say(good_cert: str) -> None:
    result = import_connections_csv(existing(), csv_text(saml_row("acme", good_cert)))
    acme, globex = result.document.connections
    assert result.document.version == 5
    assert acme.new_provider is not None and acme.new_provider.connection_id == "conn_1"
    assert acme.hold is not None and acme.idp_initiated is False, "an empty cell changes nothing"
    assert acme.saml is not None and acme.saml.name_id_format is not None
    assert acme.saml.idp_entity_id == "https://idp.acme.example/saml"
    assert globex == existing().connections[1]


def test_a_row_whose_protocol_differs_from_the_map_is_refused() -> None:
    text = csv_text(
        {
            "externalId": "acme",
            "clientId": "c",
            "clientSecret": "very-secret",
            "discoveryEndpoint": "https://idp/.well-known/openid-configuration",
        }
    )
    (problem,) = refused(text, existing()).problems
    assert str(problem) == "row 2, id 'acme': the map has this connection as saml, the row is oidc"
    assert "very-secret" not in str(problem)


def test_the_id_can_come_from_another_column(good_cert: str) -> None:
    row = saml_row("acme", good_cert, name="acme-sso")
    result = import_connections_csv(EMPTY, csv_text(row), id_column="name")
    (connection,) = result.document.connections
    assert connection == Connection.model_validate(connection.model_dump())
    assert connection.id == "acme-sso" and connection.external_id == "acme"
