"""A replica's connection map, following the one pushed to Redis (keys: ``redis_store``).

One daemon thread subscribes to the ``changed`` channel, then fetches and validates the
``served`` doc (the ``doc`` when there is none) after every (re)subscribe and every message,
and compares the cheap ``version`` key every ``resync_seconds`` (jittered) to heal lost
messages. A new map is validated and indexed on that thread, then swapped in with one
assignment to ``current``, which requests read once each: a request sees the old map or the
new one, and the event loop never waits for Redis.

A doc that fails validation never replaces a good map: the old one keeps routing and
``last_error`` says why. While Redis can't be reached the last known map keeps routing
(``stale``); with no map ever known, the map is empty and every callback goes to legacy.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time

import redis

from connection_map.file_store import ConnectionMapError
from connection_map.gc_pause import collection_paused, return_free_memory
from connection_map.index import ConnectionMap
from connection_map.map_health import MapHealth
from connection_map.model import ConnectionMapDocument
from connection_map.redis_store import MapKeys, as_bytes, parse_served_doc
from foundation.redis_follower import RedisFollower

logger = logging.getLogger(__name__)


class RedisConnectionMap(RedisFollower):
    """The map in force on this replica, kept in line with Redis by a background thread."""

    def __init__(
        self,
        client: redis.Redis,
        keys: MapKeys,
        *,
        where: str,
        resync_seconds: float = 5.0,
        poll_seconds: float | None = None,
    ) -> None:
        """``poll_seconds``: poll the map at that interval instead of subscribing."""
        self._in = f"connection map in {where}"
        super().__init__(
            where=f"{self._in} key {keys.served!r}",
            thread_name="authswitch-map-redis",
            resync_seconds=resync_seconds,
            poll_seconds=poll_seconds,
            log=logger,
        )
        self._client = client
        self.keys = keys
        self._source = f"{where} key {keys.served!r}"
        self.current = ConnectionMap.build(ConnectionMapDocument(), source=self._source)
        self.loaded = False
        self.last_error: str | None = None
        self._digest: str | None = None  # of the doc in force
        self._refused: tuple[str, int | None] | None = None  # digest and version of a bad doc
        self._problem: str | None = None
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """One sync attempt (never raises for an outage or a bad doc), then listen in a thread."""
        self.stop()
        first_delay = 0.0
        try:
            self._sync(full=True)
        except redis.RedisError as exc:
            self._note_outage(exc)
            self._failures = 1
            first_delay = self._backoff()
        self.health().publish()
        self._start_listener(first_delay)

    def stop(self) -> None:
        """Stop the listener; safe to call more than once."""
        self._stop_listener()

    def close(self) -> None:
        self.stop()
        self._client.close()

    def sync_now(self) -> bool:
        """Fetch and apply the doc now; True if the map in force changed."""
        try:
            return self._sync(full=True)
        except redis.RedisError as exc:
            self._note_outage(exc)
            return False
        finally:
            self.health().publish()

    def health(self) -> MapHealth:
        current, confirmed, outage = self.current, self._confirmed_at, self._outage_since
        stale = outage is not None and self.loaded
        return MapHealth(
            backend="redis",
            source=self._source,
            loaded=self.loaded,
            version=current.version if self.loaded else None,
            connections=len(current),
            stale=stale,
            stale_seconds=time.monotonic() - confirmed if stale and confirmed else None,
            last_error=self._outage_error or self._problem,
        )

    # -- following Redis (foundation.redis_follower) ---------------------------------------

    def _listening_client(self) -> redis.Redis:
        return self._client

    def _channel(self) -> str:
        return self.keys.changed

    def _on_subscribed(self) -> None:
        self._sync(full=True)
        self.health().publish()

    def _on_message(self, data: object) -> None:
        self._sync(full=True)
        self.health().publish()

    def _on_resync(self) -> None:
        self._sync(full=False)
        self.health().publish()

    def _listen_failed(self, exc: BaseException) -> None:
        self.health().publish()

    def _serving(self) -> str:
        if self.loaded:
            return f"serving the last known map (version {self.current.version})"
        return "no map known: every callback goes to legacy until it answers"

    # -- syncing ---------------------------------------------------------------------------

    def _sync(self, *, full: bool) -> bool:
        """Bring the map in line with Redis; raises RedisError if Redis does not answer.

        `full=False` reads the version key only, and the doc when that differs from the map in
        force: a 100k-connection doc is megabytes, not worth fetching every few seconds.
        """
        with self._lock:
            if not full and self.loaded:
                version = _whole_number(self._client.get(self.keys.version))
                refused_version = self._refused[1] if self._refused else None
                if version in (self.current.version, refused_version) and version is not None:
                    self._confirm()
                    return False
            key = self.keys.served
            raw = self._client.get(key)
            if raw is None:  # pushed by an older release, or written around the CLI
                key = self.keys.doc
                raw = self._client.get(key)
            self._confirm()
            if raw is None:
                if self.loaded:
                    self._set_problem(
                        f"{self._where} is missing; keeping version {self.current.version}"
                    )
                else:
                    self._set_problem(f"{self._where}: no map pushed yet")
                return False
            return self._take(as_bytes(raw), key)

    def _take(self, data: bytes, key: str) -> bool:
        digest = hashlib.sha256(data).hexdigest()
        if digest == self._digest:
            self._problem = None
            return False
        if self._refused is not None and self._refused[0] == digest:
            return False
        started = time.perf_counter()
        try:
            with collection_paused():
                fresh = parse_served_doc(data, f"{self._in} key {key!r}", source=self._source)
        except ConnectionMapError as exc:
            self._refused = (digest, self._version_key())
            keeping = f"version {self.current.version}" if self.loaded else "no map (all legacy)"
            self._set_problem(f"{exc} (refused; keeping {keeping})")
            return False
        old = self.current.version if self.loaded else None
        # Problem cleared before the swap, `loaded` after it: whoever sees the new version sees
        # its health, and nobody sees the empty placeholder map reported as loaded.
        self._digest, self._refused, self._problem = digest, None, None
        self.current = fresh  # the swap: one reference, read once per request
        self.loaded = True
        logger.info(
            "%s: version %s -> %d (%d connections, built in %.3f s)",
            self._where,
            old,
            fresh.version,
            len(fresh),
            time.perf_counter() - started,
        )
        return_free_memory()  # the old map's memory too, now that it is dropped
        return True

    def _version_key(self) -> int | None:
        with contextlib.suppress(redis.RedisError):
            return _whole_number(self._client.get(self.keys.version))
        return None

    def _set_problem(self, message: str) -> None:
        if message != self._problem:
            logger.warning("%s", message)
        self._problem = message


def _whole_number(raw: bytes | str | None) -> int | None:
    """The version key's value; None when absent or not a number (then the doc decides)."""
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None
