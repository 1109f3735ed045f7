"""What a new connection map changes against the live one: connections added, removed, and
changed field by field (dotted paths such as ``new_provider.url``).

Fields are compared as the map stores them (JSON, defaults included), so a change a replica
would see is a change here, and a re-ordered file with the same content is no change at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connection_map.model import Connection, ConnectionMapDocument


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of one connection: its value before and after (None: absent)."""

    field: str
    before: Any
    after: Any


@dataclass(frozen=True, slots=True)
class ConnectionChange:
    id: str
    fields: tuple[FieldChange, ...]


@dataclass(frozen=True, slots=True)
class MapDiff:
    """Connections added, removed and changed, each in id order."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[ConnectionChange, ...]

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def to_json(self) -> dict[str, Any]:
        return {
            "added": list(self.added),
            "removed": list(self.removed),
            "changed": [
                {
                    "id": change.id,
                    "fields": [
                        {"field": f.field, "before": f.before, "after": f.after}
                        for f in change.fields
                    ],
                }
                for change in self.changed
            ],
        }


def diff_maps(live: ConnectionMapDocument | None, new: ConnectionMapDocument) -> MapDiff:
    """The changes `new` makes to `live` (None: no map yet, every connection is added)."""
    before = {c.id: c for c in live.connections} if live is not None else {}
    after = {c.id: c for c in new.connections}
    changed = []
    for connection_id in sorted(before.keys() & after.keys()):
        fields = connection_field_changes(before[connection_id], after[connection_id])
        if fields:
            changed.append(ConnectionChange(connection_id, fields))
    return MapDiff(
        added=tuple(sorted(after.keys() - before.keys())),
        removed=tuple(sorted(before.keys() - after.keys())),
        changed=tuple(changed),
    )


def connection_field_changes(before: Connection, after: Connection) -> tuple[FieldChange, ...]:
    """The fields that differ, by dotted path, in path order."""
    old = _flatten(before.model_dump(mode="json"))
    new = _flatten(after.model_dump(mode="json"))
    return tuple(
        FieldChange(path, old.get(path), new.get(path))
        for path in sorted(old.keys() | new.keys())
        if old.get(path) != new.get(path)
    )


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested objects become dotted paths; lists stay whole values (a list is one fact)."""
    if isinstance(value, dict) and (value or not prefix):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}
