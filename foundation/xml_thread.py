"""Reading untrusted XML on a thread that is replaced, so memory stays bounded.

libxml2 interns every element, attribute and namespace name it meets in a dictionary per
thread, and lxml never empties it: a stream of documents full of unique names (one client can
send thousands a second, each within the body cap) grows a long-lived thread's dictionary for
ever. The dictionary of a thread that ends is freed. So the hot path reads its documents on a
worker thread of its own and starts a new one once the old has read a byte budget: whatever a
client sends, the names kept are bounded by that budget.

The caller waits for the answer (parsing stays as synchronous as it was): handing a document
to a waiting thread and back costs a few microseconds, against the parse's tens.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, Final, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_BUDGET_BYTES: Final = 1024 * 1024


class _Worker:
    """One thread that runs the calls it is handed, one at a time, until told to stop."""

    def __init__(self, name: str) -> None:
        self.read_bytes = 0
        self._calls: queue.SimpleQueue[tuple[Callable[[Any], Any], Any] | None] = (
            queue.SimpleQueue()
        )
        self._answers: queue.SimpleQueue[tuple[bool, object]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def call(self, function: Callable[[T], R], argument: T) -> R:
        self._calls.put((function, argument))
        ok, value = self._answers.get()
        if ok:
            return value  # type: ignore[return-value]
        assert isinstance(value, BaseException)
        raise value

    def stop(self) -> None:
        self._calls.put(None)

    def _run(self) -> None:
        while True:
            item = self._calls.get()
            if item is None:
                return
            function, argument = item
            try:
                self._answers.put((True, function(argument)))
            except Exception as exc:  # handed back to the caller, raised there
                self._answers.put((False, exc))


class RecyclingReader(Generic[T, R]):
    """Runs `read(document)` on a worker thread, replaced after `budget_bytes` of documents.

    `read` must return plain values (no lxml element: it would keep the old thread's
    dictionary alive). Safe to call from several threads: calls are serialised.
    """

    def __init__(
        self,
        read: Callable[[T], R],
        size: Callable[[T], int],
        *,
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
        name: str = "xml-reader",
    ) -> None:
        self._read = read
        self._size = size
        self._budget = budget_bytes
        self._name = name
        self._lock = threading.Lock()
        self._worker: _Worker | None = None
        self.generations = 0  # how many worker threads have been started (for tests, metrics)

    def __call__(self, document: T) -> R:
        with self._lock:
            worker = self._worker
            if worker is None or worker.read_bytes >= self._budget:
                if worker is not None:
                    worker.stop()
                worker = self._worker = _Worker(f"{self._name}-{self.generations}")
                self.generations += 1
            worker.read_bytes += self._size(document)
            return worker.call(self._read, document)
