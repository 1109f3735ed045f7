"""A daemon thread that keeps a replica's memory in line with Redis: the one follower loop.

The rollout flags, the connection map and the flow records each keep what they serve in
memory and follow Redis the same way: subscribe to a channel, then resync (a change published
between the two is not lost), react to every message, resync every ``resync_seconds``
(jittered, so replicas don't all ask at once) to heal lost messages; on any error, note the
outage, wait a jittered exponential backoff and subscribe again. A thread rather than an asyncio
task so that a slow or frozen Redis can never hold the event loop that forwards logins.

Subclasses say what a message and a resync mean (``_on_subscribed``, ``_on_message``,
``_on_resync``) and what they serve while Redis is away (``_serving``); the outage state
(``_outage_since``, ``_outage_error``, ``_confirmed_at``) is kept here for their health reports.

With ``poll_seconds`` set (managed Redis that forbids pub/sub) the follower never subscribes:
it syncs once, then resyncs every ``poll_seconds``; a change reaches it within that interval.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from typing import Any

import redis

from foundation.redis_client import refresh_cluster_topology

BACKOFF_START_SECONDS = 0.1
_JOIN_TIMEOUT_SECONDS = 5.0


class RedisFollower:
    """The follower loop, outage tracking and clean stop, shared by every Redis follower."""

    _poll_slice_seconds = 0.5  # longest the listener blocks before checking its stop event

    def __init__(
        self,
        *,
        where: str,
        thread_name: str,
        resync_seconds: float | None,
        max_backoff_seconds: float | None = None,
        poll_seconds: float | None = None,
        log: logging.Logger,
    ) -> None:
        """``resync_seconds`` None: messages only; the backoff is capped by ``resync_seconds``
        unless ``max_backoff_seconds`` says otherwise. ``poll_seconds``: poll, don't subscribe."""
        if resync_seconds is not None and not resync_seconds > 0:
            raise ValueError(f"resync_seconds must be > 0 (got {resync_seconds!r})")
        if poll_seconds is not None and not poll_seconds > 0:
            raise ValueError(f"poll_seconds must be > 0 (got {poll_seconds!r})")
        self._poll_seconds = poll_seconds
        self._where = where
        self._thread_name = thread_name
        self._resync_seconds = resync_seconds
        cap = max_backoff_seconds if max_backoff_seconds is not None else resync_seconds
        self._backoff_cap = max(cap or BACKOFF_START_SECONDS, BACKOFF_START_SECONDS)
        self._log = log
        self._failures = 0
        self._confirmed_at: float | None = None  # last time Redis answered
        self._outage_since: float | None = None
        self._outage_error: str | None = None
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None

    @property
    def listener_thread(self) -> threading.Thread | None:
        return self._listener

    # -- what subclasses say ---------------------------------------------------------------

    def _listening_client(self) -> redis.Redis | None:
        """The client to subscribe with (None: shut down, stop listening)."""
        raise NotImplementedError

    def _channel(self) -> str:
        raise NotImplementedError

    def _on_subscribed(self) -> None:
        """Right after every (re)subscribe: resync (raise ``RedisError`` if Redis fails)."""

    def _on_message(self, data: Any) -> None:
        """A message on the channel."""

    def _on_resync(self) -> None:
        """Every ``resync_seconds`` (jittered), to heal lost messages."""

    def _serving(self) -> str:
        """What is served while Redis can't be reached, for the outage log line."""
        return "serving what is in memory"

    def _listen_failed(self, exc: BaseException) -> None:
        """After an error of the listener was noted (e.g. publish health), before the backoff."""

    def _done_listening(self, client: redis.Redis) -> None:
        """After each listening attempt (e.g. close a per-attempt client)."""

    # -- lifecycle -------------------------------------------------------------------------

    def _start_listener(self, first_delay: float = 0.0) -> None:
        self._stop = threading.Event()
        self._listener = threading.Thread(
            target=self._listen_forever,
            args=(self._stop, first_delay),
            name=self._thread_name,
            daemon=True,
        )
        self._listener.start()

    def _stop_listener(self) -> None:
        """Stop the thread and wait for it (bounded); safe to call more than once."""
        self._stop.set()
        listener, self._listener = self._listener, None
        if listener is None or listener is threading.current_thread():
            return
        listener.join(_JOIN_TIMEOUT_SECONDS)
        if listener.is_alive():
            self._log.warning("%s: listener did not stop in time", self._where)

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
                self._listen_failed(exc)
            except Exception as exc:  # never let the thread die: memory would freeze silently
                self._log.exception("%s: unexpected error in the listener", self._where)
                self._note_outage(exc)
                self._listen_failed(exc)
            self._failures += 1
            if stop.wait(self._backoff()):
                return

    def _listen(self, stop: threading.Event) -> None:
        client = self._listening_client()
        if client is None:
            return
        try:
            if self._poll_seconds is not None:
                self._poll(client, stop, self._poll_seconds)
            else:
                self._subscribe_and_follow(client, stop)
        except redis.RedisError as exc:
            # A cluster's pub/sub and pipelines don't learn a failover by themselves.
            refresh_cluster_topology(client, exc)
            raise

    def _subscribe_and_follow(self, client: redis.Redis, stop: threading.Event) -> None:
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            # Subscribe first, then resync: a change published in between is not lost.
            pubsub.subscribe(self._channel())
            self._on_subscribed()
            self._failures = 0
            next_resync = self._next_resync()
            while not stop.is_set():
                wait = min(self._poll_slice_seconds, max(0.0, next_resync - time.monotonic()))
                message = pubsub.get_message(timeout=wait)
                if message is not None and message.get("type") == "message":
                    self._on_message(message["data"])
                if time.monotonic() >= next_resync:
                    self._on_resync()
                    next_resync = self._next_resync()
        finally:
            with contextlib.suppress(Exception):
                pubsub.close()
            self._done_listening(client)

    def _poll(self, client: redis.Redis, stop: threading.Event, interval: float) -> None:
        """Pub/sub refused by the server: resync every ``interval`` instead of listening."""
        try:
            self._on_subscribed()
            self._failures = 0
            while not stop.wait(interval):
                self._on_resync()
        finally:
            self._done_listening(client)

    def _next_resync(self) -> float:
        if self._resync_seconds is None:
            return float("inf")
        return time.monotonic() + self._resync_seconds * random.uniform(0.8, 1.2)

    # -- outages ---------------------------------------------------------------------------

    def _confirm(self) -> None:
        """Redis answered: the outage, if any, is over."""
        self._confirmed_at = time.monotonic()
        if self._outage_since is not None:
            down_for = self._confirmed_at - self._outage_since
            self._log.info("%s: reachable again after %.1f s", self._where, down_for)
            self._outage_since = self._outage_error = None

    def _note_outage(self, exc: BaseException) -> None:
        # redis-py messages name host and port, never the password.
        self._outage_error = f"{self._where}: {type(exc).__name__}: {exc}"
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            self._log.warning("%s: unreachable, %s: %s", self._where, self._serving(), exc)

    def _backoff(self) -> float:
        """Jittered exponential: 0.1 s doubling per failure, capped, drawn from [c/2, c]."""
        ceiling = min(self._backoff_cap, BACKOFF_START_SECONDS * 2 ** min(self._failures, 16))
        return random.uniform(ceiling / 2, ceiling)
