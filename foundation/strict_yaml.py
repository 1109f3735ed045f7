"""Reading YAML strictly: safe constructors only, and a repeated key is an error.

PyYAML's default keeps the last of two equal keys, so a config or map that says ``url`` twice
would silently use the second; here it is refused with its position. Error messages give the
position and the problem, never the offending line (it may hold a secret).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml


class YamlDocumentError(Exception):
    """The bytes are not the YAML document expected; the message never quotes file content."""

    def __init__(
        self,
        message: str,
        *,
        problem: str = "",
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message)
        self.problem = problem or message
        self.line = line
        self.column = column


# libyaml's parser when PyYAML was built with it (about 5x faster on a large map); the same
# safe constructors either way.
if TYPE_CHECKING:
    _BaseLoader = yaml.SafeLoader
else:
    _BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_BaseLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, list | dict):  # unhashable: PyYAML reports it itself
                continue
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(data: bytes | str) -> Any:
    """Parse one YAML document (None when empty); raise ``YamlDocumentError``.

    The message reads ``invalid YAML at line L, column C: problem``; ``line`` and ``column``
    (1-based) are on the exception for callers that phrase it their own way.
    """
    try:
        return yaml.load(data, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "unreadable"
        if mark is None:
            raise YamlDocumentError(f"invalid YAML: {problem}", problem=problem) from None
        line, column = mark.line + 1, mark.column + 1
        raise YamlDocumentError(
            f"invalid YAML at line {line}, column {column}: {problem}",
            problem=problem,
            line=line,
            column=column,
        ) from None
    except yaml.YAMLError as exc:
        raise YamlDocumentError(f"invalid YAML ({type(exc).__name__})") from None


def load_yaml_mapping(data: bytes | str) -> dict[str, Any]:
    """Parse ``data`` as one YAML mapping; raise ``YamlDocumentError`` (empty file included)."""
    document = load_yaml(data)
    if document is None:
        raise YamlDocumentError("the file is empty")
    if not isinstance(document, dict):
        raise YamlDocumentError("top level must be a mapping")
    return document
