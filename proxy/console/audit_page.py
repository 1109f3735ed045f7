"""The audit page: flag changes, filterable by connection, actor and action; JSONL export."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from flags import AuditRecord
from proxy.console.identity import Person
from proxy.console.page import esc, layout, link
from proxy.console.sign_in import csrf_token

if TYPE_CHECKING:
    from proxy.console.app import Console

_LIMIT = 2000


def _matching(records: list[AuditRecord], params: Mapping[str, str]) -> list[AuditRecord]:
    actor = params.get("actor", "").strip().lower()
    action = params.get("action", "").strip()
    connection = params.get("connection", "").strip()
    text = params.get("q", "").strip().lower()
    kept = []
    for record in records:
        if actor and actor not in record.actor.lower():
            continue
        if action and record.action != action:
            continue
        if connection and connection not in record.summary():
            continue
        if text and text not in f"{record.summary()} {record.reason}".lower():
            continue
        kept.append(record)
    return kept


async def audit(request: Request, console: Console, person: Person) -> Response:
    records = await run_in_threadpool(console.rollout.history, _LIMIT)
    params = request.query_params
    kept = _matching(records, params)
    fields = "".join(
        f'<label for="a-{name}">{label}</label>'
        f'<input id="a-{name}" name="{name}" value="{esc(params.get(name, ""))}">'
        for name, label in (
            ("connection", "Connection"),
            ("actor", "Actor"),
            ("action", "Action"),
            ("q", "Text"),
        )
    )
    export = link(
        "/api/audit.jsonl",
        **{k: params.get(k, "") for k in ("connection", "actor", "action", "q")},
    )
    rows = "".join(
        f"<tr><td>{r.version}</td><td>{esc(r.time)}</td><td>{esc(r.actor)}</td>"
        f"<td>{esc(r.action)}</td><td>{esc(r.summary())}</td><td>{esc(r.reason)}</td></tr>"
        for r in kept
    )
    body = (
        f'<form method="get" action="{link("/audit")}" class="filters" role="search">{fields}'
        '<button type="submit">Filter</button></form>'
        f'<p role="status">{len(kept)} of {len(records)} changes (flags; newest first). '
        f'<a href="{export}" download>Export as JSONL</a></p>'
        '<div class="table-wrap"><table id="audit"><thead><tr><th scope="col">Version</th>'
        '<th scope="col">Time</th><th scope="col">Actor</th><th scope="col">Action</th>'
        '<th scope="col">Change</th><th scope="col">Reason</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div>"
    )
    return HTMLResponse(
        layout("Audit", body, person=person, csrf=csrf_token(request), current="/audit")
    )


async def audit_jsonl(request: Request, console: Console, person: Person) -> Response:
    records = await run_in_threadpool(console.rollout.history, _LIMIT)
    kept = _matching(records, request.query_params)
    lines = "".join(json.dumps(r.model_dump(mode="json"), sort_keys=True) + "\n" for r in kept)
    return Response(
        lines,
        media_type="application/jsonl",
        headers={"content-disposition": 'attachment; filename="authswitch-audit.jsonl"'},
    )
