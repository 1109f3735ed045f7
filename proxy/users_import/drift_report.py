"""The drift report: where every source line went, with the reasons grouped."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from proxy.users_import.line_schema import LineProblem

_LISTED = 100  # line numbers listed per category; the counts are always complete


@dataclass
class DriftReport:
    source: int
    invalid: int
    created: int = 0
    updated: int = 0
    skipped: int = 0  # already present at the target
    failed: int = 0
    failure_reasons: Counter[str] = field(default_factory=Counter)
    invalid_reasons: Counter[str] = field(default_factory=Counter)
    failed_lines: list[int] = field(default_factory=list)
    invalid_lines: list[int] = field(default_factory=list)
    stopped: str | None = None  # why the import stopped early (--on-existing fail)
    resumed_batches: int = 0
    transport: str = ""
    seconds: float = 0.0

    @classmethod
    def for_source(cls, source: int, problems: list[LineProblem]) -> DriftReport:
        report = cls(source=source, invalid=len(problems))
        for problem in problems:
            # "duplicate of line 12" and "duplicate of line 40" are one reason.
            reason = re.sub(r"line \d+", "an earlier line", problem.reason)
            report.invalid_reasons[f"{problem.field}: {reason}"] += 1
        report.invalid_lines = sorted(p.line for p in problems)[:_LISTED]
        return report

    def count(self, kind: str, line: int, reason: str | None = None) -> None:
        if kind == "failed":
            self.failed += 1
            self.failure_reasons[reason or "unknown"] += 1
            if len(self.failed_lines) < _LISTED:
                self.failed_lines.append(line)
        elif kind == "exists":
            self.skipped += 1
        else:
            setattr(self, kind, getattr(self, kind) + 1)

    @property
    def imported(self) -> int:
        return self.created + self.updated

    @property
    def not_attempted(self) -> int:
        return self.source - self.invalid - self.imported - self.skipped - self.failed

    @property
    def adds_up(self) -> bool:
        """source == imported + skipped + failed + invalid (nothing lost, nothing twice)."""
        accounted = self.imported + self.skipped + self.failed + self.invalid
        return self.source == accounted + (self.not_attempted if self.stopped else 0)

    @property
    def ok(self) -> bool:
        return self.adds_up and not (self.failed or self.invalid or self.stopped)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "imported": self.imported,
            "created": self.created,
            "updated": self.updated,
            "skipped_already_present": self.skipped,
            "failed": self.failed,
            "invalid": self.invalid,
            "not_attempted": self.not_attempted if self.stopped else 0,
            "adds_up": self.adds_up,
            "stopped": self.stopped,
            "failure_reasons": dict(self.failure_reasons.most_common()),
            "invalid_reasons": dict(self.invalid_reasons.most_common()),
            "failed_lines": sorted(self.failed_lines),
            "invalid_lines": self.invalid_lines,
            "resumed_batches": self.resumed_batches,
            "transport": self.transport,
            "seconds": round(self.seconds, 3),
        }

    def print(self, console: Console) -> None:
        table = Table(title="users import: drift report", title_justify="left")
        table.add_column("")
        table.add_column("users", justify="right")
        table.add_row("source lines", str(self.source))
        table.add_row("imported (created)", str(self.created))
        table.add_row("imported (updated)", str(self.updated))
        table.add_row("skipped (already present)", str(self.skipped))
        table.add_row("failed", str(self.failed))
        table.add_row("invalid", str(self.invalid))
        if self.stopped:
            table.add_row("not attempted (stopped)", str(self.not_attempted))
        table.add_row(
            "check: source == imported + skipped + failed + invalid"
            + (" + not attempted" if self.stopped else ""),
            "yes" if self.adds_up else "NO",
        )
        console.print(table)
        for title, reasons in (("failed", self.failure_reasons), ("invalid", self.invalid_reasons)):
            for reason, count in reasons.most_common():
                console.print(f"  {title}: {count} x {reason}", highlight=False, markup=False)
        if self.stopped:
            console.print(f"stopped: {self.stopped}", highlight=False, markup=False)
