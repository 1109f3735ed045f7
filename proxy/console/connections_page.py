"""The connections table: filter, sort and search by query parameters (no script needed)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from flags import RolloutState
from proxy.console.page import PREFIX, esc, link
from proxy.console.rollout_view import ConnectionRow
from proxy.outcomes.status_report import SideFigures

REASONS = {
    "kill_all": "global kill switch",
    "override_off": "kill switch (override off)",
    "override_on": "enabled (override on)",
    "canary": "canary",
    "stage_in": "in the stage (bucket below the percentage)",
    "stage_out": "outside the stage (bucket at or above the percentage)",
    "not_imported": "not imported into the new provider",
}

_SORTS: dict[str, Callable[[ConnectionRow], object]] = {
    "id": lambda r: r.id,
    "protocol": lambda r: (r.connection.protocol.value, r.id),
    "triage": lambda r: (r.triage_class, r.id),
    "route": lambda r: (r.route.route, r.route.reason, r.id),
    "bucket": lambda r: (r.route.bucket, r.id),
    "legacy_rate": lambda r: (_rate(r.legacy), r.id),
    "new_rate": lambda r: (_rate(r.new), r.id),
    "traffic": lambda r: (_traffic(r), r.id),
}


@dataclass(frozen=True, slots=True)
class TableQuery:
    search: str = ""
    protocol: str = ""
    route: str = ""
    triage: str = ""
    sort: str = "id"
    descending: bool = False

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> TableQuery:
        sort = params.get("sort", "id")
        return cls(
            search=params.get("q", "").strip()[:200],
            protocol=params.get("protocol", "")
            if params.get("protocol") in ("saml", "oidc")
            else "",
            route=params.get("route", "") if params.get("route") in ("new", "legacy") else "",
            triage=params.get("triage", "")[:40],
            sort=sort if sort in _SORTS else "id",
            descending=params.get("dir") == "desc",
        )

    def select(self, rows: Sequence[ConnectionRow]) -> list[ConnectionRow]:
        needle = self.search.lower()
        kept = [
            r
            for r in rows
            if (not needle or needle in _searchable(r))
            and (not self.protocol or r.connection.protocol.value == self.protocol)
            and (not self.route or r.route.route == self.route)
            and (not self.triage or r.triage_class == self.triage)
        ]
        kept.sort(key=_SORTS[self.sort], reverse=self.descending)  # type: ignore[arg-type]
        return kept


def _searchable(row: ConnectionRow) -> str:
    c = row.connection
    org = c.organization.name if c.organization and c.organization.name else ""
    return f"{c.id} {c.name or ''} {org}".lower()


def _rate(figures: SideFigures | None) -> float:
    rate = figures.success_rate if figures else None
    return -1.0 if rate is None else rate


def _traffic(row: ConnectionRow) -> float:
    return sum(f.callbacks_per_minute for f in (row.legacy, row.new) if f is not None)


def explain_route(row: ConnectionRow) -> str:
    """``new`` / ``legacy`` and why, in words (the flag's reason when the map holds it back)."""
    route = row.route
    why = REASONS.get(route.reason, route.reason.replace("_", " "))
    if route.reason != route.flag_reason:
        flag_why = REASONS.get(route.flag_reason, route.flag_reason)
        why += f"; the flag alone says {route.flag_route} ({flag_why})"
    return why


def side_cell(figures: SideFigures | None, missing: str | None) -> str:
    if figures is None:
        return f'<span class="nodata" title="{esc(missing or "")}">no data</span>'
    total = figures.succeeded + figures.failed
    rate = figures.success_rate
    shown = "no data" if rate is None else f"{rate:.1%}"
    return (
        f"{figures.callbacks_per_minute:.1f}/min<br>"
        f'<span class="rate">{shown}</span> <span class="n">(n={total})</span>'
    )


def route_badge(route: str) -> str:
    # text and a shape, never colour alone
    symbol = "▶ new" if route == "new" else "◀ legacy"
    return f'<span class="badge route-{esc(route)}">{symbol}</span>'


def render_connections(
    rows: Sequence[ConnectionRow],
    query: TableQuery,
    state: RolloutState,
    *,
    missing: str | None,
    may_change: bool,
    total: int,
) -> str:
    parts = [_state_summary(state, may_change), _filter_form(query)]
    parts.append(
        f'<p class="count" role="status">{len(rows)} of {total} connections shown'
        + (f'; <span class="nodata">{esc(missing)}</span>' if missing else "")
        + "</p>"
    )
    parts.append(
        '<div class="table-wrap"><table id="connections"><caption class="visually-hidden">'
        "Connections, their route and live outcomes</caption><thead><tr>"
        + "".join(_header(key, label, query) for key, label in _COLUMNS)
        + '<th scope="col">Guard</th><th scope="col">Shadow readiness</th>'
        + ('<th scope="col">Actions</th>' if may_change else "")
        + "</tr></thead><tbody>"
    )
    parts.extend(_row(r, missing, may_change) for r in rows)
    parts.append("</tbody></table></div>")
    return "".join(parts)


_COLUMNS = (
    ("id", "Connection"),
    ("protocol", "Protocol"),
    ("triage", "Triage"),
    ("route", "Route and why"),
    ("bucket", "Bucket"),
    ("legacy_rate", "Legacy: calls, success"),
    ("new_rate", "New: calls, success"),
)


def _header(key: str, label: str, query: TableQuery) -> str:
    active = query.sort == key
    direction = "desc" if active and not query.descending else "asc"
    aria = f' aria-sort="{"descending" if query.descending else "ascending"}"' if active else ""
    href = link(
        "/connections",
        q=query.search,
        protocol=query.protocol,
        route=query.route,
        triage=query.triage,
        sort=key,
        dir=direction,
    )
    return f'<th scope="col"{aria}><a href="{href}">{esc(label)}</a></th>'


def _row(row: ConnectionRow, missing: str | None, may_change: bool) -> str:
    c = row.connection
    reasons = "".join(f"<li>{esc(m)}</li>" for m in row.triage_reasons)
    triage = esc(row.triage_class) + (
        f"<details><summary>reasons</summary><ul>{reasons}</ul></details>" if reasons else ""
    )
    name = f'<br><span class="sub">{esc(c.name)}</span>' if c.name else ""
    cells = [
        f'<th scope="row"><a href="{PREFIX}/connections/{esc(quote(c.id, safe=""))}">'
        f"{esc(c.id)}</a>{name}</th>",
        f"<td>{esc(c.protocol.value)}</td>",
        f"<td>{triage}</td>",
        f"<td>{route_badge(row.route.route)} {esc(explain_route(row))}</td>",
        f"<td>{row.route.bucket}</td>",
        f"<td>{side_cell(row.legacy, missing)}</td>",
        f"<td>{side_cell(row.new, missing)}</td>",
        f"<td>{esc(row.guard_verdict or '-')}</td>",
        f"<td>{esc(row.readiness)}</td>",
    ]
    if may_change:
        cells.append(f"<td>{action_links(row.id)}</td>")
    return f'<tr data-route="{esc(row.route.route)}">{"".join(cells)}</tr>'


def action_links(connection: str) -> str:
    # built by hand, not by `link`: it runs for every row of a 1 000-row page
    quoted = esc(quote(connection, safe=""))
    name = esc(connection)
    return " ".join(
        f'<a class="action" href="{PREFIX}/actions/preview?action={action}&amp;connection={quoted}"'
        f' aria-label="{label} {name}">{label}</a>'
        for action, label in (("disable", "Kill"), ("enable", "Enable"), ("clear", "Clear"))
    )


def _state_summary(state: RolloutState, may_change: bool) -> str:
    kill = (
        '<strong class="alert">ON: every connection goes to legacy</strong>'
        if state.kill_all
        else "off"
    )
    canary = ", ".join(state.canary) or "none"
    actions = ""
    if may_change:
        kill_action = "unkill_all" if state.kill_all else "kill_all"
        actions = (
            f'<form method="get" action="{link("/actions/preview")}" class="inline">'
            '<input type="hidden" name="action" value="stage">'
            '<label for="stage-percent">New stage %</label>'
            '<input id="stage-percent" name="percent" inputmode="decimal" size="6" required>'
            '<button type="submit">Preview stage change</button></form> '
            f'<a class="action" href="{link("/actions/preview", action=kill_action)}">'
            f"{'Lift the global kill switch' if state.kill_all else 'Global kill switch'}</a>"
        )
    return (
        f'<section aria-label="Rollout state" class="state"><p>Version {state.version}; '
        f"stage <strong>{state.stage_percent:g}%</strong>; global kill switch {kill}; "
        f"canary: {esc(canary)}</p>{actions}</section>"
    )


def _filter_form(query: TableQuery) -> str:
    def options(name: str, values: Sequence[tuple[str, str]], chosen: str) -> str:
        return "".join(
            f'<option value="{esc(v)}"{" selected" if v == chosen else ""}>{esc(label)}</option>'
            for v, label in values
        )

    return (
        f'<form method="get" action="{link("/connections")}" class="filters" role="search">'
        '<label for="q">Search</label>'
        f'<input id="q" name="q" type="search" value="{esc(query.search)}">'
        '<label for="protocol">Protocol</label><select id="protocol" name="protocol">'
        + options("protocol", (("", "any"), ("saml", "SAML"), ("oidc", "OIDC")), query.protocol)
        + '</select><label for="route">Route</label><select id="route" name="route">'
        + options("route", (("", "any"), ("new", "new"), ("legacy", "legacy")), query.route)
        + '</select><label for="triage">Triage</label><select id="triage" name="triage">'
        + options(
            "triage",
            (
                ("", "any"),
                ("transparent", "transparent"),
                ("needs_idp_change", "needs IdP change"),
                ("blocked", "blocked"),
            ),
            query.triage,
        )
        + f'</select><input type="hidden" name="sort" value="{esc(query.sort)}">'
        '<button type="submit">Apply</button></form>'
    )
