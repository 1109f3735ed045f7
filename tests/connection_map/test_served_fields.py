"""Each routing field is declared once (ServedConnection's JsonPath metadata) and that one
declaration drives every form a record takes: from the full model, to the served doc and back
through the replica's validation, through the packed rows the file loader keeps."""

from __future__ import annotations

import json
import zlib
from enum import Enum
from typing import Annotated, Any, NamedTuple, get_type_hints

import pytest

from connection_map import Connection, ServedConnection, ServedTarget
from connection_map.json_paths import JsonPath, record_functions, record_schema, record_source
from connection_map.model import Assessment, ForwardMode, Protocol
from connection_map.redis_store import parse_served_doc
from connection_map.served import (
    _CONNECTION,
    pack_records,
    parse_served_json,
    served_from,
    served_row,
    unpack_records,
)

# Every field of both records away from its default, across one SAML and one OIDC connection.
SAML = ServedConnection(
    id="acme-saml",
    protocol=Protocol.SAML,
    idp_entity_id="https://idp.acme.example/saml",
    relay_state_prefix="acme:",
    new_provider=ServedTarget("https://new.example/acs/acme", ForwardMode.FORM_POST, "conn_1"),
    assessment=Assessment.NEEDS_IDP_CHANGE,
    idp_initiated=False,
)
OIDC = ServedConnection(
    id="globex-oidc",
    protocol=Protocol.OIDC,
    callback_path="/oauth2/callback/globex",
    new_provider=ServedTarget("https://new.example/oidc/globex", ForwardMode.PROXY),
)
DEFAULTS = ServedConnection(id="plain", protocol=Protocol.SAML)
RECORDS = [SAML, OIDC, DEFAULTS]


def served_doc(rows: list[dict[str, Any]], version: int = 3) -> bytes:
    """The ``served`` doc's layout (redis_store.render_served_doc): one connection per line."""
    lines = ",\n".join(json.dumps(row, separators=(",", ":")) for row in rows)
    return f'{{"version":{version},"connections":[\n{lines}\n]}}'.encode()


def test_the_samples_move_every_declared_field_off_its_default() -> None:
    # so a field added to the declaration is exercised by the round trips below, or this fails
    for record in (ServedConnection, ServedTarget):
        for name in record._fields:
            default = record._field_defaults.get(name)
            targets = [r.new_provider for r in RECORDS if r.new_provider]
            samples = RECORDS if record is ServedConnection else targets
            assert any(getattr(s, name) != default for s in samples), f"{record.__name__}.{name}"


def test_every_field_round_trips_through_the_served_doc() -> None:
    rows = [served_row(r) for r in RECORDS]
    assert rows[2] == {"id": "plain", "protocol": "saml"}  # defaults left out
    assert rows[0]["saml"] == {"idp_entity_id": "https://idp.acme.example/saml"}
    assert rows[1]["new_provider"] == {"url": "https://new.example/oidc/globex", "mode": "proxy"}
    version, records = parse_served_json(served_doc(rows))
    assert (version, records) == (3, RECORDS)
    # the whole-document path (pretty-printed, not one connection per line) reads the same
    pretty = json.dumps({"version": 3, "connections": rows}, indent=2).encode()
    assert parse_served_json(pretty) == (3, RECORDS)
    assert parse_served_doc(zlib.compress(served_doc(rows)), "served").version == 3


def test_every_field_round_trips_through_the_full_model_and_the_packed_rows() -> None:
    connections = [Connection.model_validate(served_row(r)) for r in RECORDS]
    assert [served_from(c) for c in connections] == RECORDS
    assert unpack_records(pack_records(connections)) == RECORDS
    unpacked = unpack_records(pack_records(connections))
    assert unpacked[0].protocol is Protocol.SAML  # enum members again, not their strings
    assert unpacked[0].new_provider is not None
    assert unpacked[0].new_provider.mode is ForwardMode.FORM_POST
    assert isinstance(unpacked[0].new_provider.url, str)


def test_the_validation_schema_is_the_declaration_in_the_full_models_order() -> None:
    keys = list(get_type_hints(_CONNECTION))
    assert keys == [
        "id",
        "protocol",
        "saml",
        "oidc",
        "legacy",
        "relay_state_prefix",
        "new_provider",
        "assessment",
        "idp_initiated",
    ]
    assert _CONNECTION.__required_keys__ == frozenset({"id", "protocol"})


def test_the_validation_refuses_what_the_declared_types_refuse() -> None:
    bad = served_row(OIDC) | {"oidc": {"callback_path": "no-leading-slash"}}
    with pytest.raises(Exception) as caught:
        parse_served_json(served_doc([bad]))
    errors = caught.value.validation_error.errors()  # type: ignore[attr-defined]
    assert [e["loc"] for e in errors] == [("connections", 0, "oidc", "callback_path")]
    url = served_row(SAML) | {"new_provider": {"url": "not a url"}}
    with pytest.raises(Exception) as caught:
        parse_served_json(served_doc([url]))
    errors = caught.value.validation_error.errors()  # type: ignore[attr-defined]
    assert [e["loc"] for e in errors] == [("connections", 0, "new_provider", "url")]


# -- the builder on a record of its own: adding a field is one line --------------------------


class Colour(Enum):
    RED = "red"
    BLUE = "blue"


class Inner(NamedTuple):
    name: Annotated[str, JsonPath("name")]
    colour: Annotated[Colour, JsonPath("colour")] = Colour.RED


class Toy(NamedTuple):
    id: Annotated[str, JsonPath("id")]
    size: Annotated[int, JsonPath("size")] = 1
    label: Annotated[str | None, JsonPath("box", "label")] = None
    inner: Annotated[Inner | None, JsonPath("inner")] = None
    added: Annotated[bool, JsonPath("box", "added")] = False  # the "one line" of a new field


class Model(NamedTuple):  # what the full model offers: attributes along the same paths
    id: str
    size: int
    box: Any
    inner: Any


class Box(NamedTuple):
    label: str | None
    added: bool


def test_a_new_field_is_one_line_in_the_declaration() -> None:
    derived = record_functions(Toy)
    toy = Toy("t", 5, "L", Inner("i", Colour.BLUE), True)
    row = derived["to_json"](toy)
    assert row == {
        "id": "t",
        "size": 5,
        "box": {"label": "L", "added": True},
        "inner": {"name": "i", "colour": "blue"},
    }
    assert derived["from_json"](row | {"inner": {"name": "i", "colour": Colour.BLUE}}) == toy
    assert derived["from_rows"](derived["to_rows"]([toy])) == [toy]
    model = Model("t", 5, Box("L", True), Inner("i", Colour.BLUE))
    assert derived["from_model"](model) == toy
    assert derived["to_json"](Toy("d")) == {"id": "d"}
    assert derived["from_json"]({"id": "d"}) == Toy("d")
    schema = get_type_hints(record_schema(Toy), include_extras=True)
    assert list(schema) == ["id", "size", "inner", "box"]
    source, _ = record_source(Toy)
    assert 'row.setdefault("box", {})["added"] = record.added' in source


def test_a_field_without_a_json_path_is_refused_at_import() -> None:
    class Missing(NamedTuple):
        id: str

    class InSection(NamedTuple):
        label: Annotated[str, JsonPath("box", "label")]

    with pytest.raises(TypeError, match=r"Missing\.id needs one JsonPath"):
        record_functions(Missing)
    with pytest.raises(TypeError, match="needs a default"):
        record_functions(InSection)
    with pytest.raises(TypeError, match="a JSON path is a key or a section and a key"):
        JsonPath("a", "b", "c")
