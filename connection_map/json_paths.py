"""Records whose fields say where they live in the map's JSON, and the code derived from that.

A served record (``served.ServedConnection``) is a NamedTuple whose fields carry a
:class:`JsonPath` in their ``Annotated`` metadata. From those declarations this module writes,
once at import time, the functions that move a record between its forms: from the full model,
to and from the map's JSON, to and from ``marshal`` rows, and the TypedDict pydantic validates
the JSON with. The functions are generated as source text and compiled (not interpreted field
by field) because a replica runs them 100 000 times per map: generated, they are the same
straight-line code one would write by hand. :func:`record_source` shows that code.

A field is one of: a value at the top level (``JsonPath("id")``), a value in a section
(``JsonPath("saml", "idp_entity_id")``, absent with its section), or a nested record
(``ServedTarget | None``, its own fields declared the same way). Enum values travel as their
``.value`` in JSON and marshal rows; a field with a default is left out of the JSON when it has it
(unless ``always_written``).
"""

from __future__ import annotations

from enum import Enum
from types import NoneType
from typing import (
    Annotated,
    Any,
    NamedTuple,
    NotRequired,
    Required,
    get_args,
    get_origin,
    get_type_hints,
)

from typing_extensions import TypedDict

_REQUIRED = object()  # the default of a field that has none


class JsonPath:
    """Where a record field lives in the map's JSON.

    ``schema``: the type pydantic validates the JSON value with, when it is not the field's own
    (a URL validated as ``HttpUrl`` and kept as its text). ``always_written``: the JSON holds the
    value even when it is the field's default.
    """

    __slots__ = ("always_written", "keys", "schema")

    def __init__(self, *keys: str, schema: object = None, always_written: bool = False) -> None:
        if not 1 <= len(keys) <= 2:
            raise TypeError(f"a JSON path is a key or a section and a key, not {keys!r}")
        self.keys = keys
        self.schema = schema
        self.always_written = always_written


class _Field(NamedTuple):
    name: str
    path: JsonPath
    hint: Any  # the field's type without the JsonPath
    default: Any  # _REQUIRED when the field has none
    enum: type[Enum] | None
    record: type[tuple[Any, ...]] | None  # a nested record (its field is `Record | None`)


def record_fields(record: type[tuple[Any, ...]]) -> list[_Field]:
    """The declared fields of `record`, in order; TypeError when one has no JsonPath."""
    hints = get_type_hints(record, include_extras=True)
    defaults: dict[str, Any] = getattr(record, "_field_defaults", {})
    fields: list[_Field] = []
    for name in getattr(record, "_fields", ()):
        hint = hints[name]
        paths = [m for m in getattr(hint, "__metadata__", ()) if isinstance(m, JsonPath)]
        if get_origin(hint) is not Annotated or len(paths) != 1:
            raise TypeError(f"{record.__name__}.{name} needs one JsonPath in Annotated[...]")
        bare = _without(hint, paths[0])
        inner = [a for a in get_args(bare) if a is not NoneType] or [bare]
        nested = inner[0] if _is_record(inner[0]) else None
        default = defaults.get(name, _REQUIRED)
        if nested is not None and (default is not None or len(paths[0].keys) != 1):
            raise TypeError(f"{record.__name__}.{name}: a nested record is optional, at the top")
        if len(paths[0].keys) == 2 and default is _REQUIRED:
            raise TypeError(f"{record.__name__}.{name}: a field in a section needs a default")
        enum = inner[0] if isinstance(inner[0], type) and issubclass(inner[0], Enum) else None
        fields.append(_Field(name, paths[0], bare, default, enum, nested))
    return fields


def _without(hint: Any, path: JsonPath) -> Any:
    rest = tuple(m for m in hint.__metadata__ if m is not path)
    return Annotated[(hint.__origin__, *rest)] if rest else hint.__origin__


def _is_record(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, tuple) and hasattr(kind, "_fields")


