"""The export's state: an NDJSON file of import lines and, beside it, the cursor that goes with it.

`users.ndjson` holds the users exported so far, one import line each; `users.ndjson.cursor`
(replaced atomically: foundation/atomic_file) records the source, the cursor of the next page and
how many bytes of the NDJSON file that cursor covers. A page is appended and fsynced first, the
cursor written second: a kill between the two leaves bytes the cursor does not cover, which the
resumed run cuts off and fetches again. So a resumed export has no gap and no duplicate; a user
a source lists twice (offset paging while users are added) is kept once, by its external_id.
Both files are created 0600: they hold password hashes where the source exports them.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from foundation.atomic_file import write_file_atomically

FORMAT = 1
_PRIVATE = 0o600


class StateRefused(Exception):
    """The state file belongs to another source or can't be read; the message says what to do."""


@dataclass
class ExportState:
    path: Path
    source: str
    cursor: str | None = None
    done: bool = False
    size: int = 0  # bytes of `path` the cursor covers
    users: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    seen: set[str] = field(default_factory=set)  # external_ids (emails without one) written

    @property
    def cursor_path(self) -> Path:
        return self.path.with_name(self.path.name + ".cursor")

    @classmethod
    def open(cls, path: Path, source: str, *, restart: bool = False) -> ExportState:
        """The state of an export of `source` into `path`: resumed, or new when there is none
        (or `restart`)."""
        state = cls(path, source)
        if restart:
            state.cursor_path.unlink(missing_ok=True)
        try:
            raw = json.loads(state.cursor_path.read_bytes())
        except FileNotFoundError:
            if path.exists() and path.stat().st_size and not restart:
                raise StateRefused(
                    f"'{path}' exists but has no cursor file: it is not an export in progress "
                    "(give another file, or --restart to overwrite it)"
                ) from None
            state._start_file()
            return state
        except (OSError, ValueError) as exc:
            raise StateRefused(f"'{state.cursor_path}' can't be read ({exc})") from None
        state._resume(raw)
        return state

    def append(self, lines: list[dict[str, Any]], skipped: list[str], cursor: str | None) -> int:
        """Write a page's new lines, then move the cursor past it; returns the lines written."""
        data = bytearray()
        written = 0
        for line in lines:
            key = _key(line)
            if key in self.seen:
                continue
            self.seen.add(key)
            data += json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
            written += 1
        with self.path.open("r+b") as file:
            file.seek(self.size)
            file.write(data)
            file.truncate()
            file.flush()
            os.fsync(file.fileno())
        self.size += len(data)
        self.users += written
        self.skipped.update(skipped)
        self.cursor, self.done = cursor, cursor is None
        self._write_cursor()
        return written

    def _start_file(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _PRIVATE)
        try:
            os.fchmod(fd, _PRIVATE)  # a file overwritten by --restart may have had other modes
        finally:
            os.close(fd)
        self._write_cursor()

    def _resume(self, raw: Any) -> None:
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise StateRefused(f"'{self.cursor_path}' is not an export cursor file")
        if raw.get("source") != self.source:
            raise StateRefused(
                f"'{self.path}' is an export of {raw.get('source')}, not of {self.source} "
                "(give another file, or --restart to start this export over)"
            )
        self.cursor, self.done = raw["cursor"], bool(raw["done"])
        self.size, self.users = int(raw["size"]), int(raw["users"])
        self.skipped = Counter(raw["skipped"])
        try:
            with self.path.open("r+b") as file:
                covered = file.read(self.size)
                file.truncate(self.size)  # a page written after the last cursor: fetched again
        except FileNotFoundError:
            raise StateRefused(f"'{self.path}' is gone but its cursor file is not") from None
        if len(covered) != self.size:
            raise StateRefused(f"'{self.path}' is shorter than its cursor says: --restart")
        for text in covered.splitlines():
            self.seen.add(_key(json.loads(text)))

    def _write_cursor(self) -> None:
        document = {
            "format": FORMAT,
            "source": self.source,
            "cursor": self.cursor,
            "done": self.done,
            "size": self.size,
            "users": self.users,
            "skipped": dict(self.skipped),
        }
        write_file_atomically(
            self.cursor_path, json.dumps(document, indent=2).encode() + b"\n", mode=_PRIVATE
        )


def _key(line: dict[str, Any]) -> str:
    external_id = line.get("external_id")
    return "x " + external_id if isinstance(external_id, str) else "e " + line["email"].casefold()
