"""Building a large map: pausing the cyclic collector meanwhile, returning freed memory after.

Building 100 000 connections allocates millions of container objects, none of them garbage;
each allocation burst triggers a collection that walks the whole growing heap again, which
doubles the load time at that size. Reference counting still frees everything meanwhile.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_paused = 0  # nesting depth across threads: the collector is process-wide
_was_enabled = False


@contextmanager
def collection_paused() -> Iterator[None]:
    """Disable the cyclic collector inside the block (re-enabled by the last one out)."""
    global _paused, _was_enabled
    with _lock:
        if _paused == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _paused += 1
    try:
        yield
    finally:
        with _lock:
            _paused -= 1
            if _paused == 0 and _was_enabled:
                gc.enable()


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None
    return trim


_TRIM = _malloc_trim()


def return_free_memory() -> None:
    """Give the heap freed by a map build back to the OS (glibc keeps it otherwise).

    Parsing a large map allocates and frees hundreds of megabytes in small pieces; without a
    trim the process's RSS stays at that peak although Python holds only the new index.
    """
    if _TRIM is not None:
        _TRIM(0)
