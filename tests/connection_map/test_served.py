"""What a replica keeps of the map, read fast from the Redis doc: the same routes as the full
models, the same refusals for what it routes by, in chunks that never change the answer."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import pytest

from connection_map import (
    ConnectionMap,
    ConnectionMapDocument,
    ConnectionMapError,
    ServedTarget,
    load_connection_map,
    read_connection_map_document,
)
from connection_map.redis_store import parse_map_doc, parse_served_doc, render_map_doc
from connection_map.served import CHUNK_CONNECTIONS
from foundation.strict_yaml import load_yaml_mapping

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "connections.yaml"
CERTIFICATE = (
    "-----BEGIN CERTIFICATE-----\nTUlJQzVEQ0NBY3lnQXdJQkFnSUVkR1ZoYlE9PQ==\n"
    "-----END CERTIFICATE-----"
)


def many(count: int) -> list[dict[str, Any]]:
    """`count` connections of every shape the proxy routes by, across several chunks."""
    rows: list[dict[str, Any]] = []
    for n in range(count):
        row: dict[str, Any]
        if n % 3 == 0:
            row = {
                "id": f"saml-{n}",
                "protocol": "saml",
                "saml": {
                    "idp_entity_id": f"https://idp{n}.example/saml",
                    "signing_certificates": [CERTIFICATE],
                },
                "legacy": {"sp_entity_id": "https://legacy.example/sp"},
                "new_provider": {
                    "url": f"https://new.example/acs/{n}",
                    "connection_id": f"conn_{n}",
                },
                "idp_initiated": n % 2 == 0,
            }
        elif n % 3 == 1:
            row = {
                "id": f"oidc-{n}",
                "protocol": "oidc",
                "oidc": {"callback_path": f"/cb/{n}", "client_id": "x"},
                "new_provider": {"url": "https://new.example", "mode": "proxy"},
                "assessment": "needs_idp_change",
            }
        else:
            row = {"id": f"rs-{n}", "protocol": "saml", "relay_state_prefix": f"rs{n}:"}
        rows.append(row)
    return rows


def document(rows: list[dict[str, Any]], version: int = 3) -> ConnectionMapDocument:
    return ConnectionMapDocument.model_validate({"version": version, "connections": rows})


def records(index: ConnectionMap) -> list[Any]:
    return sorted(index, key=lambda c: c.id)


def test_a_replica_routes_exactly_as_the_full_models_would() -> None:
    full = document(many(3 * CHUNK_CONNECTIONS + 7))
    served = parse_served_doc(render_map_doc(full), "doc")

    assert served.version == 3 and len(served) == len(full.connections)
    assert records(served) == records(ConnectionMap.build(full))
    acme = served.get("saml-0")
    assert acme is not None and acme.new_provider == ServedTarget(
        "https://new.example/acs/0", connection_id="conn_0"
    )
    # The new provider's URL is the exact text the full model gives (normalised the same way).
    oidc = served.get("oidc-1")
    assert oidc is not None and oidc.new_provider is not None
    assert oidc.new_provider.url == "https://new.example/"
    assert served.by_relay_state("rs2:whatever") == served.get("rs-2")
    assert served.by_callback_path("/cb/4") == served.get("oidc-4")


def test_the_example_map_reads_the_same_from_file_from_doc_and_from_the_models() -> None:
    full = read_connection_map_document(EXAMPLE)
    expected = records(ConnectionMap.build(full))
    assert records(load_connection_map(EXAMPLE)) == expected
    assert records(parse_served_doc(render_map_doc(full), "doc")) == expected


@pytest.mark.parametrize("layout", ["one line", "pretty-printed", "empty map"])
def test_a_doc_in_another_json_layout_is_read_the_same(layout: str) -> None:
    rows = [] if layout == "empty map" else many(CHUNK_CONNECTIONS + 40)
    raw = {"version": 9, "connections": rows}
    text = json.dumps(raw, indent=2 if layout == "pretty-printed" else None)

    served = parse_served_doc(zlib.compress(text.encode()), "doc")

    assert served.version == 9
    assert records(served) == records(ConnectionMap.build(document(rows, 9)))


def test_the_rendered_doc_is_one_connection_per_line_and_plain_json() -> None:
    full = document(many(5))
    text = zlib.decompress(render_map_doc(full))
    lines = text.split(b"\n")
    assert lines[0] == b'{"version":3,"connections":[' and lines[-1] == b"]}"
    assert len(lines) == 5 + 2
    assert parse_map_doc(render_map_doc(full), "doc") == full
    empty = render_map_doc(document([]))
    assert json.loads(zlib.decompress(empty)) == {"version": 3, "connections": []}
    assert len(parse_served_doc(empty, "doc")) == 0


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            {"id": "bad id"},
            "key 'connections[{n}] (id 'bad id').id': Value error, must be 1-256 characters",
        ),
        ({"protocol": "ldap"}, "key 'connections[{n}] (id 'oidc-{n}').protocol': Input should"),
        (
            {"saml": {"idp_entity_id": "https://x.example"}},
            "key 'connections[{n}] (id 'oidc-{n}')': Value error, an oidc connection cannot "
            "have 'saml' settings",
        ),
        (
            {"oidc": {"callback_path": "no-slash"}},
            "key 'connections[{n}] (id 'oidc-{n}').oidc.callback_path': String should match",
        ),
        (
            {"new_provider": {"url": "https://new.example/a#frag"}},
            "key 'connections[{n}] (id 'oidc-{n}').new_provider.url': Value error, must not "
            "have a #fragment",
        ),
        (
            {"new_provider": {"url": "https://new.example/", "mode": "teleport"}},
            "key 'connections[{n}] (id 'oidc-{n}').new_provider.mode': Input should be",
        ),
        ({"assessment": "maybe"}, "key 'connections[{n}] (id 'oidc-{n}').assessment': Input"),
        ({"idp_initiated": "often"}, "key 'connections[{n}] (id 'oidc-{n}').idp_initiated'"),
    ],
)
def test_a_bad_routing_field_in_a_later_chunk_is_refused_naming_its_row(
    change: dict[str, Any], problem: str
) -> None:
    rows = many(2 * CHUNK_CONNECTIONS + 10)
    n = 2 * CHUNK_CONNECTIONS + 3  # an oidc row in the third chunk
    assert rows[n]["protocol"] == "oidc"
    rows[n] = rows[n] | change
    text = b'{"version":3,"connections":[\n' + b",\n".join(
        json.dumps(row, separators=(",", ":")).encode() for row in rows
    )
    data = zlib.compress(text + b"\n]}")

    with pytest.raises(ConnectionMapError) as caught:
        parse_served_doc(data, "doc")
    assert str(caught.value).startswith("doc: " + problem.format(n=n)), str(caught.value)


@pytest.mark.parametrize(
    ("first", "second", "problem"),
    [
        (
            {"id": "same", "protocol": "saml"},
            {"id": "same", "protocol": "saml"},
            "connection id 'same' appears more than once (connections[3] and connections[{n}])",
        ),
        (
            {"id": "a", "protocol": "oidc", "oidc": {"callback_path": "/cb/shared"}},
            {"id": "b", "protocol": "oidc", "oidc": {"callback_path": "/cb/shared"}},
            "oidc.callback_path '/cb/shared' is used by connections[3] (id 'a') and "
            "connections[{n}] (id 'b')",
        ),
        (
            {"id": "a", "protocol": "saml", "relay_state_prefix": "t1"},
            {"id": "b", "protocol": "saml", "relay_state_prefix": "t1:"},
            "relay_state_prefix of connections[3] (id 'a') and connections[{n}] (id 'b') "
            "overlap: 't1' starts 't1:'",
        ),
    ],
)
def test_duplicates_in_different_chunks_are_refused_as_the_full_model_does(
    first: dict[str, Any], second: dict[str, Any], problem: str
) -> None:
    rows = many(CHUNK_CONNECTIONS + 20)
    n = CHUNK_CONNECTIONS + 5
    rows[3], rows[n] = first, second
    data = render_map_doc_unchecked(rows)

    with pytest.raises(ConnectionMapError) as caught:
        parse_served_doc(data, "doc")
    message = str(caught.value)
    assert message == f"doc: key 'connections': Value error, {problem.format(n=n)}"
    with pytest.raises(ConnectionMapError) as full:
        parse_map_doc(data, "doc")
    assert str(full.value) == message


def render_map_doc_unchecked(rows: list[dict[str, Any]]) -> bytes:
    """The line layout of render_map_doc, for rows the model would refuse."""
    lines = ",\n".join(json.dumps(row, separators=(",", ":")) for row in rows)
    return zlib.compress(('{"version":3,"connections":[\n' + lines + "\n]}").encode())


def test_a_doc_cut_or_spliced_between_lines_is_refused_not_half_read() -> None:
    good = zlib.decompress(render_map_doc(document(many(CHUNK_CONNECTIONS + 3))))
    lines = good.split(b"\n")
    missing_comma = b"\n".join([*lines[:3], lines[3].rstrip(b","), *lines[4:]])
    extra_comma = b"\n".join([*lines[:-2], lines[-2] + b",", lines[-1]])
    for text in (missing_comma, extra_comma, good[: len(good) // 2] + b"\n]}"):
        with pytest.raises(ConnectionMapError, match=r"^doc: not a JSON document"):
            parse_served_doc(zlib.compress(text), "doc")


def test_replicas_ignore_triage_facts_and_fields_of_newer_releases() -> None:
    """What the proxy doesn't route by is checked by `connections push`, not by replicas: a
    newer release's extra field must not stop an older replica in a rolling upgrade."""
    rows = many(4)
    rows[0]["saml"]["signing_certificates"] = ["not a certificate"]
    rows[1]["added_in_a_later_release"] = {"anything": 1}
    data = render_map_doc_unchecked(rows)

    served = parse_served_doc(data, "doc")
    assert len(served) == 4 and served.get("saml-0") is not None
    with pytest.raises(ConnectionMapError, match="signing_certificates"):
        parse_map_doc(data, "doc")


def test_a_large_yaml_map_gives_the_same_records_as_its_models(tmp_path: Path) -> None:
    rows = many(1200)
    path = tmp_path / "connections.yaml"
    path.write_text(json.dumps({"version": 5, "connections": rows}))  # JSON is YAML
    assert load_yaml_mapping(path.read_bytes())["version"] == 5

    loaded = load_connection_map(path)

    assert loaded.version == 5 and loaded.source == str(path)
    assert records(loaded) == records(ConnectionMap.build(document(rows, 5)))


def test_a_pushed_doc_is_read_in_chunks_never_as_one_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    """One piece would hold the GIL (and the event loop) for the whole document."""
    full = document(many(2 * CHUNK_CONNECTIONS + 1))

    def whole(text: bytes) -> None:
        raise AssertionError("validated as one piece")

    monkeypatch.setattr("connection_map.served._read_whole", whole)
    assert len(parse_served_doc(render_map_doc(full), "doc")) == len(full.connections)
