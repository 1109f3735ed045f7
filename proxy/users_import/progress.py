"""Import progress on stderr: a bar on a terminal, a plain line every few seconds otherwise."""

from __future__ import annotations

import sys
import time
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

PLAIN_EVERY_SECONDS = 5.0


class ImportProgress:
    def __init__(self, total: int, done: int = 0, *, tty: bool | None = None) -> None:
        self._total = total
        self._done = done
        self._resumed = done  # done by an earlier run: not part of this run's rate
        self._tty = sys.stderr.isatty() if tty is None else tty
        self._started = time.monotonic()
        self._last_line = self._started
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> ImportProgress:
        if self._tty:
            self._bar = Progress(
                TextColumn("importing"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]} users/s"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self._bar.start()
            self._task = self._bar.add_task("import", total=self._total, rate="-")
            self._bar.update(self._task, completed=self._done)
        return self

    def advance(self, users: int) -> None:
        self._done += users
        now = time.monotonic()
        rate = f"{self._rate(now):.0f}"
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=self._done, rate=rate)
        elif now - self._last_line >= PLAIN_EVERY_SECONDS:
            self._last_line = now
            self._line(rate)

    def _rate(self, now: float) -> float:
        return (self._done - self._resumed) / max(now - self._started, 1e-9)

    def _line(self, rate: str) -> None:
        share = 100 * self._done / self._total if self._total else 100.0
        print(
            f"users import: {self._done}/{self._total} users ({share:.0f}%), {rate} users/s",
            file=sys.stderr,
            flush=True,
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
