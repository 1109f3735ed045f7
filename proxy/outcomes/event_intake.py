"""Counting provider events: map, deduplicate, store, and account for every one."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence

from proxy.ops import metrics
from proxy.outcomes.counts import Observation, OutcomeStore
from proxy.outcomes.observer import count_in_metrics
from proxy.outcomes.provider_events import EventResult


class EventIntake:
    """Stores observations of one source; `OutcomesUnavailable` passes up (the caller retries)."""

    def __init__(
        self,
        store: OutcomeStore,
        *,
        in_thread: bool,
        label: Callable[[str | None], str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._in_thread = in_thread
        self._label = label
        self.clock = clock

    async def call(self, function: Callable[..., object], *args: object) -> object:
        if self._in_thread:
            return await asyncio.to_thread(function, *args)
        return function(*args)

    async def ingest(
        self, source: str, results: Sequence[tuple[Observation | None, EventResult]]
    ) -> dict[str, int]:
        """Count what maps to a connection; returns the number of events per result."""
        observations = [item for item, _ in results if item is not None]
        counted: list[Observation] = []
        if observations:
            stored = await self.call(self.store.add, observations)
            assert isinstance(stored, list)
            counted = stored
        return self._account(source, results, counted)

    async def ingest_delivery(
        self,
        source: str,
        replay_key: str | None,
        replay_ttl: int,
        results: Sequence[tuple[Observation | None, EventResult]],
    ) -> dict[str, int] | None:
        """A webhook delivery in one trip to the store: refuse a replay (None), count, mark
        the source alive."""
        now = self.clock()
        observations = [item for item, _ in results if item is not None]

        def store() -> list[Observation] | None:
            if replay_key is not None and not self.store.first_seen(replay_key, replay_ttl, now):
                return None
            counted = self.store.add(observations) if observations else []
            self.store.mark_source_alive(source, now)
            return counted

        counted = await self.call(store)
        if counted is None:
            return None
        assert isinstance(counted, list)
        metrics.OUTCOME_SOURCE_SEEN.labels(source).set(now)
        return self._account(source, results, counted)

    def _account(
        self,
        source: str,
        results: Sequence[tuple[Observation | None, EventResult]],
        counted: list[Observation],
    ) -> dict[str, int]:
        observations = sum(1 for item, _ in results if item is not None)
        tally: Counter[str] = Counter(result for _, result in results if result != "counted")
        tally["counted"] = len(counted)
        tally["duplicate"] = observations - len(counted)
        for result, number in tally.items():
            if number:
                metrics.OUTCOME_EVENTS.labels(source, result).inc(number)
        count_in_metrics(counted, self._label)
        return dict(tally)

    async def source_alive(self, source: str) -> None:
        now = self.clock()
        await self.call(self.store.mark_source_alive, source, now)
        metrics.OUTCOME_SOURCE_SEEN.labels(source).set(now)
