"""`connections readiness`: each SAML connection's shadow counts, as a table or JSON."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from connection_map import Connection
from proxy.shadow.gate import not_ready_because, readiness_of
from proxy.shadow.readiness_store import Readiness, ReadinessStore
from proxy.shadow.settings import ShadowSettings

COLUMNS = (
    "connection",
    "samples",
    "would accept",
    "dropped",
    "reasons",
    "signing certificate today",
    "first / last seen",
    "ready",
)


def readiness_rows(
    connections: Iterable[Connection], settings: ShadowSettings, store: ReadinessStore
) -> list[tuple[Readiness, str | None]]:
    """Each connection's readiness and why the gate would refuse it (None: ready). OIDC rows
    count what is checkable before the code is redeemed (`iss`, the callback path)."""
    rows = []
    for connection in connections:
        readiness = readiness_of(connection, settings, store)
        rows.append((readiness, not_ready_because(readiness, settings)))
    return rows


def to_json(rows: list[tuple[Readiness, str | None]]) -> list[dict[str, Any]]:
    return [
        {
            "connection": r.connection,
            "import_digest": r.import_digest,
            "samples": r.samples,
            "accepted": r.accepted,
            "accept_ratio": r.ratio,
            "dropped": r.dropped,
            "reasons": [
                {"code": code, "count": count, "detail": r.details.get(code)}
                for code, count in sorted(r.reasons.items(), key=lambda item: -item[1])
            ],
            "signing_certificate": None
            if r.signer is None
            else {"sha256": r.signer, "valid": r.signer_valid, "in_import": r.signer_in_import},
            "first_seen": _iso(r.first_seen),
            "last_seen": _iso(r.last_seen),
            "ready": why is None,
            "not_ready_because": why,
        }
        for r, why in rows
    ]


def table_rows(rows: list[tuple[Readiness, str | None]]) -> list[list[str]]:
    return [
        [
            r.connection,
            str(r.samples),
            "-" if r.ratio is None else f"{r.ratio:.1%}",
            str(r.dropped),
            "\n".join(
                f"{count} {r.details.get(code, code)}"
                for code, count in sorted(r.reasons.items(), key=lambda item: -item[1])
            )
            or "-",
            "-"
            if r.signer is None
            else f"{r.signer}\n{r.signer_valid}, "
            + ("in the import" if r.signer_in_import else "NOT in the import"),
            f"{_iso(r.first_seen) or '-'}\n{_iso(r.last_seen) or '-'}",
            "yes" if why is None else f"no: {why}",
        ]
        for r, why in rows
    ]


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
