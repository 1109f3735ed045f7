"""The connection map file: clear errors naming file, row, id and field; safe live reloads."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from connection_map import (
    Assessment,
    ConnectionMapError,
    ConnectionMapFile,
    ForwardMode,
    load_connection_map,
)
from tests.foundation.durability import record_durability_steps

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "connections.yaml"


def entry(cid: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": cid,
        "protocol": "saml",
        "saml": {"idp_entity_id": f"https://idp.{cid}.example/saml"},
        "new_provider": {"url": f"https://np.example/sso/{cid}/acs"},
        **fields,
    }


def write(path: Path, document: Any) -> Path:
    """Replace the file atomically, as an editor or a config-management tool does."""
    temp = path.with_name(path.name + ".tmp")
    text = document if isinstance(document, str) else yaml.safe_dump(document)
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)
    return path


def error_for(path: Path, document: Any) -> str:
    write(path, document)
    with pytest.raises(ConnectionMapError) as caught:
        load_connection_map(path)
    return str(caught.value)


@pytest.fixture
def map_path(tmp_path: Path) -> Path:
    return write(tmp_path / "connections.yaml", {"version": 1, "connections": [entry("acme")]})


# -- load_connection_map --------------------------------------------------------------------


def test_the_shipped_example_loads() -> None:
    connections = load_connection_map(EXAMPLE)
    assert [c.id for c in connections] == ["acme", "globex", "hooli"]
    assert connections.source == str(EXAMPLE)
    acme, globex, hooli = (connections.get(cid) for cid in ("acme", "globex", "hooli"))
    assert acme is not None and acme.migratable
    assert globex is not None and globex.assessment is Assessment.NEEDS_IDP_CHANGE
    assert not globex.migratable
    assert hooli is not None and hooli.new_provider is not None
    assert hooli.new_provider.mode is ForwardMode.PROXY
    assert connections.by_callback_path("/oauth2/callback/hooli") is hooli


def test_an_empty_file_is_refused_but_an_empty_list_is_a_map(tmp_path: Path) -> None:
    # A truncated file must never replace a good map and send every connection to legacy.
    path = tmp_path / "connections.yaml"
    assert error_for(path, "") == f"connection map '{path}': the file is empty"
    connections = load_connection_map(write(path, "connections: []\n"))
    assert len(connections) == 0 and connections.version == 0


def test_a_key_given_twice_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "connections.yaml"
    content = "connections:\n  - id: acme\n    protocol: saml\n    protocol: oidc\n"
    message = error_for(path, content)
    assert message.startswith(f"connection map '{path}': invalid YAML at line 4")
    assert "duplicate key 'protocol'" in message


@pytest.mark.parametrize(
    ("rows", "key", "problem"),
    [
        (
            [entry("acme"), entry("globex", saml={"idp_entity_id": ""})],
            "connections[1] (id 'globex').saml.idp_entity_id",
            "String should have at least 1 character",
        ),
        (
            [entry("acme", new_provider={"url": "not a url"})],
            "connections[0] (id 'acme').new_provider.url",
            "Input should be a valid URL",
        ),
        (
            [entry("acme"), entry("initech"), entry("globex", assessment="unknown")],
            "connections[2] (id 'globex').assessment",
            "Input should be 'transparent', 'needs_idp_change' or 'blocked'",
        ),
        (
            [entry("acme", protocol="oidc")],
            "connections[0] (id 'acme')",
            "an oidc connection cannot have 'saml' settings",
        ),
        (
            [entry("acme", tenant="eu")],
            "connections[0] (id 'acme').tenant",
            "Extra inputs are not permitted",
        ),
        (
            [entry("acme"), entry("bad id")],
            "connections[1] (id 'bad id').id",
            "must be 1-256 characters",
        ),
        (
            [entry("acme"), {**entry("x"), "id": 12345}],
            "connections[1].id",
            "Input should be a valid string",
        ),
        (
            [entry("acme"), {k: v for k, v in entry("globex").items() if k != "protocol"}],
            "connections[1] (id 'globex').protocol",
            "Field required",
        ),
        (
            [entry("acme"), "globex"],
            "connections[1]",
            "Input should be a valid dictionary",
        ),
        (
            [entry("acme"), entry("globex"), entry("acme")],
            "connections",
            "connection id 'acme' appears more than once (connections[0] and connections[2])",
        ),
    ],
)
def test_a_bad_row_is_named_by_index_id_and_field(
    tmp_path: Path, rows: list[Any], key: str, problem: str
) -> None:
    path = tmp_path / "connections.yaml"
    message = error_for(path, {"version": 1, "connections": rows})
    assert message.startswith(f"connection map '{path}': ")
    assert f"key '{key}': " in message
    assert problem in message


def test_unknown_top_level_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "connections.yaml"
    message = error_for(path, {"version": 1, "conections": []})
    assert "key 'conections': Extra inputs are not permitted" in message


def test_every_bad_row_is_reported_at_once(tmp_path: Path) -> None:
    rows = [entry("acme", assessment="nope"), entry("globex"), entry("initech", protocol="x")]
    message = error_for(tmp_path / "connections.yaml", {"connections": rows})
    assert "key 'connections[0] (id 'acme').assessment'" in message
    assert "key 'connections[2] (id 'initech').protocol'" in message
    assert "globex" not in message


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "connections.yaml"
    message = error_for(path, "version: 1\nconnections:\n  - id: acme\n protocol: saml\n")
    assert message.startswith(f"connection map '{path}': invalid YAML at line 4, column ")


@pytest.mark.parametrize("content", ["- acme\n- globex\n", "acme\n", "7\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, content: str) -> None:
    path = tmp_path / "connections.yaml"
    assert error_for(path, content) == f"connection map '{path}': top level must be a mapping"


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConnectionMapError) as caught:
        load_connection_map(path)
    assert str(caught.value) == (
        f"connection map '{path}': cannot read file: No such file or directory"
    )


# -- ConnectionMapFile ----------------------------------------------------------------------


def test_a_bad_file_at_start_up_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "connections.yaml", {"connections": [{"id": "acme"}]})
    with pytest.raises(ConnectionMapError, match=r"connections\[0\] \(id 'acme'\)\.protocol"):
        ConnectionMapFile(path)


def test_an_unchanged_file_is_not_reloaded(map_path: Path) -> None:
    store = ConnectionMapFile(map_path)
    first = store.current
    assert store.reload_if_changed() is False
    assert store.current is first
    assert store.last_error is None


def test_a_changed_file_is_swapped_in(map_path: Path) -> None:
    store = ConnectionMapFile(map_path)
    old = store.current
    write(map_path, {"version": 2, "connections": [entry("acme"), entry("globex")]})

    assert store.reload_if_changed() is True

    assert store.current.version == 2
    assert store.current.get("globex") is not None
    assert old.get("globex") is None, "a reader holding the old map keeps a consistent view"
    assert store.reload_if_changed() is False


def test_an_in_place_edit_is_noticed(map_path: Path) -> None:
    store = ConnectionMapFile(map_path)
    map_path.write_text(
        yaml.safe_dump({"version": 2, "connections": [entry("acme", assessment="blocked")]}),
        encoding="utf-8",
    )
    assert store.reload_if_changed() is True
    acme = store.current.get("acme")
    assert acme is not None and not acme.migratable


def test_a_bad_file_keeps_the_old_map_and_records_the_error(map_path: Path) -> None:
    store = ConnectionMapFile(map_path)
    good = store.current
    write(map_path, {"version": 2, "connections": [entry("acme"), entry("acme")]})

    with pytest.raises(ConnectionMapError, match="appears more than once"):
        store.reload_if_changed()

    assert store.current is good
    assert store.last_error is not None and "appears more than once" in store.last_error
    assert str(map_path) in store.last_error
    assert store.reload_if_changed() is False, "the same bad file is not re-read every poll"
    assert store.current is good and store.last_error is not None

    write(map_path, {"version": 3, "connections": [entry("acme"), entry("globex")]})
    assert store.reload_if_changed() is True
    assert store.current.version == 3
    assert store.last_error is None


def test_a_deleted_file_keeps_the_old_map(map_path: Path) -> None:
    store = ConnectionMapFile(map_path)
    good = store.current
    map_path.unlink()

    with pytest.raises(ConnectionMapError, match="cannot read file"):
        store.reload_if_changed()

    assert store.current is good
    assert store.last_error is not None and "cannot read file" in store.last_error
    write(map_path, {"version": 5, "connections": [entry("acme")]})
    assert store.reload_if_changed() is True
    assert store.current.version == 5 and store.last_error is None


# -- save_connection_map --------------------------------------------------------------------


def test_a_saved_map_loads_back_the_same(tmp_path: Path) -> None:
    from connection_map import ConnectionMapDocument, read_connection_map_document
    from connection_map.file_store import save_connection_map

    document = read_connection_map_document(EXAMPLE)
    path = tmp_path / "connections.yaml"
    save_connection_map(path, document)
    assert read_connection_map_document(path) == document
    text = path.read_text()
    assert "assessment: transparent" not in text, "defaults are left out"
    assert text.startswith("# The connection map")
    assert ConnectionMapDocument.model_validate(yaml.safe_load(text)) == document


def test_saving_keeps_the_file_mode_and_leaves_no_temp_file(map_path: Path) -> None:
    from connection_map import read_connection_map_document
    from connection_map.file_store import save_connection_map

    map_path.chmod(0o640)
    document = read_connection_map_document(map_path)
    save_connection_map(map_path, document.model_copy(update={"version": 9}))
    assert (map_path.stat().st_mode & 0o777) == 0o640
    assert read_connection_map_document(map_path).version == 9
    assert [p.name for p in map_path.parent.iterdir()] == [map_path.name]


def test_a_document_the_loader_would_refuse_is_never_written(map_path: Path) -> None:
    from pydantic import ValidationError

    from connection_map import read_connection_map_document
    from connection_map.file_store import save_connection_map

    before = map_path.read_bytes()
    document = read_connection_map_document(map_path)
    twice = document.model_copy(update={"connections": document.connections * 2})
    with pytest.raises(ValidationError, match="appears more than once"):
        save_connection_map(map_path, twice)
    assert map_path.read_bytes() == before


def test_saving_the_map_makes_the_rename_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A power loss after `connections import` must not bring the old map back: the new file is
    # fsynced before the rename and the directory after it.
    from connection_map import ConnectionMapDocument, save_connection_map

    steps = record_durability_steps(monkeypatch)
    path = tmp_path / "connections.yaml"
    save_connection_map(path, ConnectionMapDocument.model_validate({"connections": [entry("a")]}))
    assert steps == ["file", "rename", "dir"]
    assert len(load_connection_map(path)) == 1
