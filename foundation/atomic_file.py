"""Replacing a file atomically and durably: readers see the old bytes or the new, never a mix.

One rule for every file authswitch writes: a temporary file in the same directory (a rename
across file systems is not atomic), written and fsynced, renamed over the target, then the
directory fsynced so the rename itself survives a power loss.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile

NEW_FILE_MODE = 0o644


def write_file_atomically(
    path: str | os.PathLike[str], data: bytes, *, mode: int | None = None
) -> None:
    """Replace ``path`` with ``data``.

    ``mode`` None keeps the permissions of the file being replaced (``NEW_FILE_MODE`` for a new
    one), so a reader that could read the old file can read the new one; an explicit mode (e.g.
    0o600 for a file holding secrets) is set before any byte is written.
    """
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    final_mode = _existing_mode(target) if mode is None else mode
    fd, temp = tempfile.mkstemp(
        dir=directory, prefix=f".{os.path.basename(target)}.", suffix=".tmp"
    )
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), final_mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_directory(directory)


def _existing_mode(target: str) -> int:
    # mkstemp creates 0600: without this a rewritten map or flags file would become unreadable
    # to a proxy running as another user.
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        return NEW_FILE_MODE


def _fsync_directory(directory: str) -> None:
    if os.name != "posix":  # directories can't be opened for fsync on Windows
        return
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
