"""Turn pydantic validation errors into "key 'a.b': problem (got value)" messages for operators."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

_MAX_SHOWN_CHARS = 40

# Built-in pydantic error types, reworded; errors raised by our own validators already read well.
_PROBLEMS: dict[str, str] = {
    "extra_forbidden": "unknown key",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "greater_than_equal": "must be >= {ge}",
    "string_type": "must be a string (quote it in YAML)",
    "string_too_short": "must not be empty",
    "bool_type": "must be true or false",
    "float_type": "must be a number",
    "finite_number": "must be a finite number",
    "tuple_type": "must be a list",
    "mapping_type": "must be a mapping",
    "dict_type": "must be a mapping",
    "literal_error": "must be {expected}",
}
_NO_ECHO = {"extra_forbidden", "connection_id", "stage_percent"}


def describe_validation_error(exc: ValidationError, *, allowed_keys: Sequence[str] = ()) -> str:
    """Problems joined with '; ', e.g. ``key 'overrides.acme': must be 'on' or 'off' (got 'x')``."""
    problems = [_describe(error) for error in exc.errors()]
    if allowed_keys and any(error["type"] == "extra_forbidden" for error in exc.errors()):
        problems.append(f"allowed keys: {', '.join(allowed_keys)}")
    return "; ".join(problems)


def _describe(error: ErrorDetails) -> str:
    template = _PROBLEMS.get(error["type"])
    problem = template.format(**error.get("ctx", {})) if template else error["msg"]
    if error["type"] not in _NO_ECHO:
        problem = f"{problem} (got {describe_value(error['input'])})"
    return f"key {_dotted(error['loc'])!r}: {problem}"


def _dotted(loc: tuple[int | str, ...]) -> str:
    path = ""
    for index, part in enumerate(loc):
        if part == "[key]":
            continue  # pydantic's marker for "the mapping key itself"; the path already names it
        names_mapping_key = loc[index + 1 : index + 2] == ("[key]",)
        if isinstance(part, int) and not names_mapping_key:
            path += f"[{part}]"
        else:
            path += ("." if path else "") + _clip(str(part))
    return path or "(top level)"


def describe_value(value: Any) -> str:
    """A short, single-line rendering of a value from the file, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return repr(_clip(value))
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _clip(text: str) -> str:
    # Keys and values can be anything a human typed; keep messages to one short, printable line.
    printable = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(text))
    if len(printable) > _MAX_SHOWN_CHARS:
        return printable[: _MAX_SHOWN_CHARS - 3] + "..."
    return printable
