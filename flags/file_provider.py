"""OpenFeature provider that serves ``authswitch.route`` from a rollout state file it watches."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from typing import TypeVar

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider, Metadata

from flags.evaluation import FLAG_KEY, CompiledRollout
from flags.file_format import FlagFileError, parse_rollout_state
from flags.file_store import FileSignature, file_signature, read_flag_file
from flags.state import RolloutState

logger = logging.getLogger(__name__)

T = TypeVar("T")

_REASONS: Mapping[str, Reason] = {
    "kill_all": Reason.DISABLED,
    "override_off": Reason.DISABLED,
    "override_on": Reason.TARGETING_MATCH,
    "canary": Reason.TARGETING_MATCH,
    "stage_in": Reason.SPLIT,
    "stage_out": Reason.SPLIT,
}
_JOIN_TIMEOUT_SECONDS = 5.0


class FileFlagProvider(AbstractProvider):
    """Serves the route flag from a YAML/JSON file, polled by ``os.stat`` and hot-reloaded.

    A file that is broken at start makes ``initialize`` raise ``FlagFileError``. Later, a broken
    file keeps the last good state in force (the SDK keeps calling the provider in ERROR status),
    logs one warning per distinct broken content and emits a non-fatal ``PROVIDER_ERROR``.

    Answers for ``authswitch.route`` (targeting key = connection id): value ``new``/``legacy``,
    variant = the deciding rule, reason ``DISABLED`` (kill_all, override_off),
    ``TARGETING_MATCH`` (override_on, canary) or ``SPLIT`` (stage_in, stage_out), and
    flag_metadata ``{"version", "stage_percent"}``. Register it after a worker process forks
    (e.g. in ASGI lifespan): the watcher thread does not survive ``fork()``.
    """

    def __init__(self, path: str | os.PathLike[str], *, poll_interval: float = 0.5) -> None:
        super().__init__()
        if not poll_interval > 0:
            raise ValueError(f"poll_interval must be > 0 (got {poll_interval!r})")
        self._path = os.fspath(path)
        self._poll_interval = poll_interval
        # The one reference readers use; replaced whole, never mutated, so reads need no lock.
        self._rollout: CompiledRollout | None = None
        self._signature: FileSignature | None = None
        self._last_error: str | None = None
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
            self._last_error = self._reported_problem = None
        logger.info("flags file %r loaded: version %d", self._path, state.version)
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
        self._last_error = self._reported_problem = None
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

    def _stop_watcher(self) -> None:
        self._stop.set()
        watcher, self._watcher = self._watcher, None
        if watcher is None or watcher is threading.current_thread():
            return
        watcher.join(_JOIN_TIMEOUT_SECONDS)
        if watcher.is_alive():
            logger.warning("flags file %r: watcher thread did not stop in time", self._path)

    def resolve_string_details(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[str]:
        if flag_key != FLAG_KEY:
            return _unknown_flag(flag_key, default_value)
        rollout = self._rollout
        if rollout is None:
            return _error(default_value, ErrorCode.PROVIDER_NOT_READY, "flags file not loaded")
        connection_id = evaluation_context.targeting_key if evaluation_context else None
        if not connection_id:
            message = "targeting_key (the connection id) is required"
            return _error(default_value, ErrorCode.TARGETING_KEY_MISSING, message)
        decision = rollout.decide(connection_id)
        return FlagResolutionDetails(
            value=decision.route,
            reason=_REASONS[decision.reason],
            variant=decision.reason,
            flag_metadata=rollout.flag_metadata,
        )

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return _not_a_string(flag_key, default_value)

    def resolve_integer_details(
        self,
        flag_key: str,
        default_value: int,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[int]:
        return _not_a_string(flag_key, default_value)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return _not_a_string(flag_key, default_value)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return _not_a_string(flag_key, default_value)


def _error(default_value: T, code: ErrorCode, message: str) -> FlagResolutionDetails[T]:
    # Error results carry the caller's default: the SDK's async path would pass any other value on.
    return FlagResolutionDetails(
        value=default_value, error_code=code, error_message=message, reason=Reason.ERROR
    )


def _unknown_flag(flag_key: str, default_value: T) -> FlagResolutionDetails[T]:
    message = f"flag {flag_key!r} not found; this provider serves only {FLAG_KEY!r}"
    return _error(default_value, ErrorCode.FLAG_NOT_FOUND, message)


def _not_a_string(flag_key: str, default_value: T) -> FlagResolutionDetails[T]:
    if flag_key != FLAG_KEY:
        return _unknown_flag(flag_key, default_value)
    message = f"flag {FLAG_KEY!r} is a string flag ('new' or 'legacy')"
    return _error(default_value, ErrorCode.TYPE_MISMATCH, message)
