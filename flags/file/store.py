"""Reading and atomically writing the rollout state file (format: see ``flags.file.format``)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from flags.file.format import (
    MAX_FILE_BYTES,
    FlagFileError,
    parse_rollout_state,
    render_rollout_state,
)
from flags.state import RolloutState
from foundation.atomic_file import write_file_atomically

FileSignature = tuple[int, int, int]
"""(st_mtime_ns, st_size, st_ino): changes whenever the file is rewritten or replaced."""


@dataclass(frozen=True, slots=True)
class FlagFileSnapshot:
    """The bytes of the flag file and the signature of exactly the file they were read from."""

    signature: FileSignature
    data: bytes


def file_signature(path: str | os.PathLike[str]) -> FileSignature:
    """Stat the file; raise ``OSError`` (e.g. ``FileNotFoundError``) if it can't be."""
    return _signature(os.stat(path))


def read_flag_file(path: str | os.PathLike[str]) -> FlagFileSnapshot:
    """Read the file (one byte past the size cap, so an oversized file is detected)."""
    try:
        with open(path, "rb") as handle:
            # fstat of the open handle: the signature belongs to the bytes we read even if the
            # path is replaced meanwhile, so a later replace is always seen as a change.
            signature = _signature(os.fstat(handle.fileno()))
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        problem = exc.strerror or type(exc).__name__
        raise FlagFileError(f"flags file {os.fspath(path)!r}: cannot read: {problem}") from None
    return FlagFileSnapshot(signature, data)


def load_rollout_state(path: str | os.PathLike[str]) -> RolloutState:
    """Read and validate a rollout state file (YAML or JSON); raise ``FlagFileError``."""
    snapshot = read_flag_file(path)
    return parse_rollout_state(snapshot.data, os.fspath(path))


def write_rollout_state(path: str | os.PathLike[str], state: RolloutState) -> None:
    """Write the state atomically and durably (``foundation.atomic_file``).

    Readers (the file provider) see either the old or the new file, never a partial one.
    ``*.json`` paths get JSON, anything else YAML. The state is re-validated first, so a state
    built with ``model_copy(update=...)`` can't produce a file the loader would reject.
    """
    name = os.fspath(path)
    checked = RolloutState.model_validate(state.model_dump())
    data = render_rollout_state(checked, as_json=name.endswith(".json"))
    write_file_atomically(name, data)


def _signature(st: os.stat_result) -> FileSignature:
    return (st.st_mtime_ns, st.st_size, st.st_ino)
