"""The one strict YAML loader: safe constructors, repeated keys refused, no content in errors."""

from __future__ import annotations

import pytest

from foundation.strict_yaml import YamlDocumentError, load_yaml, load_yaml_mapping


def test_a_repeated_key_is_refused_with_its_position() -> None:
    with pytest.raises(YamlDocumentError) as caught:
        load_yaml_mapping(b"redis:\n  url: redis://a\n  url: redis://b\n")
    assert str(caught.value) == "invalid YAML at line 3, column 3: duplicate key 'url'"
    assert (caught.value.line, caught.value.column) == (3, 3)


def test_a_repeated_key_in_a_nested_list_item_is_refused() -> None:
    with pytest.raises(YamlDocumentError, match="duplicate key 'id'"):
        load_yaml("connections:\n  - id: a\n    id: b\n")


def test_python_tags_are_not_constructed() -> None:
    with pytest.raises(YamlDocumentError, match="invalid YAML at line 1"):
        load_yaml(b"!!python/object/apply:os.system ['echo pwned']\n")


def test_a_syntax_error_names_the_position_but_never_the_line() -> None:
    with pytest.raises(YamlDocumentError) as caught:
        load_yaml_mapping(b"password: hunter2\n  bad: [unclosed\n")
    assert "hunter2" not in str(caught.value)
    assert str(caught.value).startswith("invalid YAML at line ")


@pytest.mark.parametrize(
    ("data", "problem"),
    [(b"", "the file is empty"), (b"- a\n- b\n", "top level must be a mapping")],
)
def test_a_mapping_is_required(data: bytes, problem: str) -> None:
    with pytest.raises(YamlDocumentError, match=problem):
        load_yaml_mapping(data)


def test_yaml_1_1_booleans_stay_what_pyyaml_reads() -> None:
    assert load_yaml("globex: on\nacme: 'on'\n") == {"globex": True, "acme": "on"}
