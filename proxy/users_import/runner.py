"""The import loop: batches of valid lines, a bounded number in flight, checkpointed."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

from proxy.users_import.checkpoint import Checkpoint
from proxy.users_import.drift_report import DriftReport
from proxy.users_import.line_schema import SourceLine, SourceScan, read_source
from proxy.users_import.progress import ImportProgress
from proxy.users_import.target import EXISTS, ImportTarget, Outcome, TargetUnavailable, failed

OnExisting = Literal["ignore", "fail", "update"]
_T = TypeVar("_T")


@dataclass(frozen=True)
class ImportOptions:
    batch_size: int = 100
    parallel: int = 8
    on_existing: OnExisting = "ignore"
    retries: int = 3  # per batch, on TargetUnavailable, with exponential back-off
    retry_base_seconds: float = 0.5


@dataclass(frozen=True)
class Batch:
    index: int  # batch k holds input lines k*size+1 .. (k+1)*size
    lines: list[SourceLine]


class CheckpointWriter:
    """Coalesces checkpoint writes: one in progress at a time, each carrying every change
    made before it began."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        self._checkpoint = checkpoint
        self._lock = asyncio.Lock()
        self._version = 0
        self._written = 0

    def changed(self) -> None:
        self._version += 1

    async def persist(self) -> None:
        """Return once every change made so far is on disk."""
        wanted = self._version
        async with self._lock:
            if self._written >= wanted:
                return
            version, document = self._version, self._checkpoint.document()
            await asyncio.to_thread(self._checkpoint.write, document)
            self._written = version


class UsersImport:
    """One run of `authswitch users import` over a validated source."""

    def __init__(
        self,
        path: Path,
        scan: SourceScan,
        target: ImportTarget,
        checkpoint: Checkpoint,
        options: ImportOptions,
        report: DriftReport,
    ) -> None:
        self._path = path
        self._scan = scan
        self._target = target
        self._checkpoint = checkpoint
        self._options = options
        self._report = report
        self._writer = CheckpointWriter(checkpoint)
        self._resumable = set(checkpoint.started)

    async def run(self, progress: ImportProgress) -> DriftReport:
        started = time.monotonic()
        totals = self._checkpoint.totals
        for kind in ("created", "updated"):
            setattr(self._report, kind, totals[kind])
        self._report.skipped = totals["exists"]
        self._report.resumed_batches = len(self._checkpoint.completed)
        batches = self._batches()
        with progress:
            await asyncio.gather(
                *(self._worker(batches, progress) for _ in range(self._options.parallel))
            )
        await self._writer.persist()
        self._report.seconds = time.monotonic() - started
        return self._report

    async def _worker(self, batches: Iterator[Batch], progress: ImportProgress) -> None:
        # The workers share one iterator: next() never awaits, so each batch goes to one worker.
        for batch in batches:
            if self._report.stopped:
                return
            await self._import(batch)
            progress.advance(len(batch.lines))

    async def _import(self, batch: Batch) -> None:
        users = [line.user for line in batch.lines]
        ours = batch.index in self._resumable  # an earlier run sent these creates
        if self._options.on_existing == "fail" and not ours:
            try:
                present = await self._retrying(lambda: self._target.existing(users))
            except TargetUnavailable as exc:
                for line in batch.lines:
                    self._report.count("failed", line.number, str(exc))
                return
            conflict = next(
                (line for line in batch.lines if line.user.user_name.casefold() in present), None
            )
            if conflict is not None:
                outcome = self._stop_at(conflict)
                self._report.count(outcome.kind, conflict.number, outcome.reason)
                return
        self._checkpoint.started.add(batch.index)
        self._writer.changed()
        if self._options.on_existing == "fail":
            await self._writer.persist()  # a re-run must know these creates may be ours
        try:
            outcomes = await self._retrying(lambda: self._target.create_many(users))
        except TargetUnavailable as exc:
            outcomes = [failed(str(exc))] * len(users)
        tally: Counter[str] = Counter()
        for line, outcome in zip(batch.lines, outcomes, strict=True):
            final = await self._settle(line, outcome, ours)
            tally[final.kind] += 1
            self._report.count(final.kind, line.number, final.reason)
        if not tally["failed"]:
            self._checkpoint.record(batch.index, tally)
        self._writer.changed()
        await self._writer.persist()

    async def _settle(self, line: SourceLine, outcome: Outcome, ours: bool) -> Outcome:
        if outcome.kind != "exists":
            return outcome
        mode = self._options.on_existing
        if mode == "update":
            try:
                return await self._retrying(lambda: self._target.update(line.user))
            except TargetUnavailable as exc:
                return failed(str(exc))
        if mode == "fail" and not ours:  # created since the pre-check: a race, still a conflict
            return self._stop_at(line)
        return EXISTS

    def _stop_at(self, line: SourceLine) -> Outcome:
        """Stop taking batches; the user's outcome."""
        if self._report.stopped is None:
            self._report.stopped = (
                f"at line {line.number}: the user already exists at the target "
                "(--on-existing fail); the batches after it were not attempted"
            )
        return failed("already exists (--on-existing fail)")

    async def _retrying(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """The call's result; TargetUnavailable again after the last retry."""
        for attempt in range(self._options.retries):
            try:
                return await call()
            except TargetUnavailable:
                await asyncio.sleep(self._options.retry_base_seconds * 2**attempt)
        return await call()

    def _batches(self) -> Iterator[Batch]:
        size = self._options.batch_size
        completed = self._checkpoint.completed

        def keep(number: int) -> bool:
            return (number - 1) // size not in completed

        current: list[SourceLine] = []
        index = -1
        for line in read_source(self._scan, self._path, keep):
            line_batch = (line.number - 1) // size
            if line_batch != index and current:
                yield Batch(index, current)
                current = []
            index = line_batch
            current.append(line)
        if current:
            yield Batch(index, current)
