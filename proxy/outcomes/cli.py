"""`authswitch rollout status`: what every connection's logins do on each side, and the guard."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from connection_map import ConnectionMapError, load_connection_map
from flags import RolloutStoreError
from proxy.config import ConfigError, load_config
from proxy.flag_backend import UnmanagedFlagBackend, open_rollout_store
from proxy.outcomes.counts import OutcomesUnavailable

if TYPE_CHECKING:
    from proxy.outcomes.status_report import ConnectionStatus

USAGE, UNAVAILABLE = 2, 3

rollout_app = typer.Typer(
    help="The rollout's instruments: login outcomes per connection and side, the guard.",
    no_args_is_help=True,
    add_completion=False,
)


@rollout_app.command()
def status(
    config: Annotated[
        Path,
        typer.Option("--config", "-c", envvar="AUTHSWITCH_CONFIG", help="The authswitch config."),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout, for scripts.")] = False,
    window: Annotated[
        int, typer.Option("--window", min=1, max=1440 * 14, help="Minutes of outcomes to show.")
    ] = 60,
    connection: Annotated[
        str | None, typer.Option("--connection", help="Only this connection.")
    ] = None,
) -> None:
    """Per connection: route and why, callbacks/min and success rate per side, guard verdict."""
    # Loaded here: the other commands shouldn't pay for aiohttp and the outcome machinery.
    from proxy.outcomes.guard import HISTORY_LIMIT, RolloutGuard, new_side_source
    from proxy.outcomes.lease import ProcessLease
    from proxy.outcomes.service import open_outcome_store
    from proxy.outcomes.status_report import rollout_status

    try:
        settings = load_config(config)
        connections = load_connection_map(settings.connection_map)  # the map SREs edit
        if not settings.outcomes.enabled:
            _fail(USAGE, "outcomes are not enabled here (set outcomes.enabled: true)", as_json)
        store, client, _ = open_outcome_store(settings, client_name="authswitch-rollout-cli")
        if client is None:
            _fail(
                USAGE,
                "outcomes are kept in the proxy's memory (no Redis): the CLI can't read them; "
                "set outcomes.store: redis",
                as_json,
            )
        rollout = open_rollout_store(settings, client_name="authswitch-rollout-cli", min_timeout=2)
        state, history = rollout.read(), rollout.history(HISTORY_LIMIT)
        guard = RolloutGuard(settings.outcomes, store, rollout, lambda: connections, ProcessLease())
        rows = rollout_status(
            state,
            history,
            connections,
            store,
            guard,
            new_source=new_side_source(settings.outcomes),
            window_minutes=window,
            now=time.time(),
            only=connection,
        )
    except (ConfigError, ConnectionMapError, UnmanagedFlagBackend) as exc:
        _fail(USAGE, str(exc), as_json)
    except (RolloutStoreError, OutcomesUnavailable) as exc:
        _fail(UNAVAILABLE, str(exc), as_json)
    if connection is not None and not rows:
        _fail(USAGE, f"no connection {connection!r} in the connection map", as_json)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "window_minutes": window,
                    "guard_mode": settings.outcomes.guard.mode,
                    "connections": [row.as_dict() for row in rows],
                },
                indent=2,
            )
        )
        return
    typer.echo(_table(rows, window, settings.outcomes.guard.mode))


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _age(row: ConnectionStatus) -> str:
    if row.flipped_at is None:
        return "-"
    seconds = int((row.now - row.flipped_at).total_seconds())
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86_400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86_400}d{seconds % 86_400 // 3600:02d}h"


def _table(rows: list[ConnectionStatus], window: int, mode: str) -> str:
    header = [
        "CONNECTION",
        "ROUTE",
        "WHY",
        "LEGACY/MIN",
        "NEW/MIN",
        "LEGACY OK",
        "NEW OK",
        "N LEGACY",
        "N NEW",
        "GUARD",
        "SINCE CHANGE",
    ]
    lines = [
        [
            row.connection,
            row.route,
            row.reason,
            f"{row.legacy.callbacks_per_minute:.2f}",
            f"{row.new.callbacks_per_minute:.2f}",
            _rate(row.legacy.success_rate),
            _rate(row.new.success_rate),
            str(row.legacy.succeeded + row.legacy.failed),
            str(row.new.succeeded + row.new.failed),
            row.judgement.verdict if row.judgement else "-",
            _age(row),
        ]
        for row in rows
    ]
    widths = [max([len(h), *(len(r[i]) for r in lines)]) for i, h in enumerate(header)]
    text = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in [header, *lines]
    ]
    return "\n".join([f"last {window} min; guard mode {mode}", *text])


def _fail(code: int, message: str, as_json: bool) -> NoReturn:
    if as_json:
        typer.echo(json.dumps({"error": message, "exit_code": code}))
    print(f"authswitch rollout: {message}", file=sys.stderr)
    raise typer.Exit(code)
