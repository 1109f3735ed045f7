"""The import checkpoint: which batches are done, so a re-run after a crash skips them.

A JSON file (by default next to the input: `FILE.ndjson.checkpoint`) holding the input's
SHA-256, the batch size, the completed batches as ranges and their totals. It is replaced
atomically (temp file, fsync, rename, fsync of the directory): a crash leaves the old or the new
version, never a torn one. A batch that was in flight is simply not in it and is redone.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from foundation.atomic_file import write_file_atomically

FORMAT = 1


class CheckpointRefused(Exception):
    """The checkpoint belongs to another input or other settings; the message says what to do."""


@dataclass
class Checkpoint:
    path: Path
    input_sha256: str
    batch_size: int
    completed: set[int] = field(default_factory=set)
    # Batches whose creates were sent but which did not complete: a user found there already
    # may be one this import created, so it counts as already present, never as a conflict.
    started: set[int] = field(default_factory=set)
    totals: Counter[str] = field(default_factory=Counter)  # created / updated / exists

    @classmethod
    def open(cls, path: Path, input_sha256: str, batch_size: int) -> Checkpoint:
        """The checkpoint at `path` if it matches this input, or a new empty one."""
        try:
            raw = json.loads(path.read_bytes())
        except FileNotFoundError:
            return cls(path, input_sha256, batch_size)
        except (OSError, ValueError) as exc:
            raise CheckpointRefused(
                f"checkpoint '{path}' can't be read ({exc}); delete it"
            ) from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise CheckpointRefused(f"checkpoint '{path}' is not a users-import checkpoint")
        if raw.get("input_sha256") != input_sha256:
            raise CheckpointRefused(
                f"checkpoint '{path}' was written for a different input file (its SHA-256 "
                "changed): resume with the original file, or delete the checkpoint to import "
                "this one from the start"
            )
        if raw.get("batch_size") != batch_size:
            raise CheckpointRefused(
                f"checkpoint '{path}' was written with --batch-size {raw.get('batch_size')}: "
                "resume with that batch size"
            )
        return cls(
            path,
            input_sha256,
            batch_size,
            _indices(raw.get("completed", [])),
            _indices(raw.get("started", [])),
            Counter(raw.get("totals", {})),
        )

    def record(self, batch: int, tally: Counter[str]) -> None:
        self.completed.add(batch)
        self.started.discard(batch)
        self.totals.update(tally)

    def document(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "input_sha256": self.input_sha256,
            "batch_size": self.batch_size,
            "completed": _ranges(self.completed),
            "started": _ranges(self.started),
            "totals": dict(self.totals),
        }

    def write(self, document: dict[str, Any]) -> None:
        """Replace the file atomically with `document` (taken on the event loop, written here)."""
        write_atomically(self.path, json.dumps(document).encode())

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` (owner-only: it names the users imported)."""
    write_file_atomically(path, data, mode=0o600)


def _indices(ranges: list[list[int]]) -> set[int]:
    return {index for first, last in ranges for index in range(first, last + 1)}


def _ranges(indices: set[int]) -> list[list[int]]:
    ranges: list[list[int]] = []
    for index in sorted(indices):
        if ranges and ranges[-1][1] == index - 1:
            ranges[-1][1] = index
        else:
            ranges.append([index, index])
    return ranges
