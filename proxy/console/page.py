"""The page frame every console page shares: header, navigation, who is signed in, sign-out.

Pages are built as strings with every value escaped here or by the caller through ``esc``;
no inline script or style (the CSP forbids both), assets only from /console/static/.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from urllib.parse import urlencode

from proxy.console.identity import Person

PREFIX = "/console"


def esc(value: object) -> str:
    return escape(str(value), quote=True)


def link(path: str, **query: str) -> str:
    """A console URL with a query string (empty values left out), escaped for an attribute."""
    kept = {k: v for k, v in query.items() if v}
    return esc(f"{PREFIX}{path}" + (f"?{urlencode(kept)}" if kept else ""))


def csrf_field(token: str) -> str:
    return f'<input type="hidden" name="csrf_token" value="{esc(token)}">'


def confirm_form(
    apply_path: str,
    csrf: str,
    hidden: Mapping[str, object],
    *,
    moved: list[str],
    apply_label: str,
    back: str,
    extra: str = "",
) -> str:
    """The confirmation every change needs: its preview's fields, a reason for the audit trail,
    a box to tick that names the connections it moves, and the apply button."""
    confirm_text = (
        f"I confirm: this moves {', '.join(moved)}"
        if moved
        else "I confirm: no connection changes route"
    )
    fields = "".join(
        f'<input type="hidden" name="{esc(name)}" value="{esc(value)}">'
        for name, value in hidden.items()
    )
    return (
        f'<form method="post" action="{link(apply_path)}" class="confirm">'
        + csrf_field(csrf)
        + fields
        + '<p><label for="reason">Reason (kept in the audit trail)</label>'
        + '<input id="reason" name="reason" required maxlength="500" size="60"></p>'
        + extra
        + '<p><input type="checkbox" id="confirm" name="confirm" value="yes" required>'
        + f'<label for="confirm">{esc(confirm_text)}</label></p>'
        + f'<p><button type="submit" id="apply">Apply: {esc(apply_label)}</button> '
        + f"{back}</p></form>"
    )


def layout(title: str, body: str, *, person: Person | None, csrf: str, current: str = "") -> str:
    mark = ' aria-current="page"'
    nav = "".join(
        f'<a href="{PREFIX}{path}"{mark if path == current else ""}>{label}</a>'
        for path, label in (
            ("/connections", "Connections"),
            ("/map", "Map"),
            ("/audit", "Audit"),
        )
    )
    who = ""
    if person is not None:
        role = person.role or "no role"
        who = (
            f'<span class="who">Signed in as <strong>{esc(person.name)}</strong> ({esc(role)})'
            f'</span><form method="post" action="{PREFIX}/sign-out" class="inline">'
            f'{csrf_field(csrf)}<button type="submit">Sign out</button></form>'
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · authswitch console</title>"
        f'<link rel="stylesheet" href="{PREFIX}/static/console.css">'
        f'<script src="{PREFIX}/static/console.js" defer></script></head><body>'
        '<a class="skip" href="#main">Skip to content</a>'
        f'<header><span class="brand">authswitch</span><nav aria-label="Console">{nav}</nav>'
        f"{who}</header>"
        f'<main id="main"><h1>{esc(title)}</h1>{body}</main></body></html>'
    )


def message_page(title: str, message: str, *, person: Person | None, csrf: str) -> str:
    return layout(
        title, f'<p class="notice" role="alert">{esc(message)}</p>', person=person, csrf=csrf
    )
