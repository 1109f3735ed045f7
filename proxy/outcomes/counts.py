"""Outcome counts: per connection x side x source x outcome x minute, and the in-memory store.

An observation carries counts only: a connection id from the connection map, a side, where it
was learnt, what happened and when (to the minute). No user, email, IP or artifact ever
reaches a store. Sources:

- ``proxy``: the answer of a callback authswitch proxied (``forwarded`` when it only handed the
  browser on, in ``redirect`` / ``form_post`` mode, and cannot see the result);
- ``events``: the provider's own report (WorkOS events, the generic webhook).
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

Side = Literal["legacy", "new"]
Source = Literal["proxy", "events"]
Outcome = Literal["succeeded", "failed", "forwarded"]
SIDES: tuple[Side, ...] = ("legacy", "new")
SOURCES: tuple[Source, ...] = ("proxy", "events")
OUTCOMES: tuple[Outcome, ...] = ("succeeded", "failed", "forwarded")
MAX_EVENT_ID_LENGTH = 200


class OutcomesUnavailable(Exception):
    """The outcome store could not be read or written (Redis unreachable); no secret inside."""


@dataclass(frozen=True, slots=True)
class Observation:
    """One login's outcome as a count: never who, only which connection, side and when."""

    connection: str
    side: Side
    source: Source
    outcome: Outcome
    minute: int  # minutes since the epoch (UTC)
    event_id: str | None = None  # the provider's id, namespaced by source: counted once

    @property
    def field(self) -> str:
        return f"{self.minute}:{self.side}:{self.source}:{self.outcome}"


@dataclass(frozen=True, slots=True)
class Tally:
    """Counts over a window: ``counts[(side, source, outcome)]``."""

    counts: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def get(self, side: Side, source: Source, outcome: Outcome) -> int:
        return self.counts.get((side, source, outcome), 0)

    def judged(self, side: Side, source: Source) -> tuple[int, int]:
        """(succeeded, failed) of one side as one source saw it."""
        return self.get(side, source, "succeeded"), self.get(side, source, "failed")


def tally_fields(fields: Iterable[tuple[str, int]], since: int, until: int) -> Tally:
    """Sum hash fields ``minute:side:source:outcome`` whose minute is in [since, until)."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for name, value in fields:
        minute, _, rest = name.partition(":")
        if not minute.isdigit() or not since <= int(minute) < until:
            continue
        side, _, rest = rest.partition(":")
        source, _, outcome = rest.partition(":")
        counts[(side, source, outcome)] += value
    return Tally(dict(counts))


def hour_of(minute: int) -> int:
    return minute // 60


class OutcomeStore(Protocol):
    """Where counts are added and read; the memory and Redis stores share these semantics."""

    def add(self, observations: Sequence[Observation]) -> list[Observation]:
        """Count each observation (one with an event id only once); returns those counted."""
        ...

    def tally(self, connection: str, since_minute: int, until_minute: int) -> Tally:
        """Counts of ``connection`` in minutes [since, until); ``OutcomesUnavailable`` if not."""
        ...

    def first_seen(self, key: str, ttl_seconds: int, now: float) -> bool:
        """True the first time ``key`` is offered within ``ttl_seconds`` (webhook replays)."""
        ...

    def mark_source_alive(self, source: str, at_seconds: float) -> None:
        """Record that an event source answered (a poll that succeeded, a verified webhook)."""
        ...

    def source_alive_at(self, source: str) -> float | None:
        """When the source last answered, seconds since the epoch; None if never."""
        ...


class MemoryOutcomeStore:
    """Counts in this process only (no Redis): bounded by bucket and event-id caps.

    Beyond ``max_buckets`` (connection, hour) buckets the oldest hour goes first; beyond
    ``max_event_ids`` the oldest remembered id is forgotten (a redelivery that late could count
    twice, which the caps trade for bounded memory).
    """

    def __init__(self, *, retention_minutes: int, max_buckets: int, max_event_ids: int) -> None:
        self._retention = retention_minutes
        self._max_buckets = max_buckets
        self._max_event_ids = max_event_ids
        self._buckets: OrderedDict[tuple[str, int], Counter[str]] = OrderedDict()
        self._event_ids: OrderedDict[str, None] = OrderedDict()
        self._alive: dict[str, float] = {}
        self._seen: OrderedDict[str, float] = OrderedDict()
        self.dropped = 0

    def add(self, observations: Sequence[Observation]) -> list[Observation]:
        counted: list[Observation] = []
        for item in observations:
            if item.event_id is not None:
                if item.event_id in self._event_ids:
                    continue
                self._event_ids[item.event_id] = None
                if len(self._event_ids) > self._max_event_ids:
                    self._event_ids.popitem(last=False)
            key = (item.connection, hour_of(item.minute))
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = Counter()
                self._evict(item.minute)
            bucket[item.field] += 1
            counted.append(item)
        return counted

    def _evict(self, now_minute: int) -> None:
        oldest_hour = hour_of(now_minute - self._retention)
        while len(self._buckets) > self._max_buckets:
            self._buckets.popitem(last=False)
            self.dropped += 1
        # Buckets are created in time order, so the stale ones are at the front.
        while self._buckets and next(iter(self._buckets))[1] < oldest_hour:
            self._buckets.popitem(last=False)

    def tally(self, connection: str, since_minute: int, until_minute: int) -> Tally:
        fields: list[tuple[str, int]] = []
        for hour in range(hour_of(since_minute), hour_of(until_minute - 1) + 1):
            bucket = self._buckets.get((connection, hour))
            if bucket:
                fields.extend(bucket.items())
        return tally_fields(fields, since_minute, until_minute)

    def first_seen(self, key: str, ttl_seconds: int, now: float) -> bool:
        while self._seen and next(iter(self._seen.values())) <= now:
            self._seen.popitem(last=False)
        if key in self._seen:
            return False
        self._seen[key] = now + ttl_seconds
        if len(self._seen) > self._max_event_ids:
            self._seen.popitem(last=False)
        return True

    def mark_source_alive(self, source: str, at_seconds: float) -> None:
        self._alive[source] = at_seconds

    def source_alive_at(self, source: str) -> float | None:
        return self._alive.get(source)