# -- the validation schema -------------------------------------------------------------------


def record_schema(
    record: type[tuple[Any, ...]],
    *,
    also: dict[tuple[str, str], Any] | None = None,
    order: list[str] | None = None,
) -> Any:
    """The TypedDict pydantic validates `record`'s JSON with.

    ``also``: section keys validated but not kept (``{("legacy", "sp_entity_id"): Text | None}``);
    ``order``: the top-level keys in the order the full model declares them (so errors come
    in the same order as the full validation's).
    """
    top: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}
    for f in record_fields(record):
        if len(f.path.keys) == 2:
            sections.setdefault(f.path.keys[0], {})[f.path.keys[1]] = _value_schema(f)
            continue
        schema = _value_schema(f)
        top[f.path.keys[0]] = Required[schema] if f.default is _REQUIRED else NotRequired[schema]
    for (section, key), schema in (also or {}).items():
        sections.setdefault(section, {})[key] = schema
    for section, keys in sections.items():
        top[section] = _typed_dict(f"_{section.title()}", keys) | None
    if order is not None:
        top = dict(sorted(top.items(), key=lambda item: order.index(item[0])))
    return _typed_dict(f"_{record.__name__}", top)


def _value_schema(f: _Field) -> Any:
    if f.record is not None:
        return record_schema(f.record) | None
    return f.path.schema if f.path.schema is not None else f.hint


def _typed_dict(name: str, keys: dict[str, Any]) -> Any:
    make: Any = TypedDict  # a TypedDict made from a computed dict, which the type checker can't see
    return make(name, keys, total=False)


# -- the generated functions -----------------------------------------------------------------


