"""The audit page: flag changes and connection map pushes/rollbacks, newest first, filterable by
kind, connection, actor, action and text; JSONL export of the same selection."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from connection_map.redis_store import PushRecord
from flags import AuditRecord
from proxy.console.actions import ActionRefused
from proxy.console.identity import Person
from proxy.console.page import esc, layout, link
from proxy.console.sign_in import csrf_token

if TYPE_CHECKING:
    from proxy.console.app import Console

_LIMIT = 2000
_FILTERS = ("kind", "connection", "actor", "action", "q")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change of either kind, as the page lists it and the export writes it."""

    kind: str
    version: int
    time: str
    actor: str
    action: str
    change: str
    reason: str
    record: dict[str, Any]

    @classmethod
    def of_flags(cls, record: AuditRecord) -> AuditEntry:
        return cls(
            "flags",
            record.version,
            record.time,
            record.actor,
            record.action,
            record.summary(),
            record.reason,
            record.model_dump(mode="json"),
        )

    @classmethod
    def of_map(cls, record: PushRecord) -> AuditEntry:
        before = "none" if record.previous_version is None else str(record.previous_version)
        change = f"map version {before} -> {record.version} ({record.connections} connections)"
        if record.rolled_back_to is not None:
            change += f", the map of version {record.rolled_back_to}"
        return cls(
            "map",
            record.version,
            record.time,
            record.actor,
            record.action,
            change,
            record.reason,
            record.to_json(),
        )

    def to_json(self) -> dict[str, Any]:
        return {**self.record, "kind": self.kind}


def _entries(console: Console) -> tuple[list[AuditEntry], str | None]:
    """Both trails, merged newest first (times are ISO 8601 UTC, so text order is time order),
    and why map pushes are missing when their Redis did not answer (flag changes still shown)."""
    flags = [AuditEntry.of_flags(r) for r in console.rollout.history(_LIMIT)]
    try:
        pushes = [AuditEntry.of_map(r) for r in console.map_desk.push_history(_LIMIT)]
    except ActionRefused as refused:
        return flags, f"map pushes not shown: {refused.message}"
    return sorted(flags + pushes, key=lambda e: e.time, reverse=True)[:_LIMIT], None


def _matching(entries: list[AuditEntry], params: Mapping[str, str]) -> list[AuditEntry]:
    kind = params.get("kind", "").strip()
    actor = params.get("actor", "").strip().lower()
    action = params.get("action", "").strip()
    connection = params.get("connection", "").strip()
    text = params.get("q", "").strip().lower()
    kept = []
    for entry in entries:
        if kind and entry.kind != kind:
            continue
        if actor and actor not in entry.actor.lower():
            continue
        if action and entry.action != action:
            continue
        if connection and connection not in entry.change:
            continue
        if text and text not in f"{entry.change} {entry.reason}".lower():
            continue
        kept.append(entry)
    return kept


def _kind_select(chosen: str) -> str:
    options = "".join(
        f'<option value="{value}"{" selected" if value == chosen else ""}>{label}</option>'
        for value, label in (("", "all"), ("flags", "flag changes"), ("map", "map pushes"))
    )
    return f'<label for="a-kind">Kind</label><select id="a-kind" name="kind">{options}</select>'


async def audit(request: Request, console: Console, person: Person) -> Response:
    entries, missing = await run_in_threadpool(_entries, console)
    params = request.query_params
    kept = _matching(entries, params)
    fields = _kind_select(params.get("kind", "")) + "".join(
        f'<label for="a-{name}">{label}</label>'
        f'<input id="a-{name}" name="{name}" value="{esc(params.get(name, ""))}">'
        for name, label in (
            ("connection", "Connection"),
            ("actor", "Actor"),
            ("action", "Action"),
            ("q", "Text"),
        )
    )
    export = link("/api/audit.jsonl", **{k: params.get(k, "") for k in _FILTERS})
    rows = "".join(
        f'<tr data-kind="{esc(e.kind)}"><td>{esc(e.kind)}</td><td>{e.version}</td>'
        f"<td>{esc(e.time)}</td><td>{esc(e.actor)}</td><td>{esc(e.action)}</td>"
        f"<td>{esc(e.change)}</td><td>{esc(e.reason)}</td></tr>"
        for e in kept
    )
    body = (
        f'<form method="get" action="{link("/audit")}" class="filters" role="search">{fields}'
        '<button type="submit">Filter</button></form>'
        f'<p role="status">{len(kept)} of {len(entries)} changes (flags and map; newest '
        f'first). <a href="{export}" download>Export as JSONL</a></p>'
        + (f'<p class="notice" role="alert">{esc(missing)}</p>' if missing else "")
        + '<div class="table-wrap"><table id="audit"><thead><tr><th scope="col">Kind</th>'
        '<th scope="col">Version</th><th scope="col">Time</th><th scope="col">Actor</th>'
        '<th scope="col">Action</th><th scope="col">Change</th><th scope="col">Reason</th>'
        f"</tr></thead><tbody>{rows}</tbody></table></div>"
    )
    return HTMLResponse(
        layout("Audit", body, person=person, csrf=csrf_token(request), current="/audit")
    )


async def audit_jsonl(request: Request, console: Console, person: Person) -> Response:
    entries, missing = await run_in_threadpool(_entries, console)
    if missing:  # an export that silently lacks the map pushes would mislead
        raise ActionRefused(503, missing)
    kept = _matching(entries, request.query_params)
    lines = "".join(json.dumps(e.to_json(), sort_keys=True) + "\n" for e in kept)
    return Response(
        lines,
        media_type="application/jsonl",
        headers={"content-disposition": 'attachment; filename="authswitch-audit.jsonl"'},
    )
