"""The connections page, its JSON twin and the connection detail page."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from flags import AuditRecord, RolloutState
from proxy.console.chart import MinuteCounts, outcome_charts
from proxy.console.connections_page import (
    TableQuery,
    action_links,
    explain_route,
    render_connections,
    route_badge,
    side_cell,
)
from proxy.console.explain import explain_callback
from proxy.console.identity import Person
from proxy.console.page import esc, layout, link
from proxy.console.rollout_view import ConnectionRow, connection_rows
from proxy.console.sign_in import csrf_token
from proxy.outcomes.counts import OutcomesUnavailable
from proxy.outcomes.guard import HISTORY_LIMIT

if TYPE_CHECKING:
    from proxy.console.app import Console


def _rows(
    console: Console,
) -> tuple[list[ConnectionRow], str | None, RolloutState, list[AuditRecord]]:
    view = console.maps.current()
    state = console.rollout.read()
    history = console.rollout.history(HISTORY_LIMIT)
    rows, missing = connection_rows(view, state, history, console.instruments, now=console.clock())
    return rows, missing, state, history


async def connections(request: Request, console: Console, person: Person) -> Response:
    rows, missing, state, _ = await run_in_threadpool(_rows, console)
    query = TableQuery.from_params(request.query_params)
    body = render_connections(
        query.select(rows),
        query,
        state,
        missing=missing,
        may_change=person.may_change,
        total=len(rows),
    )
    return HTMLResponse(
        layout("Connections", body, person=person, csrf=csrf_token(request), current="/connections")
    )


async def connections_json(request: Request, console: Console, person: Person) -> Response:
    rows, missing, state, _ = await run_in_threadpool(_rows, console)
    query = TableQuery.from_params(request.query_params)
    return JSONResponse(
        {
            "state": state.model_dump(mode="json"),
            "outcomes_missing": missing,
            "connections": [_row_json(r) for r in query.select(rows)],
        }
    )


def _row_json(row: ConnectionRow) -> dict[str, object]:
    return {
        "id": row.id,
        "name": row.connection.name,
        "protocol": row.connection.protocol.value,
        "triage": row.triage_class,
        "triage_reasons": list(row.triage_reasons),
        **asdict(row.route),
        "legacy": row.legacy.as_dict() if row.legacy else None,
        "new": row.new.as_dict() if row.new else None,
        "guard": row.guard_verdict,
        "shadow_readiness": row.readiness,
    }


async def detail(request: Request, console: Console, person: Person) -> Response:
    connection_id = request.path_params["connection"]
    rows, missing, _, history = await run_in_threadpool(_rows, console)
    row = next((r for r in rows if r.id == connection_id), None)
    if row is None:
        body = (
            f'<p class="notice" role="alert">No connection {esc(connection_id)!s} in the map.</p>'
        )
        return HTMLResponse(
            layout("Unknown connection", body, person=person, csrf=csrf_token(request)), 404
        )
    view = console.maps.current()
    steps = explain_callback(row.connection, view, console.config.routes, row.route)
    minutes = await run_in_threadpool(_minutes, console, connection_id)
    mine = [r for r in history if _names(r, connection_id)]
    body = "".join(
        [
            _facts(row),
            '<h2>Explain: a callback now</h2><ol class="explain">',
            "".join(f"<li>{esc(step)}</li>" for step in steps),
            "</ol>",
            "<h2>Live outcomes</h2>",
            f"<p>Legacy: {side_cell(row.legacy, missing)}; new: {side_cell(row.new, missing)}; "
            f"guard: {esc(row.guard_verdict or '-')}; shadow readiness: {esc(row.readiness)}</p>",
            outcome_charts(minutes)
            if minutes is not None
            else f'<p class="nodata">{esc(missing or "no data")}</p>',
            "<h2>Flag history</h2>",
            _history_table(mine),
            _actions(connection_id) if person.may_change else "",
        ]
    )
    return HTMLResponse(
        layout(f"Connection {connection_id}", body, person=person, csrf=csrf_token(request))
    )


def _actions(connection: str) -> str:
    canary = " ".join(
        f'<a class="action" href="{link("/actions/preview", action=a, connection=connection)}">'
        f"{label}</a>"
        for a, label in (("canary_add", "Add to canary"), ("canary_remove", "Remove from canary"))
    )
    return f"<h2>Actions</h2><p>{action_links(connection)} {canary}</p>"


def _facts(row: ConnectionRow) -> str:
    c = row.connection
    facts: list[tuple[str, str]] = [
        ("Id", c.id),
        ("Name", c.name or "-"),
        ("Organization", c.organization.name if c.organization and c.organization.name else "-"),
        ("Protocol", c.protocol.value),
        (
            "Legacy callback URL",
            str(c.legacy.callback_url) if c.legacy and c.legacy.callback_url else "-",
        ),
        (
            "New provider",
            f"{c.new_provider.url} ({c.new_provider.mode.value})"
            if c.new_provider
            else "not imported",
        ),
        ("Assessment (what the proxy routes by)", row.triage_class),
        ("IdP-initiated logins", "allowed" if c.idp_initiated else "refused"),
    ]
    if c.saml is not None:
        facts.append(("IdP entity id", c.saml.idp_entity_id or "-"))
    if c.oidc is not None:
        facts.append(("OIDC callback path", c.oidc.callback_path or "-"))
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
    reasons = "".join(f"<li>{esc(r)}</li>" for r in row.triage_reasons)
    return (
        f'<dl class="facts">{items}<dt>Route now</dt><dd>{route_badge(row.route.route)} '
        f"{esc(explain_route(row))}</dd></dl>"
        + (f"<h2>Triage reasons</h2><ul>{reasons}</ul>" if reasons else "")
    )


def _names(record: AuditRecord, connection: str) -> bool:
    """Whether a change touched this connection (its override, canary membership)."""
    for doc in (record.before, record.after):
        if connection in (doc.get("overrides") or {}):
            return True
        if connection in (doc.get("canary") or []):
            return True
    return False


def _history_table(records: list[AuditRecord]) -> str:
    if not records:
        return (
            "<p>No flag changes name this connection (stage and kill-all changes apply to all).</p>"
        )
    rows = "".join(
        f"<tr><td>{r.version}</td><td>{esc(r.time)}</td><td>{esc(r.actor)}</td>"
        f"<td>{esc(r.action)}</td><td>{esc(r.summary())}</td><td>{esc(r.reason)}</td></tr>"
        for r in records
    )
    return (
        '<div class="table-wrap"><table><thead><tr><th scope="col">Version</th>'
        '<th scope="col">Time</th><th scope="col">Actor</th><th scope="col">Action</th>'
        '<th scope="col">Change</th><th scope="col">Reason</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div>"
    )


def _minutes(console: Console, connection: str) -> list[MinuteCounts] | None:
    outcomes = console.instruments.outcomes
    if outcomes is None:
        return None
    until = int(console.clock() // 60) + 1
    since = until - console.instruments.window_minutes
    sources = console.instruments.outcome_settings
    from proxy.outcomes.guard import legacy_side_source, new_side_source

    legacy_source, new_source = legacy_side_source(sources), new_side_source(sources)
    found = []
    try:
        for minute in range(since, until):
            tally = outcomes.tally(connection, minute, minute + 1)
            legacy_ok, legacy_failed = tally.judged("legacy", legacy_source)
            new_ok, new_failed = tally.judged("new", new_source)
            found.append(
                MinuteCounts(
                    minute,
                    sum(tally.judged("legacy", "proxy")),
                    tally.get("new", "proxy", "forwarded"),
                    legacy_ok,
                    legacy_failed,
                    new_ok,
                    new_failed,
                )
            )
    except OutcomesUnavailable:
        return None
    return found
