"""Loading the connection map from its YAML file, and noticing when the file changes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from connection_map.gc_pause import collection_paused, return_free_memory
from connection_map.index import ConnectionMap
from connection_map.map_health import MapHealth
from connection_map.model import ConnectionMapDocument
from connection_map.served import pack_records, unpack_records
from foundation.atomic_file import write_file_atomically
from foundation.strict_yaml import YamlDocumentError, load_yaml_mapping


class ConnectionMapError(Exception):
    """The connection map file can't be used; the message names the file, the key and why."""


def load_connection_map(path: str | os.PathLike[str]) -> ConnectionMap:
    """Read, validate and index a connection map file."""
    file = Path(path)
    with collection_paused():
        document = _read_document(file)
        version, packed = document.version, pack_records(document.connections)
        del document  # free the full models before the records are made (see pack_records)
    return_free_memory()
    return ConnectionMap.from_records(version, unpack_records(packed), source=str(file))


def read_connection_map_document(path: str | os.PathLike[str]) -> ConnectionMapDocument:
    """Read and validate a map file without indexing it (for tools that rewrite it)."""
    return _read_document(Path(path))


def _read_document(file: Path) -> ConnectionMapDocument:
    try:
        raw = load_yaml_mapping(file.read_bytes())
    except OSError as exc:
        raise ConnectionMapError(
            f"connection map '{file}': cannot read file: {exc.strerror}"
        ) from None
    except YamlDocumentError as exc:
        raise ConnectionMapError(f"connection map '{file}': {exc}") from None
    try:
        return ConnectionMapDocument.model_validate(raw)
    except ValidationError as exc:
        where = f"connection map '{file}'"
        raise ConnectionMapError(describe_invalid_map(where, raw, exc)) from None


def save_connection_map(path: str | os.PathLike[str], document: ConnectionMapDocument) -> None:
    """Write the map atomically and durably (``foundation.atomic_file``).

    The proxy reloading the file sees the old map or the new one, never a mix. Comments in the
    old file are not kept. The document is validated again first, so nothing the loader would
    refuse can be written.
    """
    target = Path(path)
    checked = ConnectionMapDocument.model_validate(document.model_dump())
    data = render_connection_map(checked)
    write_file_atomically(target, data)


def render_connection_map(document: ConnectionMapDocument) -> bytes:
    """The map as YAML: defaults left out, certificates as literal blocks."""
    raw = document.model_dump(mode="json", exclude_defaults=True)
    raw.setdefault("version", document.version)
    raw.setdefault("connections", [])
    text = yaml.dump(raw, Dumper=_MapDumper, sort_keys=False, allow_unicode=True, width=100)
    return ("# The connection map: one entry per SSO connection.\n" + text).encode("utf-8")


class _MapDumper(yaml.SafeDumper):
    pass


def _represent_str(dumper: yaml.SafeDumper, value: str) -> Any:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_MapDumper.add_representer(str, _represent_str)


def describe_invalid_map(where: str, raw: dict[str, object], exc: ValidationError) -> str:
    """One message naming `where`, each row (index and id) and field, and the problem."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        location = list(error["loc"])
        if len(location) >= 2 and location[0] == "connections" and isinstance(location[1], int):
            row = raw.get("connections")
            index = location[1]
            cid = None
            if isinstance(row, list) and index < len(row) and isinstance(row[index], dict):
                cid = row[index].get("id")
            label = f"connections[{index}]" + (f" (id {cid!r})" if isinstance(cid, str) else "")
            key = ".".join([label, *(str(part) for part in location[2:])])
        else:
            key = ".".join(str(part) for part in location) or "(top level)"
        problems.append(f"key '{key}': {error['msg']}")
    return f"{where}: " + "; ".join(problems)


class ConnectionMapFile:
    """A map file re-read when it changes; a bad file never replaces a good map."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._signature = _signature(self.path)
        self.current = load_connection_map(self.path)
        self.last_error: str | None = None

    def reload_if_changed(self) -> bool:
        """Swap in the file's new content if it changed and is valid; True when swapped."""
        signature = _signature(self.path)
        if signature == self._signature:
            return False
        self._signature = signature
        try:
            fresh = load_connection_map(self.path)
        except ConnectionMapError as exc:
            self.last_error = str(exc)
            raise
        self.current = fresh
        self.last_error = None
        return True

    def health(self) -> MapHealth:
        current = self.current
        return MapHealth(
            backend="file",
            source=str(self.path),
            loaded=True,
            version=current.version,
            connections=len(current),
            stale=False,
            stale_seconds=None,
            last_error=self.last_error,
        )


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)
