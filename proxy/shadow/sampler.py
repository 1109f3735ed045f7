"""Sampling fall-through callbacks into a bounded queue, checked by a small pool of threads.

``offer`` runs on the event loop at the end of a callback: a rate lookup, a random draw and a
``put_nowait``; when the queue is full, or the checks have used their CPU budget
(``shadow.max_cpu_share``), the sample is dropped and counted, so a callback never waits for a
check and the checks never take the event loop's core (they run in threads, and parts of
python3-saml hold the GIL). The SAMLResponse lives only in the queue and the worker's frame;
nothing of it is stored or logged.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from proxy.ops import metrics
from proxy.shadow.cpu_budget import CpuBudget
from proxy.shadow.imports import ImportedConnections
from proxy.shadow.oidc_check import check_oidc_callback
from proxy.shadow.readiness_store import ReadinessStore, import_digest
from proxy.shadow.saml_check import check_saml_response
from proxy.shadow.settings import ShadowSettings

if TYPE_CHECKING:
    from proxy.callback.context import Callback

log = logging.getLogger("authswitch.shadow")
# connection id, protocol, SAMLResponse (saml) or the `iss` parameter (oidc), path (oidc)
_Sample = tuple[str, str, str | None, str]
_STOP = None
RECYCLE_AFTER_BYTES = 1024 * 1024  # of SAMLResponses read by one worker thread


class ShadowSampler:
    """Samples SAML callbacks that stayed on legacy and checks them off the critical path."""

    def __init__(
        self,
        settings: ShadowSettings,
        imports: ImportedConnections,
        store: ReadinessStore,
        *,
        max_connection_labels: int,
        draw: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
        budget: CpuBudget | None = None,
    ) -> None:
        self._settings = settings
        self._imports = imports
        self._store = store
        self._draw = draw
        self._clock = clock
        self._budget = budget or CpuBudget(settings.max_cpu_share)
        self._queue: queue.Queue[_Sample | None] = queue.Queue(settings.queue_size)
        self._threads: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()
        self._label = metrics.ConnectionLabels(max_connection_labels)
        self.queued = 0  # samples taken (event loop only, like `dropped`)
        self.dropped = 0  # queue full or CPU budget spent

    def offer(self, callback: Callback) -> None:
        """Queue the callback's SAMLResponse for a check if sampled; never blocks."""
        connection = callback.connection
        fields = callback.fields
        if connection is None or fields is None or callback.destination != "legacy":
            return
        rate = self._settings.rate(connection.id)
        if rate <= 0 or self._draw() >= rate:
            return
        if not self._budget.available():
            self._drop(connection.id, "cpu_budget")
            return
        if callback.match.route.protocol == "oidc":
            # Never the code or state: the issuer parameter (public) and the path only.
            item: _Sample = (connection.id, "oidc", fields.get("iss"), callback.scope["path"])
        else:
            value = fields.get("SAMLResponse")
            if value is None:
                return
            item = (connection.id, "saml", value, "")
        try:
            self._queue.put_nowait(item)
            self.queued += 1
        except queue.Full:
            self._drop(connection.id, "queue_full")

    def _drop(self, connection_id: str, reason: str) -> None:
        self.dropped += 1
        metrics.SHADOW_DROPPED.labels(self._label(connection_id), reason).inc()

    def start(self) -> None:
        for index in range(self._settings.workers):
            self._spawn(index)

    def _spawn(self, index: int) -> None:
        thread = threading.Thread(
            target=self._work, args=(index,), name=f"authswitch-shadow-{index}", daemon=True
        )
        with self._lock:
            self._threads[index] = thread
        thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Let the workers finish the sample in hand; samples still queued are not checked."""
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
            self._queue.task_done()
        for _ in range(len(self._threads)):
            self._queue.put(_STOP)  # one per worker: a recycled worker's successor takes it
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                alive = [t for t in self._threads.values() if t.is_alive()]
            if not alive or time.monotonic() >= deadline:
                break
            alive[0].join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()

    def drain(self) -> None:
        """Wait until every queued sample is checked (tests, the bench)."""
        self._queue.join()

    def _work(self, index: int) -> None:
        read = 0
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                read += len(item[2] or "")
                self._check(*item)
            except Exception as exc:  # a worker survives a failed check or an unreachable store
                # The type only: a message or traceback could quote the response.
                log.warning("shadow check failed", extra={"fields": {"error": type(exc).__name__}})
                metrics.SHADOW_ERRORS.labels(type(exc).__name__).inc()
            finally:
                self._queue.task_done()
            if read >= RECYCLE_AFTER_BYTES:
                # libxml2 interns the names of every document a thread reads, for the thread's
                # life: a successor thread starts clean, so sampled hostile input can't grow
                # the process without bound.
                self._spawn(index)
                return

    def _check(self, connection_id: str, protocol: str, value: str | None, path: str) -> None:
        connection = self._imports.get(connection_id)
        if connection is None:
            return
        accepts = self._settings.for_connection(connection_id)
        started, cpu_started = time.perf_counter(), time.thread_time()
        try:
            if protocol == "oidc":
                verdict = check_oidc_callback(connection, value, path)
            else:
                assert value is not None  # only SAML callbacks with a SAMLResponse are queued
                verdict = check_saml_response(value, connection, accepts)
        finally:
            self._budget.spend(time.thread_time() - cpu_started)
        metrics.SHADOW_CHECK_SECONDS.observe(time.perf_counter() - started)
        self._store.record(
            connection_id, import_digest(connection, accepts), verdict, self._clock()
        )
        label = self._label(connection_id)
        metrics.SHADOW_CHECKS.labels(label, "accepted" if verdict.accepted else "refused").inc()
        for reason in verdict.reasons:
            metrics.SHADOW_REASONS.labels(label, reason).inc()