class _Writer:
    """Source text of the derived functions, and the names that text refers to."""

    def __init__(self) -> None:
        self.names: dict[str, Any] = {}
        self.counter = 0

    def name(self, wanted: str, value: Any) -> str:
        """`wanted` (or `wanted` numbered, when taken by another value) bound to `value`."""
        name, n = wanted, 1
        while name in self.names and self.names[name] is not value:
            n += 1
            name = f"{wanted}_{n}"
        self.names[name] = value
        return name

    def temporary(self) -> str:
        self.counter += 1
        return f"_t{self.counter}"

    def default(self, f: _Field) -> str:
        return self.name(f"_{f.name}_default", f.default)

    # a record from a full model object (`source` is an expression holding it)
    def from_model(self, record: type[tuple[Any, ...]], source: str) -> str:
        values = []
        for f in record_fields(record):
            keys = f.path.keys
            if f.record is not None:
                t = self.temporary()
                nested = self.from_model(f.record, t)
                value = f"({nested} if ({t} := {source}.{keys[0]}) is not None else None)"
            elif len(keys) == 2:
                s = self.temporary()
                value = (
                    f"({s}.{keys[1]} if ({s} := {source}.{keys[0]}) is not None "
                    f"else {self.default(f)})"
                )
            else:
                value = f"{source}.{keys[0]}"
            values.append(f"str({value})" if f.path.schema is not None else value)
        return f"{self.name(record.__name__, record)}({', '.join(values)})"

    # a record from a validated JSON dict
    def from_json(self, record: type[tuple[Any, ...]], source: str) -> str:
        values = []
        for f in record_fields(record):
            keys = f.path.keys
            get = f'{source}["{keys[0]}"]' if f.default is _REQUIRED else None
            if f.record is not None:
                t = self.temporary()
                nested = self.from_json(f.record, t)
                value = f'({nested} if ({t} := {source}.get("{keys[0]}")) else None)'
            elif len(keys) == 2:
                s, d = self.temporary(), self.default(f)
                value = (
                    f'({s}.get("{keys[1]}", {d}) if ({s} := {source}.get("{keys[0]}")) else {d})'
                )
            else:
                value = get or f'{source}.get("{keys[0]}", {self.default(f)})'
            values.append(f"str({value})" if f.path.schema is not None else value)
        return f"{self.name(record.__name__, record)}({', '.join(values)})"

    # statements filling the dict named `row` from the record in `source`
    def to_json(
        self, record: type[tuple[Any, ...]], source: str, row: str, indent: str
    ) -> list[str]:
        lines = []
        for f in record_fields(record):
            keys = f.path.keys
            value = f"{source}.{f.name}"
            into = f'{row}.setdefault("{keys[0]}", {{}})' if len(keys) == 2 else row
            if f.record is not None:
                t, sub = self.temporary(), self.temporary()
                lines.append(f"{indent}if ({t} := {value}) is not None:")
                lines.append(f"{indent}    {sub}: dict[str, Any] = {{}}")
                lines += self.to_json(f.record, t, sub, indent + "    ")
                lines.append(f'{indent}    {row}["{keys[0]}"] = {sub}')
                continue
            write = f'{into}["{keys[-1]}"] = {value}{".value" if f.enum else ""}'
            if f.default is _REQUIRED or f.path.always_written:
                lines.append(f"{indent}{write}")
            else:
                differs = (
                    "is not" if f.default is None or isinstance(f.default, bool | Enum) else "!="
                )
                lines.append(f"{indent}if {value} {differs} {self.default(f)}:")
                lines.append(f"{indent}    {write}")
        return lines

    # a marshal row (a tuple of plain values) from the record in `source`
    def to_row(self, record: type[tuple[Any, ...]], source: str) -> str:
        values = []
        for f in record_fields(record):
            value = f"{source}.{f.name}"
            if f.record is not None:
                t = self.temporary()
                value = f"({self.to_row(f.record, t)} if ({t} := {value}) is not None else None)"
            elif f.enum is not None:
                value += ".value"  # marshal takes plain strings, not enum members
            values.append(value)
        return f"({', '.join(values)}{',' if len(values) == 1 else ''})"

    # a record from the marshal row in `source`
    def from_row(self, record: type[tuple[Any, ...]], source: str) -> str:
        values = []
        for n, f in enumerate(record_fields(record)):
            value = f"{source}[{n}]"
            if f.record is not None:
                value = f"({self.from_row(f.record, value)} if {value} is not None else None)"
            elif f.enum is not None:
                members = {member.value: member for member in f.enum}
                value = f"{self.name(f'_{f.enum.__name__}_members', members)}[{value}]"
            values.append(value)
        return f"{self.name(record.__name__, record)}({', '.join(values)})"


def record_source(record: type[tuple[Any, ...]]) -> tuple[str, dict[str, Any]]:
    """The source of the derived functions for `record`, and the names it refers to."""
    w = _Writer()
    row_lines = w.to_json(record, "record", "row", "    ")
    lines = [
        "def from_model(connection):",
        f"    return {w.from_model(record, 'connection')}",
        "",
        "def from_json(row):",
        f"    return {w.from_json(record, 'row')}",
        "",
        "def to_json(record):",
        "    row: dict[str, Any] = {}",
        *row_lines,
        "    return row",
        "",
        "def to_rows(records):",
        f"    return [{w.to_row(record, 'r')} for r in records]",
        "",
        "def from_rows(rows):",
        f"    return [{w.from_row(record, 'r')} for r in rows]",
    ]
    return "\n".join(lines) + "\n", w.names | {"Any": Any}


def record_functions(record: type[tuple[Any, ...]]) -> dict[str, Any]:
    """``from_model``, ``from_json``, ``to_json``, ``to_rows`` and ``from_rows`` for `record`."""
    source, namespace = record_source(record)
    exec(compile(source, f"<{record.__name__} fields>", "exec"), namespace)  # noqa: S102 (our text)
    return {
        name: namespace[name]
        for name in ("from_model", "from_json", "to_json", "to_rows", "from_rows")
    }


__all__ = ["JsonPath", "record_fields", "record_functions", "record_schema", "record_source"]
