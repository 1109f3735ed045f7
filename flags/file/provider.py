"""OpenFeature provider that serves ``authswitch.route`` from a rollout state file it watches."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode
from openfeature.provider import Metadata

from flags.evaluation import FLAG_KEY, CompiledRollout
from flags.file.format import FlagFileError, parse_rollout_state
from flags.file.store import FileSignature, file_signature, read_flag_file
from flags.metrics import publish_health
from flags.route_provider import FlagSourceHealth, RouteFlagProvider
from flags.state import RolloutState

logger = logging.getLogger(__name__)

_JOIN_TIMEOUT_SECONDS = 5.0


class FileFlagProvider(RouteFlagProvider):
    """Serves the route flag from a YAML/JSON file, polled by ``os.stat`` and hot-reloaded.

    A file that is broken at start makes ``initialize`` raise ``FlagFileError``. Later, a broken
    file keeps the last good state in force (the SDK keeps calling the provider in ERROR status),
    logs one warning per distinct broken content and emits a non-fatal ``PROVIDER_ERROR``.

    Answers for ``authswitch.route``: see ``RouteFlagProvider``. Register it after a worker
    process forks (e.g. in ASGI lifespan): the watcher thread does not survive ``fork()``.
    """

    def __init__(self, path: str | os.PathLike[str], *, poll_interval: float = 0.5) -> None:
        super().__init__()
        if not poll_interval > 0:
            raise ValueError(f"poll_interval must be > 0 (got {poll_interval!r})")
        self._path = os.fspath(path)
        self._poll_interval = poll_interval
        self._signature: FileSignature | None = None
        self._last_error: str | None = None
        self._failing_since: float | None = None
        self._reported_problem: str | None = None
        self._reload_lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def state(self) -> RolloutState:
        """The rollout state in force (the last good file); ``RuntimeError`` before initialize."""
        rollout = self._rollout
        if rollout is None:
            raise RuntimeError(f"flags file {self._path!r} has not been loaded yet")
        return rollout.state

    @property
    def last_error(self) -> str | None:
        """Why the file on disk isn't in force, or ``None`` when it is."""
        return self._last_error

    def health(self) -> FlagSourceHealth:
        """The version in force and, while the file is broken, how long it has been."""
        rollout, since = self._rollout, self._failing_since
        return FlagSourceHealth(
            backend="file",
            has_state=rollout is not None,
            version=rollout.state.version if rollout is not None else None,
            stale=since is not None,
            stale_seconds=time.monotonic() - since if since is not None else None,
            last_error=self._last_error,
        )

    @property
    def watcher_thread(self) -> threading.Thread | None:
        """The polling thread while the provider runs (exposed for health checks and tests)."""
        return self._watcher

    def get_metadata(self) -> Metadata:
        return Metadata(name="authswitch-file")

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        """Load the file (``FlagFileError`` if missing or broken) and start watching it."""
        self._stop_watcher()
        with self._reload_lock:
            snapshot = read_flag_file(self._path)
            state = parse_rollout_state(snapshot.data, self._path)
            self._rollout = CompiledRollout.from_state(state)
            self._signature = snapshot.signature
            self._last_error = self._reported_problem = self._failing_since = None
        logger.info("flags file %r loaded: version %d", self._path, state.version)
        publish_health(self.health())
        self._stop = threading.Event()
        self._watcher = threading.Thread(
            target=self._watch, args=(self._stop,), name="authswitch-flags-file", daemon=True
        )
        self._watcher.start()

    def shutdown(self) -> None:
        """Stop the watcher thread; safe to call more than once."""
        self._stop_watcher()

    def reload_now(self) -> bool:
        """Check the file now, reload it if it changed; ``True`` if the state in force changed."""
        with self._reload_lock:
            try:
                signature = file_signature(self._path)
            except OSError as exc:
                self._signature = None
                message = f"flags file {self._path!r}: cannot read: {exc.strerror or exc}"
                self._report_problem(message, fingerprint=message, code=ErrorCode.GENERAL)
                return False
            if signature == self._signature:
                return False
            try:
                snapshot = read_flag_file(self._path)
            except FlagFileError as exc:
                self._report_problem(str(exc), fingerprint=str(exc), code=ErrorCode.GENERAL)
                return False
            self._signature = snapshot.signature
            try:
                state = parse_rollout_state(snapshot.data, self._path)
            except FlagFileError as exc:
                digest = hashlib.sha256(snapshot.data).hexdigest()
                self._report_problem(str(exc), fingerprint=digest, code=ErrorCode.PARSE_ERROR)
                return False
            return self._apply(state)

    def _apply(self, state: RolloutState) -> bool:
        previous = self._rollout
        recovered = self._last_error is not None
        self._last_error = self._reported_problem = self._failing_since = None
        changed = previous is None or state != previous.state
        if changed:
            self._rollout = CompiledRollout.from_state(state)
        if recovered:
            logger.info("flags file %r is valid again: version %d", self._path, state.version)
            self.emit_provider_ready(ProviderEventDetails(metadata={"version": state.version}))
        if changed:
            old_version = previous.state.version if previous is not None else None
            logger.info(
                "flags file %r reloaded: version %s -> %d", self._path, old_version, state.version
            )
            self.emit_provider_configuration_changed(
                ProviderEventDetails(flags_changed=[FLAG_KEY], metadata={"version": state.version})
            )
        return changed

    def _report_problem(self, message: str, *, fingerprint: str, code: ErrorCode) -> None:
        self._last_error = message
        if self._failing_since is None:
            self._failing_since = time.monotonic()
        if fingerprint == self._reported_problem:
            return  # already logged and emitted for this very content; don't repeat every poll
        self._reported_problem = fingerprint
        version = self._rollout.state.version if self._rollout is not None else None
        logger.warning("flags reload failed, still serving version %s: %s", version, message)
        self.emit_provider_error(ProviderEventDetails(message=message, error_code=code))

    def _watch(self, stop: threading.Event) -> None:
        while not stop.wait(self._poll_interval):
            try:
                self.reload_now()
            except Exception:
                logger.exception("flags file %r: unexpected error while reloading", self._path)
            publish_health(self.health())

    def _stop_watcher(self) -> None:
        self._stop.set()
        watcher, self._watcher = self._watcher, None
        if watcher is None or watcher is threading.current_thread():
            return
        watcher.join(_JOIN_TIMEOUT_SECONDS)
        if watcher.is_alive():
            logger.warning("flags file %r: watcher thread did not stop in time", self._path)
