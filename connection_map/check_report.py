"""The `connections check` report: triage next to the stored assessment and the flag.

Exit status: 1 when a connection that the flag sends to the new provider is not transparent
(by triage now, or by the assessment the proxy reads), else 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from connection_map.model import Assessment, Connection
from connection_map.triage import Triage, TriageSettings, triage_connections

_TRANSPARENT = Assessment.TRANSPARENT


@dataclass(frozen=True, slots=True)
class CheckEntry:
    connection_id: str
    protocol: str
    stored: Assessment  # what the map says, and so what the proxy acts on
    triage: Triage  # what the facts say now
    flagged_on: bool | None  # does the rollout flag send it to the new provider? None: unknown

    @property
    def computed(self) -> Assessment:
        return self.triage.assessment

    @property
    def drift(self) -> bool:
        return self.stored is not self.computed

    @property
    def flagged_but_not_transparent(self) -> bool:
        both = self.stored is _TRANSPARENT and self.computed is _TRANSPARENT
        return self.flagged_on is True and not both


CHECK_COLUMNS = ("CONNECTION", "PROTOCOL", "TRIAGE", "STORED", "FLAG", "REASONS")


@dataclass(frozen=True, slots=True)
class CheckReport:
    entries: tuple[CheckEntry, ...]

    @property
    def failing(self) -> tuple[CheckEntry, ...]:
        return tuple(e for e in self.entries if e.flagged_but_not_transparent)

    @property
    def exit_code(self) -> int:
        return 1 if self.failing else 0

    def summary(self) -> dict[str, Any]:
        counts = Counter(e.computed.value for e in self.entries)
        return {
            "connections": len(self.entries),
            **{a.value: counts.get(a.value, 0) for a in Assessment},
            "drift": [e.connection_id for e in self.entries if e.drift],
            "flagged_on_not_transparent": [e.connection_id for e in self.failing],
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "connections": [
                {
                    "id": e.connection_id,
                    "protocol": e.protocol,
                    "assessment": e.computed.value,
                    "stored_assessment": e.stored.value,
                    "drift": e.drift,
                    "flagged_on": e.flagged_on,
                    "reasons": [
                        {"code": r.code, "assessment": r.assessment.value, "message": r.message}
                        for r in e.triage.reasons
                    ],
                }
                for e in self.entries
            ],
            "summary": self.summary(),
            "exit_code": self.exit_code,
        }

    def table_rows(self) -> list[tuple[str, str, str, str, str, str]]:
        """One row per connection under CHECK_COLUMNS; each triage reason on a line of its own."""
        return [
            (
                e.connection_id,
                e.protocol,
                e.computed.value,
                e.stored.value + (" (drift)" if e.drift else ""),
                {True: "on", False: "off", None: "-"}[e.flagged_on],
                "\n".join(e.triage.messages or ("-",)),
            )
            for e in self.entries
        ]

    def summary_line(self) -> str:
        return _summary_line(self.summary())


def _summary_line(summary: dict[str, Any]) -> str:
    text = (
        f"{summary['connections']} connections: {summary['transparent']} transparent, "
        f"{summary['needs_idp_change']} needs_idp_change, {summary['blocked']} blocked"
    )
    if summary["drift"]:
        text += f"; stored assessment differs for {len(summary['drift'])}"
    failing = summary["flagged_on_not_transparent"]
    if failing:
        text += f"; FLAGGED ON BUT NOT TRANSPARENT: {', '.join(failing)}"
    return text


def check_connections(
    connections: Iterable[Connection],
    settings: TriageSettings | None = None,
    enabled: Callable[[str], bool] | None = None,
) -> CheckReport:
    """Triage every connection and set it beside its stored assessment and its flag."""
    members = list(connections)
    results = triage_connections(members, settings)
    return CheckReport(
        tuple(
            CheckEntry(
                c.id,
                c.protocol.value,
                c.assessment,
                results[c.id],
                enabled(c.id) if enabled is not None else None,
            )
            for c in members
        )
    )
