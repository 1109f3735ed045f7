"""OpenFeature provider serving ``authswitch.route`` from a rollout state kept in Redis.

Evaluation reads memory only. One daemon thread per provider, with a synchronous redis-py client,
keeps that memory current: it subscribes to the ``changed`` channel, then resyncs (reads the doc
and swaps in the state if the doc differs from the one in force) right after every
(re)subscribe, on every message, and every ``resync_seconds`` (jittered) to heal lost messages.
A thread rather than an asyncio task because ``initialize`` is called by the SDK on a thread of
its own (``set_provider_and_wait``), the provider then works the same in the proxy, a CLI or a
test, and a slow or frozen Redis can never hold the event loop that forwards logins.

When Redis can't be reached the last known good state keeps answering (reason ``STALE``):
``PROVIDER_STALE`` at once, ``PROVIDER_ERROR`` (never ``FATAL``, which would make the SDK return
the default for everyone) after ``stale_error_after_seconds``, ``PROVIDER_READY`` once a resync
succeeds again. Only when no state was ever known does every connection get the default
(legacy), with ``PROVIDER_ERROR`` and ``health().has_state`` False.

When the doc is missing but a state is known (Redis lost its data), the replica keeps serving
it and writes its version to the ``replica_version`` key: the one record of that version that
survived is in the replicas' memory, and it lets the store refuse a write that would start from
the empty state by accident (``flags.redis_rollout_store``).
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from pathlib import Path

import redis
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode
from openfeature.provider import Metadata

from flags.evaluation import FLAG_KEY, CompiledRollout
from flags.metrics import REDIS_UP, publish_health
from flags.redis_keys import RedisKeys, connect, redact_url
from flags.redis_rollout_store import parse_stored_state
from flags.rollout_store import StoredStateInvalid
from flags.route_provider import FlagSourceHealth, RouteFlagProvider
from flags.state import RolloutState

logger = logging.getLogger(__name__)

_BACKOFF_START_SECONDS = 0.1
# Raise the replica_version key to ARGV[1], only while the doc is still missing: once someone
# stored a state again, a replica that has not yet read it must not re-arm the guard.
_RECORD_REPLICA_VERSION = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local seen = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
if tonumber(ARGV[1]) <= seen then return 0 end
redis.call('SET', KEYS[2], ARGV[1])
return 1
"""
_POLL_SLICE_SECONDS = 0.5  # longest the listener blocks before checking its stop event
_JOIN_TIMEOUT_SECONDS = 5.0


