"""Pausing Python's cyclic garbage collector while a large map is validated and indexed.

Building 100 000 connections allocates millions of container objects, none of them garbage;
each allocation burst triggers a collection that walks the whole growing heap again, which
doubles the load time at that size. Reference counting still frees everything meanwhile.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
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
