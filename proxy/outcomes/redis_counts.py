"""Outcome counts in Redis, shared by every replica and the CLI.

Layout (``P`` = the key prefix)::

    P:outcomes:c:<connection>:<hour>   hash   field "<minute>:<side>:<source>:<outcome>" -> count
    P:outcomes:e:<source event id>     string  "1", kept `dedupe` seconds: the id was counted
    P:outcomes:seen:<source>:<digest> string  a webhook signature already accepted (replays)
    P:outcomes:alive:<source>          string  when the source last answered (epoch seconds)
    P:outcomes:cursor:<poller>         string  an Events API cursor

Hashes expire `retention` after their last write. An observation with an event id is counted by
one Lua script (SET NX the id, then HINCRBY), so a redelivery or a replica polling the same page
counts nothing. With Redis Cluster put a hash tag in the prefix (``authswitch:{prod}``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import redis

from proxy.outcomes.counts import Observation, OutcomesUnavailable, Tally, hour_of, tally_fields

_COUNT_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then
  redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  return 1
end
return 0
"""


class RedisOutcomeStore:
    """Synchronous (call it from a thread, never on the event loop)."""

    def __init__(
        self,
        client: redis.Redis,
        key_prefix: str,
        *,
        retention_seconds: int,
        dedupe_seconds: int,
        where: str = "redis",
    ) -> None:
        self._client = client
        self._prefix = f"{key_prefix}:outcomes"
        self._retention = retention_seconds
        self._dedupe = dedupe_seconds
        self._where = where
        self._count_once = client.register_script(_COUNT_ONCE)

    def _bucket(self, connection: str, hour: int) -> str:
        return f"{self._prefix}:c:{connection}:{hour}"

    def cursor_key(self, poller: str) -> str:
        return f"{self._prefix}:cursor:{poller}"

    @property
    def client(self) -> redis.Redis:
        return self._client

    def add(self, observations: Sequence[Observation]) -> list[Observation]:
        plain: Counter[tuple[str, str]] = Counter()
        counted: list[Observation] = []
        once: list[Observation] = []
        for item in observations:
            if item.event_id is None:
                counted.append(item)
                plain[(self._bucket(item.connection, hour_of(item.minute)), item.field)] += 1
            else:
                once.append(item)
        try:
            with self._client.pipeline(transaction=False) as pipe:
                for (key, name), count in plain.items():
                    pipe.hincrby(key, name, count)
                for key in {key for key, _ in plain}:
                    pipe.expire(key, self._retention)
                for item in once:
                    self._count_once(
                        keys=[
                            f"{self._prefix}:e:{item.source}:{item.event_id}",
                            self._bucket(item.connection, hour_of(item.minute)),
                        ],
                        args=[item.field, self._dedupe, self._retention],
                        client=pipe,
                    )
                results = pipe.execute()
        except redis.RedisError as exc:
            raise self._unavailable(exc) from None
        if once:
            fresh = results[len(results) - len(once) :]
            counted.extend(item for item, new in zip(once, fresh, strict=True) if int(new))
        return counted

    def tally(self, connection: str, since_minute: int, until_minute: int) -> Tally:
        hours = range(hour_of(since_minute), hour_of(until_minute - 1) + 1)
        try:
            with self._client.pipeline(transaction=False) as pipe:
                for hour in hours:
                    pipe.hgetall(self._bucket(connection, hour))
                buckets: list[dict[Any, Any]] = pipe.execute()
        except redis.RedisError as exc:
            raise self._unavailable(exc) from None
        fields = ((_text(name), int(value)) for bucket in buckets for name, value in bucket.items())
        return tally_fields(fields, since_minute, until_minute)

    def first_seen(self, key: str, ttl_seconds: int, now: float) -> bool:
        try:
            fresh = self._client.set(f"{self._prefix}:seen:{key}", "1", nx=True, ex=ttl_seconds)
        except redis.RedisError as exc:
            raise self._unavailable(exc) from None
        return bool(fresh)

    def mark_source_alive(self, source: str, at_seconds: float) -> None:
        try:
            self._client.set(f"{self._prefix}:alive:{source}", repr(at_seconds), ex=self._retention)
        except redis.RedisError as exc:
            raise self._unavailable(exc) from None

    def source_alive_at(self, source: str) -> float | None:
        try:
            raw = self._client.get(f"{self._prefix}:alive:{source}")
        except redis.RedisError as exc:
            raise self._unavailable(exc) from None
        return float(_text(raw)) if raw is not None else None

    def _unavailable(self, exc: redis.RedisError) -> OutcomesUnavailable:
        # redis-py's messages name host and port, never the password.
        return OutcomesUnavailable(f"outcome store {self._where}: {type(exc).__name__}: {exc}")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
