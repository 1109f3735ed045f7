"""The Map page: the live map and where it comes from, its push history, the file's diff against
it with the connections whose route would change, and (operators) push or roll back, previewed
and confirmed like the flag actions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from connection_map.redis_store import PushRecord
from proxy.console.identity import Person
from proxy.console.map_actions import MapChange, MapOverview, parse_map_change
from proxy.console.page import confirm_form, esc, layout, link
from proxy.console.sign_in import csrf_token
from proxy.map_preview import MapPushPreview

if TYPE_CHECKING:
    from proxy.console.app import Console

_SHOWN_VALUE = 80  # characters of a field's value in the diff (certificates are long)


def _shown(value: object) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= _SHOWN_VALUE else text[: _SHOWN_VALUE - 3] + "..."


def _ids(ids: tuple[str, ...] | list[str]) -> str:
    return ", ".join(ids) if ids else "none"


def plan_html(plan: MapPushPreview) -> str:
    """The diff, field by field, and whose callbacks would go elsewhere at the current stage."""
    diff = plan.diff
    live = "none" if plan.live_version is None else str(plan.live_version)
    parts = [
        f"<p>Map version {esc(live)} &rarr; {plan.new_version} "
        f"(sha256 <code>{esc(plan.new_sha256[:12])}</code>).</p>",
        f'<p id="diff-counts">Connections added: {len(diff.added)}, removed: '
        f"{len(diff.removed)}, changed: {len(diff.changed)}.</p>",
    ]
    if diff.added:
        parts.append(f'<p class="diff-added">Added: <strong>{esc(_ids(diff.added))}</strong></p>')
    if diff.removed:
        parts.append(
            f'<p class="diff-removed">Removed: <strong>{esc(_ids(diff.removed))}</strong></p>'
        )
    if diff.changed:
        rows = "".join(
            f'<tr><th scope="row">{esc(change.id)}</th><td>{esc(f.field)}</td>'
            f"<td>{esc(_shown(f.before))}</td><td>{esc(_shown(f.after))}</td></tr>"
            for change in diff.changed
            for f in change.fields
        )
        parts.append(
            '<div class="table-wrap"><table id="diff-changed"><caption>Changed fields</caption>'
            '<thead><tr><th scope="col">Connection</th><th scope="col">Field</th>'
            '<th scope="col">Before</th><th scope="col">After</th></tr></thead>'
            f"<tbody>{rows}</tbody></table></div>"
        )
    parts.append(_route_changes(plan))
    return "".join(parts)


def _route_changes(plan: MapPushPreview) -> str:
    if plan.route_changes is None:
        return (
            '<p class="alert">Routes not evaluated: the rollout lives in another flag system '
            "(flags.backend openfeature); any change needs a confirmed apply.</p>"
        )
    head = (
        f'<p id="route-changes">Route changes at stage {plan.stage_percent or 0:g}% '
        f"(flags version {plan.state_version}): {len(plan.route_changes)}</p>"
    )
    items = "".join(
        f'<li class="move-{esc(c.after)}"><strong>{esc(c.id)}</strong>: {esc(c.before)} '
        f"({esc(c.reason_before)}) &rarr; {esc(c.after)} ({esc(c.reason_after)})</li>"
        for c in plan.route_changes
    )
    return head + (f"<ul>{items}</ul>" if items else "")


async def map_overview(request: Request, console: Console, person: Person) -> Response:
    desk = console.map_desk
    if not desk.in_redis:
        view = await run_in_threadpool(console.maps.current)
        body = (
            f'<p id="live">Live map: version {view.document.version}, from the file '
            f"<code>{esc(view.where)}</code> ({len(view.document.connections)} connections).</p>"
            '<p class="notice" role="status">The map is a file here: pushes, history and '
            "rollbacks need Redis (set <code>connection_map_redis</code>; "
            "<code>authswitch connections push</code> publishes the file there).</p>"
        )
    else:
        overview = await run_in_threadpool(desk.overview)
        body = _overview_body(overview, desk.file, person)
    return HTMLResponse(
        layout("Connection map", body, person=person, csrf=csrf_token(request), current="/map")
    )


def _overview_body(overview: MapOverview, file: str, person: Person) -> str:
    live = "none pushed yet" if overview.live_version is None else str(overview.live_version)
    parts = [f'<p id="live">Live map: version {esc(live)}, from {esc(overview.where)}.</p>']
    parts.append(f"<h2>The file <code>{esc(file)}</code> against the live map</h2>")
    if overview.file_problem is not None:
        parts.append(f'<p class="notice" role="alert">{esc(overview.file_problem)}</p>')
    elif overview.file_preview is not None:
        plan = overview.file_preview
        if plan.diff.empty:
            parts.append('<p role="status">No change: the file holds what is live.</p>')
        else:
            parts.append(plan_html(plan))
            if person.may_change:
                parts.append(
                    f'<p><a class="action" href="{link("/map/preview", change="push")}">'
                    "Preview the push</a></p>"
                )
    parts.append("<h2>Push history</h2>")
    parts.append(_history(overview, person))
    return "".join(parts)


def _history(overview: MapOverview, person: Person) -> str:
    if not overview.history:
        return "<p>No pushes yet.</p>"
    rows = "".join(_history_row(r, overview, person) for r in overview.history)
    return (
        '<div class="table-wrap"><table id="map-history"><caption>Pushes, newest first'
        '</caption><thead><tr><th scope="col">Version</th><th scope="col">Time</th>'
        '<th scope="col">Actor</th><th scope="col">Action</th><th scope="col">Connections</th>'
        '<th scope="col">Kept</th><th scope="col">Reason</th><th scope="col">Rollback</th>'
        f"</tr></thead><tbody>{rows}</tbody></table></div>"
    )


def _history_row(record: PushRecord, overview: MapOverview, person: Person) -> str:
    live = record.version == overview.live_version
    kept = record.version in overview.kept
    action = record.action + (
        f" to {record.rolled_back_to}" if record.rolled_back_to is not None else ""
    )
    rollback = ""
    if kept and not live and person.may_change:
        target = link("/map/preview", change="rollback", version=str(record.version))
        rollback = f'<a class="action" href="{target}">Preview rollback</a>'
    return (
        f"<tr><td>{record.version}{' (live)' if live else ''}</td><td>{esc(record.time)}</td>"
        f"<td>{esc(record.actor)}</td><td>{esc(action)}</td><td>{record.connections}</td>"
        f"<td>{'yes' if kept else 'no'}</td><td>{esc(record.reason)}</td><td>{rollback}</td></tr>"
    )


async def map_preview(request: Request, console: Console, person: Person) -> Response:
    change = parse_map_change(request.query_params)
    plan = await run_in_threadpool(console.map_desk.preview, change)
    csrf = csrf_token(request)
    return HTMLResponse(
        layout(
            "Preview: " + change.describe(),
            _confirm_form(change, plan, csrf),
            person=person,
            csrf=csrf,
            current="/map",
        )
    )


def _confirm_form(change: MapChange, plan: MapPushPreview, csrf: str) -> str:
    if plan.diff.empty:
        return plan_html(plan) + '<p role="status">No change to push.</p>' + _back()
    hidden = {"change": change.kind, "version": change.version or "", "token": plan.token}
    return plan_html(plan) + confirm_form(
        "/map/apply",
        csrf,
        hidden,
        moved=[c.id for c in plan.route_changes or ()],
        apply_label=change.describe(),
        back=_back(),
    )


def _back() -> str:
    return f'<a href="{link("/map")}">Back to the map</a>'


async def map_apply(request: Request, console: Console, person: Person) -> Response:
    fields: dict[str, str] = request.state.form  # read and CSRF-checked by the guard
    change = parse_map_change(fields)
    if fields.get("confirm") != "yes":
        return _answer(request, person, change, "Not applied: tick the confirmation first.", 400)
    plan, result = await run_in_threadpool(
        lambda: console.map_desk.apply(
            change,
            token=fields.get("token", ""),
            actor=person.name,
            reason=fields.get("reason", ""),
        )
    )
    moved = [c.id for c in plan.route_changes or ()]
    text = (
        f"Pushed version {result.version} ({result.connections} connections) by {person.name}. "
        f"Callbacks now routed elsewhere: {_ids(moved)}."
    )
    return _answer(request, person, change, text, 200)


def _answer(
    request: Request, person: Person, change: MapChange, text: str, status: int
) -> Response:
    body = f'<p role="status" id="outcome">{esc(text)}</p>{_back()}'
    return HTMLResponse(
        layout(change.describe(), body, person=person, csrf=csrf_token(request), current="/map"),
        status,
    )
