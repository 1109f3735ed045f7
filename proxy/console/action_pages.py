"""Preview and confirm: the preview names exactly the connections that change route; the
confirmation form carries its token, asks for a reason and repeats those names."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from proxy.console.actions import ActionRequest, Preview, parse_action
from proxy.console.identity import Person
from proxy.console.page import confirm_form, esc, layout, link
from proxy.console.sign_in import csrf_token

if TYPE_CHECKING:
    from proxy.console.app import Console


def _ids(ids: tuple[str, ...]) -> str:
    return ", ".join(ids) if ids else "none"


def _moves(preview: Preview) -> str:
    plan = preview.plan
    parts = [
        f'<p class="move-new">Would move to the new provider ({len(plan.to_new)}): '
        f"<strong>{esc(_ids(plan.to_new))}</strong></p>",
        f'<p class="move-legacy">Would move back to legacy ({len(plan.to_legacy)}): '
        f"<strong>{esc(_ids(plan.to_legacy))}</strong></p>",
    ]
    if plan.held:
        parts.append(f"<p>Kept on legacy by their assessment: {esc(_ids(plan.held))}</p>")
    for connection, why in preview.not_ready.items():
        parts.append(
            f'<p class="alert">Not ready (shadow readiness): {esc(connection)}: {esc(why)}</p>'
        )
    return "".join(parts)


async def preview(request: Request, console: Console, person: Person) -> Response:
    wanted = parse_action(request.query_params)
    view = await run_in_threadpool(console.maps.current)
    shown = await run_in_threadpool(console.desk.preview, wanted, view)
    return HTMLResponse(
        layout(
            "Preview: " + wanted.describe(),
            _preview_body(shown, csrf_token(request)),
            person=person,
            csrf=csrf_token(request),
        )
    )


def _preview_body(shown: Preview, csrf: str) -> str:
    wanted, plan = shown.request, shown.plan
    head = (
        f"<p>State version {plan.version}: stage {shown.state.stage_percent:g}%, "
        f"global kill switch {'on' if shown.state.kill_all else 'off'}.</p>"
    )
    if shown.unchanged:
        return head + '<p role="status">No change: the state already says so.</p>' + _back()
    force = (
        '<p><input type="checkbox" id="force" name="force" value="yes">'
        '<label for="force">Move it anyway, past the readiness gate (recorded in the audit '
        "reason)</label></p>"
        if shown.not_ready
        else ""
    )
    hidden = {
        "action": wanted.action,
        "connection": wanted.connection,
        "percent": wanted.percent,
        "token": plan.token,
    }
    return (
        head
        + _moves(shown)
        + confirm_form(
            "/actions/apply",
            csrf,
            hidden,
            moved=[*plan.to_new, *plan.to_legacy],
            apply_label=wanted.describe(),
            back=_back(),
            extra=force,
        )
    )


def _back() -> str:
    return f'<a href="{link("/connections")}">Back to the connections</a>'


async def apply(request: Request, console: Console, person: Person) -> Response:
    fields: dict[str, str] = request.state.form  # read and CSRF-checked by the guard
    wanted = parse_action(fields)
    if fields.get("confirm") != "yes":
        return _answer(request, person, wanted, "Not applied: tick the confirmation first.", 400)
    view = await run_in_threadpool(console.maps.current)
    shown, record = await run_in_threadpool(
        lambda: console.desk.apply(
            wanted,
            view,
            token=fields.get("token", ""),
            actor=person.name,
            reason=fields.get("reason", ""),
            force=fields.get("force") == "yes",
        )
    )
    if record is None:
        return _answer(request, person, wanted, "No change: the state already said so.", 200)
    moved = (
        f"Moved to the new provider: {_ids(shown.plan.to_new)}. "
        f"Moved to legacy: {_ids(shown.plan.to_legacy)}."
    )
    return _answer(
        request,
        person,
        wanted,
        f"Applied as version {record.version} by {record.actor}. {moved}",
        200,
    )


def _answer(
    request: Request, person: Person, wanted: ActionRequest, text: str, status: int
) -> Response:
    body = f'<p role="status" id="outcome">{esc(text)}</p>{_back()}'
    return HTMLResponse(
        layout(wanted.describe(), body, person=person, csrf=csrf_token(request)), status
    )