class RedisFlagProvider(RouteFlagProvider):
    """Serves the route flag from Redis (keys: ``flags.redis_keys``), pushed and resynced."""

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = "authswitch",
        resync_seconds: float = 5.0,
        socket_timeout_seconds: float = 0.5,
        stale_error_after_seconds: float = 60.0,
        password: str | None = None,
        ca_file: Path | None = None,
    ) -> None:
        super().__init__()
        self._password = password
        self._ca_file = ca_file
        for name, value in (
            ("resync_seconds", resync_seconds),
            ("socket_timeout_seconds", socket_timeout_seconds),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be > 0 (got {value!r})")
        if not stale_error_after_seconds >= 0:
            got = stale_error_after_seconds
            raise ValueError(f"stale_error_after_seconds must be >= 0 (got {got!r})")
        self.keys = RedisKeys(key_prefix)
        self._url = url
        self._where = f"redis {redact_url(url)} key prefix {key_prefix!r}"
        self._resync_seconds = resync_seconds
        self._socket_timeout = socket_timeout_seconds
        self._stale_error_after = stale_error_after_seconds
        self._client: redis.Redis | None = None
        self._sync_lock = threading.Lock()
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None
        self._failures = 0
        self._confirmed_at: float | None = None  # last time Redis confirmed the state in memory
        self._outage_since: float | None = None
        self._outage_error: str | None = None
        self._problem: str | None = None  # Redis answers, but its doc can't be used
        self._problem_code = ErrorCode.GENERAL
        self._announced = "not_ready"  # the status our last event (or the SDK's READY) set
        self._initialized = False  # the state initialize loads is not a "change"
        self._raw_doc: bytes | None = None  # the doc the state in force was parsed from
        self._replica_version_refused = False  # warned once that EVAL was refused

    # -- what the proxy and the tests look at ----------------------------------------------

    @property
    def state(self) -> RolloutState:
        """The rollout state in force; ``RuntimeError`` while none is known."""
        rollout = self._rollout
        if rollout is None:
            raise RuntimeError(f"{self._where}: no rollout state known yet")
        return rollout.state

    @property
    def listener_thread(self) -> threading.Thread | None:
        return self._listener

    def health(self) -> FlagSourceHealth:
        rollout, confirmed, outage = self._rollout, self._confirmed_at, self._outage_since
        stale = outage is not None and rollout is not None
        return FlagSourceHealth(
            backend="redis",
            has_state=rollout is not None,
            version=rollout.state.version if rollout is not None else None,
            stale=stale,
            stale_seconds=time.monotonic() - confirmed if stale and confirmed else None,
            last_error=self._outage_error or self._problem,
        )

    def get_metadata(self) -> Metadata:
        return Metadata(name="authswitch-redis")

    # -- lifecycle -------------------------------------------------------------------------

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        """One sync attempt (at most connect + one command timeout), then listen in a thread.

        Never raises because Redis is down: ``set_provider_and_wait`` would re-raise and the
        proxy would not start; with no state known it serves legacy and says so in ``health()``.
        """
        self._stop_listener()
        self._initialized = False
        self._client = connect(
            self._url,
            socket_timeout=self._socket_timeout,
            client_name="authswitch-flags",
            password=self._password,
            ca_file=self._ca_file,
        )
        self._failures = 0
        first_delay = 0.0
        try:
            self._sync()
        except redis.RedisError as exc:
            self._note_outage(exc, announce=False)
            self._failures = 1
            first_delay = self._backoff()
        self._announced = "ready"  # what the SDK sets when initialize returns
        self._initialized = True
        self._publish_metrics()
        self._stop = threading.Event()
        self._listener = threading.Thread(
            target=self._listen_forever,
            args=(self._stop, first_delay),
            name="authswitch-flags-redis",
            daemon=True,
        )
        self._listener.start()

    def shutdown(self) -> None:
        """Stop the listener and close the connections; safe to call more than once."""
        self._stop_listener()
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def sync_now(self) -> bool:
        """Resync with Redis now; ``True`` if the state in force changed (False if unreachable)."""
        try:
            return self._sync_and_report()
        except redis.RedisError as exc:
            self._note_outage(exc)
            return False

    # -- the listener thread ---------------------------------------------------------------

    def _listen_forever(self, stop: threading.Event, first_delay: float) -> None:
        if stop.wait(first_delay):
            return
        while not stop.is_set():
            try:
                self._listen(stop)
                return  # only returns once stopped
            except redis.RedisError as exc:
                self._note_outage(exc)
            except Exception as exc:  # never let the thread die: the state would freeze silently
                logger.exception("%s: unexpected error in the flag listener", self._where)
                self._note_outage(exc)
            self._failures += 1
            if stop.wait(self._backoff()):
                return

    def _listen(self, stop: threading.Event) -> None:
        client = self._client
        if client is None:
            return
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            # Subscribe first, then resync: a change published in between is not lost.
            pubsub.subscribe(self.keys.changed)
            self._sync_and_report()
            self._failures = 0
            next_resync = time.monotonic() + self._jittered(self._resync_seconds)
            while not stop.is_set():
                wait = min(_POLL_SLICE_SECONDS, max(0.0, next_resync - time.monotonic()))
                message = pubsub.get_message(timeout=wait)
                # Any message means "look now"; its version is not trusted: after Redis lost
                # its data, a new version 1 can follow the old version 1.
                if message is not None and message.get("type") == "message":
                    self._sync_and_report()
                if time.monotonic() >= next_resync:
                    self._sync_and_report()
                    next_resync = time.monotonic() + self._jittered(self._resync_seconds)
        finally:
            with contextlib.suppress(Exception):
                pubsub.close()

    def _stop_listener(self) -> None:
        self._stop.set()
        listener, self._listener = self._listener, None
        if listener is None or listener is threading.current_thread():
            return
        listener.join(_JOIN_TIMEOUT_SECONDS)
        if listener.is_alive():
            logger.warning("%s: flag listener did not stop in time", self._where)

    # -- syncing ---------------------------------------------------------------------------

    def _sync_and_report(self) -> bool:
        changed = self._sync()
        self._report_status()
        return changed

    def _sync(self) -> bool:
        """Bring memory in line with Redis; raises ``RedisError`` if Redis does not answer."""
        client = self._client
        if client is None:
            raise redis.ConnectionError("provider is shut down")
        with self._sync_lock:
            # The doc itself, not the version key, is compared: versions restart from 1 when a
            # Redis without persistence comes back empty, and the same number must not hide a
            # different state. A doc is a few KB; once per resync per replica is cheap.
            raw = client.get(self.keys.doc)
            if raw is None and self._rollout is not None and self._rollout.state.version > 0:
                self._record_replica_version(client, self._rollout.state.version)
            changed = False
            if raw is None or self._rollout is None or raw != self._raw_doc:
                changed = self._take(raw)
            self._confirmed_at = time.monotonic()
            if self._outage_since is not None:
                down_for = self._confirmed_at - self._outage_since
                logger.info("%s: reachable again after %.1f s", self._where, down_for)
                self._outage_since = self._outage_error = None
            return changed

    def _record_replica_version(self, client: redis.Redis, version: int) -> None:
        keys = (self.keys.doc, self.keys.replica_version)
        try:
            client.eval(_RECORD_REPLICA_VERSION, len(keys), *keys, version)
        except redis.ResponseError as exc:  # e.g. an ACL without EVAL: serving goes on
            if not self._replica_version_refused:
                logger.warning(
                    "%s: could not record version %d for the empty-store guard: %s",
                    self._where,
                    version,
                    exc,
                )
            self._replica_version_refused = True

    def _take(self, raw_doc: bytes | str | None) -> bool:
        rollout = self._rollout
        if raw_doc is None:
            if rollout is None:  # a deployment nobody has written to yet: all legacy, known
                return self._apply(RolloutState())
            self._set_problem(
                f"{self._where}: key {self.keys.doc!r} is missing; keeping version "
                f"{rollout.state.version}",
                ErrorCode.GENERAL,
            )
            return False
        try:
            where = f"{self._where}: key {self.keys.doc!r}"
            state = parse_stored_state(_as_bytes(raw_doc), where)
        except StoredStateInvalid as exc:
            self._set_problem(str(exc), ErrorCode.PARSE_ERROR)
            return False
        self._problem = None
        self._raw_doc = _as_bytes(raw_doc)
        return self._apply(state)

    def _apply(self, state: RolloutState) -> bool:
        previous = self._rollout
        if previous is not None and previous.state == state:
            return False
        self._rollout = CompiledRollout.from_state(state)
        old = previous.state.version if previous is not None else None
        if previous is not None and state.version < previous.state.version:
            logger.warning(
                "%s: version went back from %s to %d (restored or failed-over Redis?); "
                "following Redis",
                self._where,
                old,
                state.version,
            )
        logger.info("%s: rollout state version %s -> %d", self._where, old, state.version)
        if self._initialized:
            self.emit_provider_configuration_changed(
                ProviderEventDetails(flags_changed=[FLAG_KEY], metadata={"version": state.version})
            )
        return True

    def _set_problem(self, message: str, code: ErrorCode) -> None:
        if message != self._problem:
            logger.warning("%s", message)
            self._announced = "problem-pending"  # make _report_status emit for the new problem
        self._problem, self._problem_code = message, code

    # -- outage and status events ----------------------------------------------------------

    def _note_outage(self, exc: BaseException, *, announce: bool = True) -> None:
        now = time.monotonic()
        # redis-py messages name host and port, never the password.
        self._outage_error = f"{self._where}: {type(exc).__name__}: {exc}"
        if self._outage_since is None:
            self._outage_since = now
            rollout = self._rollout
            if rollout is not None:
                serving = f"serving the last known state (version {rollout.state.version})"
            else:
                serving = "no rollout state known: every connection goes to legacy until it answers"
            logger.warning("%s: unreachable, %s: %s", self._where, serving, exc)
        if announce:
            self._report_status()

    def _publish_metrics(self) -> None:
        publish_health(self.health())
        REDIS_UP.set(0 if self._outage_since is not None else 1)

    def _report_status(self) -> None:
        """Emit the event for the status the SDK should show, when it differs from the last one."""
        self._publish_metrics()
        rollout, outage = self._rollout, self._outage_since
        self._serving_stale = outage is not None and rollout is not None
        version = rollout.state.version if rollout is not None else -1
        if outage is not None and rollout is not None:
            down_for = time.monotonic() - outage
            status = "error" if down_for >= self._stale_error_after else "stale"
            message = f"{self._outage_error} (serving version {version} since {down_for:.1f} s)"
            code = ErrorCode.GENERAL
        elif outage is not None or rollout is None:
            status = "error"
            cause = self._outage_error or self._problem
            message = f"{cause}: no rollout state known, every connection goes to legacy"
            code = ErrorCode.PROVIDER_NOT_READY if rollout is None else ErrorCode.GENERAL
        elif self._problem is not None:
            status, message, code = "error", self._problem, self._problem_code
        else:
            status, message, code = "ready", "", ErrorCode.GENERAL
        if status == self._announced:
            return
        self._announced = status
        metadata: dict[str, bool | str | int | float] = {"version": version}
        if status == "ready":
            self.emit_provider_ready(ProviderEventDetails(metadata=metadata))
        elif status == "stale":
            self.emit_provider_stale(ProviderEventDetails(message=message, metadata=metadata))
        else:
            if outage is not None and rollout is not None:
                logger.error("%s", message)
            # Never PROVIDER_FATAL: the SDK would then answer the default for every connection.
            self.emit_provider_error(
                ProviderEventDetails(message=message, error_code=code, metadata=metadata)
            )

    def _backoff(self) -> float:
        cap = max(self._resync_seconds, _BACKOFF_START_SECONDS)
        ceiling = min(cap, _BACKOFF_START_SECONDS * 2 ** min(self._failures, 16))
        return random.uniform(ceiling / 2, ceiling)

    @staticmethod
    def _jittered(seconds: float) -> float:
        return seconds * random.uniform(0.8, 1.2)


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value
