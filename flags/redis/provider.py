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
the empty state by accident (``flags.redis.rollout_store``).
"""

from __future__ import annotations

import logging
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
from flags.redis.keys import RedisKeys, connect, redact_url
from flags.redis.rollout_store import parse_stored_state
from flags.rollout_store import StoredStateInvalid
from flags.route_provider import FlagSourceHealth, RouteFlagProvider
from flags.state import RolloutState
from foundation.redis_client import STANDALONE, RedisTopology
from foundation.redis_follower import RedisFollower

logger = logging.getLogger(__name__)

# Raise the replica_version key to ARGV[1], only while the doc is still missing: once someone
# stored a state again, a replica that has not yet read it must not re-arm the guard.
_RECORD_REPLICA_VERSION = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local seen = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
if tonumber(ARGV[1]) <= seen then return 0 end
redis.call('SET', KEYS[2], ARGV[1])
return 1
"""


class RedisFlagProvider(RedisFollower, RouteFlagProvider):
    """Serves the route flag from Redis (keys: ``flags.redis.keys``), pushed and resynced."""

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
        topology: RedisTopology = STANDALONE,
        poll_seconds: float | None = None,
    ) -> None:
        """``poll_seconds``: poll the state at that interval instead of subscribing."""
        RouteFlagProvider.__init__(self)
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
        RedisFollower.__init__(
            self,
            where=f"redis {redact_url(url)} key prefix {key_prefix!r}",
            thread_name="authswitch-flags-redis",
            resync_seconds=resync_seconds,
            poll_seconds=poll_seconds,
            log=logger,
        )
        self._topology = topology
        self._password = password
        self._ca_file = ca_file
        self._url = url
        self._socket_timeout = socket_timeout_seconds
        self._stale_error_after = stale_error_after_seconds
        self._client: redis.Redis | None = None
        self._sync_lock = threading.Lock()
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
            topology=self._topology,
        )
        self._failures = 0
        first_delay = 0.0
        try:
            self._sync()
        except redis.RedisError as exc:
            self._note_outage(exc)
            self._failures = 1
            first_delay = self._backoff()
        self._announced = "ready"  # what the SDK sets when initialize returns
        self._initialized = True
        self._publish_metrics()
        self._start_listener(first_delay)

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
            self._report_status()
            return False

    # -- following Redis (foundation.redis_follower) ---------------------------------------

    def _listening_client(self) -> redis.Redis | None:
        return self._client

    def _channel(self) -> str:
        return self.keys.changed

    def _on_subscribed(self) -> None:
        self._sync_and_report()

    def _on_message(self, data: object) -> None:
        # Any message means "look now"; its version is not trusted: after Redis lost its data,
        # a new version 1 can follow the old version 1.
        self._sync_and_report()

    def _on_resync(self) -> None:
        self._sync_and_report()

    def _listen_failed(self, exc: BaseException) -> None:
        self._report_status()

    def _serving(self) -> str:
        rollout = self._rollout
        if rollout is not None:
            return f"serving the last known state (version {rollout.state.version})"
        return "no rollout state known: every connection goes to legacy until it answers"

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
            self._confirm()
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


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value
