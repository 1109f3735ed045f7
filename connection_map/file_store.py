"""Loading the connection map from its YAML file, and noticing when the file changes."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import ValidationError

from connection_map.index import ConnectionMap
from connection_map.model import ConnectionMapDocument
from connection_map.yaml_document import YamlDocumentError, load_yaml_mapping


class ConnectionMapError(Exception):
    """The connection map file can't be used; the message names the file, the key and why."""


def load_connection_map(path: str | os.PathLike[str]) -> ConnectionMap:
    """Read, validate and index a connection map file."""
    file = Path(path)
    try:
        raw = load_yaml_mapping(file.read_bytes())
    except OSError as exc:
        raise ConnectionMapError(
            f"connection map '{file}': cannot read file: {exc.strerror}"
        ) from None
    except YamlDocumentError as exc:
        raise ConnectionMapError(f"connection map '{file}': {exc}") from None
    try:
        document = ConnectionMapDocument.model_validate(raw)
    except ValidationError as exc:
        raise ConnectionMapError(_describe(file, raw, exc)) from None
    return ConnectionMap.build(document, source=str(file))


def _describe(file: Path, raw: dict[str, object], exc: ValidationError) -> str:
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
    return f"connection map '{file}': " + "; ".join(problems)


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


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)
