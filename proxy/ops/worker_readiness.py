"""Readiness across worker processes: each worker reports, the ops listener adds them up.

The ops listener runs in the supervisor (with one worker: the same process, on a thread and
loop of its own), so whatever the worker count each worker writes its /readyz report to a
file of its own in a private directory, every `PUBLISH_SECONDS`; the supervisor reads them
all per probe. A worker that died (its pid is gone), hung (its report is older than
`max_age_seconds`) or has not started yet counts as missing: the replica is ready only when
every worker it runs says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from foundation.version import authswitch_version

READINESS_DIR_ENV = "AUTHSWITCH_READINESS_DIR"
PUBLISH_SECONDS = 1.0
log = logging.getLogger("authswitch")

Readiness = Callable[[], tuple[int, dict[str, object]]]


class ReadinessPublisher:
    """A worker's side: its report, rewritten every `PUBLISH_SECONDS` until it stops."""

    def __init__(self, directory: Path, readiness: Readiness) -> None:
        self._file = directory / f"{os.getpid()}.json"
        self._readiness = readiness
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_env(cls, readiness: Readiness) -> ReadinessPublisher | None:
        """A publisher when the supervisor asked for reports (several workers), else None."""
        directory = os.environ.get(READINESS_DIR_ENV)
        return None if not directory else cls(Path(directory), readiness)

    def start(self) -> None:
        try:
            self.publish()
        except OSError as exc:  # no supervisor reads it: this worker then counts as missing
            log.error("readiness not reported to the ops listener: %s", exc.strerror or exc)
            return
        self._task = asyncio.create_task(self._every_second())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        # A draining worker no longer counts as ready.
        with contextlib.suppress(OSError):
            self._file.unlink()

    def publish(self) -> None:
        status, report = self._readiness()
        data = json.dumps({"time": time.time(), "status": status, "report": report}).encode()
        temporary = self._file.with_suffix(".tmp")
        temporary.write_bytes(data)
        os.replace(temporary, self._file)  # the supervisor reads the old report or the new one

    async def _every_second(self) -> None:
        while True:
            await asyncio.sleep(PUBLISH_SECONDS)
            try:
                self.publish()
            except OSError:  # the directory vanished: the supervisor is gone too
                return


class WorkerReadiness:
    """The supervisor's side: one /readyz answer for all `workers`."""

    def __init__(
        self,
        directory: Path,
        workers: int,
        *,
        max_age_seconds: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._directory = directory
        self._workers = workers
        self._max_age = max_age_seconds
        self._clock = clock

    def __call__(self) -> tuple[int, dict[str, object]]:
        reports = self._fresh_reports()
        missing: list[str] = []
        degraded: list[str] = []
        for _, report in reports:
            _add_new(missing, report.get("missing"))
            _add_new(degraded, report.get("degraded"))
        if len(reports) < self._workers:
            missing.insert(0, f"{len(reports)} of {self._workers} workers report ready state")
        ready = not missing and all(report.get("ready") is True for _, report in reports)
        checks = reports[0][1].get("checks", {}) if reports else {}
        body: dict[str, object] = {
            "ready": ready,
            "version": authswitch_version(),
            "missing": missing,
            "degraded": degraded,
            "checks": checks,
            "workers": [
                {"pid": pid, "ready": report.get("ready") is True} for pid, report in reports
            ],
        }
        return (200 if ready else 503), body

    def _fresh_reports(self) -> list[tuple[int, dict[str, object]]]:
        now = self._clock()
        reports: list[tuple[int, dict[str, object]]] = []
        for file in sorted(self._directory.glob("*.json")):
            pid = int(file.stem) if file.stem.isdigit() else None
            if pid is None or not _alive(pid):
                with contextlib.suppress(OSError):
                    file.unlink()  # a worker that died without cleaning up
                continue
            try:
                entry = json.loads(file.read_bytes())
            except (OSError, ValueError):
                continue
            if not isinstance(entry, dict) or now - float(entry.get("time", 0)) > self._max_age:
                continue  # hung: its event loop stopped reporting
            report = entry.get("report")
            if isinstance(report, dict):
                reports.append((pid, report))
        return reports


def _add_new(into: list[str], items: object) -> None:
    if isinstance(items, list):
        into.extend(str(item) for item in items if str(item) not in into)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process reuses the pid: not ours, but alive
        return True
    return True
