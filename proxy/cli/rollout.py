"""`authswitch rollout`: status, gated promotion (`plan`) and per-connection `evidence`.

Exit codes as `authswitch flags`: 0 ok, 2 usage or configuration, 3 a backend unavailable,
4 the state changed since the preview (nothing written), 5 refused (the rollout pauses).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from redis.exceptions import RedisError

from connection_map import ConnectionMap, ConnectionMapDocument, ConnectionMapError
from connection_map.served import served_from
from flags import AuditInputError, RolloutStore, RolloutStoreError, VersionConflict
from proxy.cli.exit_codes import ExitCode
from proxy.cli.options import ActorOption, ApplyOption, ApplyReasonOption, ConfigOption, JsonOption
from proxy.cli.output import fail, print_json, render_table
from proxy.config import Config, ConfigError, load_config
from proxy.flag_backend import UnmanagedFlagBackend, open_rollout_store
from proxy.map_backend import MapBackendUnavailable, served_map_document, served_map_name
from proxy.outcomes.counts import OutcomesUnavailable

if TYPE_CHECKING:
    from proxy.outcomes.counts import OutcomeStore
    from proxy.outcomes.guard import RolloutGuard
    from proxy.outcomes.status_report import ConnectionStatus

USAGE, UNAVAILABLE = ExitCode.USAGE, ExitCode.BACKEND_UNAVAILABLE
CONFLICT, REFUSED = ExitCode.CONFLICT, ExitCode.REFUSED

rollout_app = typer.Typer(
    help="The rollout's instruments: login outcomes per connection and side, the guard's "
    "verdicts, gated promotion and per-connection evidence.",
    no_args_is_help=True,
    add_completion=False,
)


class _Failure(Exception):
    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class _Context:
    settings: Config
    connections: ConnectionMap
    outcomes: OutcomeStore
    rollout: RolloutStore
    guard: RolloutGuard
    document: ConnectionMapDocument  # the whole served map (the readiness gate needs imports)

    def not_ready(self, ids: Sequence[str]) -> dict[str, str]:
        """The connections among `ids` the shadow readiness gate refuses (gate off: none)."""
        shadow = self.settings.shadow
        if not shadow.gate or not ids:
            return {}
        from proxy.shadow.gate import gate_refusals
        from proxy.shadow.service import readiness_store_for

        wanted = set(ids)
        entries = [c for c in self.document.connections if c.id in wanted]
        try:
            return gate_refusals(entries, shadow, readiness_store_for(shadow, cli=True))
        except RedisError as exc:
            raise _Failure(
                UNAVAILABLE, f"shadow readiness counts in Redis: {type(exc).__name__}"
            ) from None


@contextmanager
def _context(config: Path, as_json: bool) -> Iterator[_Context]:
    """Config, map, outcome store, flag store and a (non-acting) guard; failures -> exit codes."""
    # Loaded here: the other commands shouldn't pay for aiohttp and the outcome machinery.
    from proxy.outcomes.guard import RolloutGuard
    from proxy.outcomes.lease import ProcessLease
    from proxy.outcomes.service import open_outcome_store

    try:
        try:
            settings = load_config(config)
            document = served_map_document(settings, min_timeout=2)  # what the proxy serves
            connections = ConnectionMap.from_records(
                document.version,
                [served_from(c) for c in document.connections],
                source=served_map_name(settings),
            )
            if not settings.outcomes.enabled:
                raise _Failure(USAGE, "outcomes are not enabled here (set outcomes.enabled: true)")
            store, client, _ = open_outcome_store(settings, client_name="authswitch-rollout-cli")
            if client is None:
                raise _Failure(
                    USAGE,
                    "outcomes are kept in the proxy's memory (no Redis): the CLI can't read "
                    "them; set outcomes.store: redis",
                )
            rollout = open_rollout_store(
                settings, client_name="authswitch-rollout-cli", min_timeout=2
            )
            guard = RolloutGuard(
                settings.outcomes, store, rollout, lambda: connections, ProcessLease()
            )
            yield _Context(settings, connections, store, rollout, guard, document)
        except (ConfigError, ConnectionMapError, UnmanagedFlagBackend, AuditInputError) as exc:
            raise _Failure(USAGE, str(exc)) from None
        except VersionConflict as exc:
            raise _Failure(CONFLICT, str(exc)) from None
        except (RolloutStoreError, OutcomesUnavailable, MapBackendUnavailable) as exc:
            raise _Failure(UNAVAILABLE, str(exc)) from None
    except _Failure as failure:
        _exit(failure, as_json)


@rollout_app.command()
def status(
    config: ConfigOption,
    as_json: JsonOption = False,
    window: Annotated[
        int, typer.Option("--window", min=1, max=1440 * 14, help="Minutes of outcomes to show.")
    ] = 60,
    connection: Annotated[
        str | None, typer.Option("--connection", help="Only this connection.")
    ] = None,
) -> None:
    """Per connection: route and why, callbacks/min and success rate per side, guard verdict."""
    from proxy.outcomes.guard import HISTORY_LIMIT, legacy_side_source, new_side_source
    from proxy.outcomes.status_report import rollout_status

    with _context(config, as_json) as ctx:
        rows = rollout_status(
            ctx.rollout.read(),
            ctx.rollout.history(HISTORY_LIMIT),
            ctx.connections,
            ctx.outcomes,
            ctx.guard,
            new_source=new_side_source(ctx.settings.outcomes),
            legacy_source=legacy_side_source(ctx.settings.outcomes),
            window_minutes=window,
            now=time.time(),
            only=connection,
        )
        if connection is not None and not rows:
            raise _Failure(USAGE, f"no connection {connection!r} in the connection map")
    mode = ctx.settings.outcomes.guard.mode
    if as_json:
        document = {"window_minutes": window, "guard_mode": mode}
        print_json({**document, "connections": [row.as_dict() for row in rows]})
        return
    typer.echo(_status_table(rows, window, mode))


@rollout_app.command()
def plan(
    config: ConfigOption,
    preview: Annotated[
        bool, typer.Option("--preview", help="Check the gates and show the next step's plan.")
    ] = False,
    apply: ApplyOption = None,
    reason: ApplyReasonOption = None,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Advance the stage to the next step, only while every moved connection is healthy."""
    from flags.stage_plan import token_version
    from proxy.outcomes.guard import HISTORY_LIMIT
    from proxy.outcomes.promotion import plan_promotion

    with _context(config, as_json) as ctx:
        if preview == (apply is not None):
            raise _Failure(USAGE, "give either --preview or --apply TOKEN")
        if apply is not None and not reason:
            raise _Failure(USAGE, "--reason is required with --apply")
        state = ctx.rollout.read()
        promotion = plan_promotion(
            state,
            ctx.rollout.history(HISTORY_LIMIT),
            ctx.connections,
            ctx.guard,
            ctx.settings.outcomes.promotion,
            now=time.time(),
            not_ready=ctx.not_ready,
        )
        if apply is None:
            _print_promotion(promotion.as_dict(), as_json)
            if promotion.paused:
                raise typer.Exit(REFUSED)
            return
        if promotion.plan is not None and apply != promotion.plan.token:
            previewed = token_version(apply)
            raise _Failure(
                CONFLICT if previewed is not None else USAGE,
                "the plan differs from the previewed one (the state, the map or the step "
                "changed); nothing was written: preview again",
            )
        if promotion.paused or promotion.plan is None:
            raise _Failure(REFUSED, "the rollout pauses: " + "; ".join(promotion.paused))
        if not actor:
            raise _Failure(USAGE, "--actor (or AUTHSWITCH_ACTOR) is required with --apply")
        assert reason is not None
        record = ctx.rollout.write(
            promotion.plan.version,
            promotion.plan.new_state,
            actor=actor,
            reason=reason,
            action="stage",
        )
    result = {
        "version": record.version,
        "change": record.summary(),
        "to_new": promotion.plan.to_new,
    }
    if as_json:
        print_json(result)
    else:
        typer.echo(f"applied version {record.version}: {record.summary()}")


@rollout_app.command()
def evidence(
    connection: Annotated[str, typer.Argument(help="Connection id.", show_default=False)],
    config: ConfigOption,
    days: Annotated[int, typer.Option("--days", min=1, max=90, help="Days of counts.")] = 14,
    as_json: JsonOption = False,
) -> None:
    """One connection's facts, flag history, outcomes per side and day, guard decisions."""
    from proxy.outcomes.evidence import connection_evidence
    from proxy.outcomes.guard import HISTORY_LIMIT

    with _context(config, as_json) as ctx:
        served = ctx.connections.get(connection)
        if served is None:
            raise _Failure(USAGE, f"no connection {connection!r} in the connection map")
        document = connection_evidence(
            served,
            ctx.rollout.read(),
            ctx.rollout.history(HISTORY_LIMIT),
            ctx.outcomes,
            ctx.guard,
            days=days,
            now=time.time(),
        )
    if as_json:
        print_json(document)
        return
    typer.echo(_evidence_text(document))


# -- output ------------------------------------------------------------------------------------


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


_STATUS_HEADER = [
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


def _status_table(rows: list[ConnectionStatus], window: int, mode: str) -> str:
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
    return "\n".join([f"last {window} min; guard mode {mode}", render_table(_STATUS_HEADER, lines)])


def _print_promotion(document: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(document)
        return
    step = document["next_percent"]
    lines = [f"stage {document['current_percent']:g} % -> {'-' if step is None else f'{step:g} %'}"]
    for connection, verdict in sorted(document["verdicts"].items()):
        lines.append(f"  {connection}: {verdict}")
    if document["paused"]:
        lines.append("paused:")
        lines.extend(f"  - {why}" for why in document["paused"])
    else:
        plan = document["plan"]
        lines.append(f"moves to the new provider: {', '.join(plan['to_new']) or '-'}")
        if plan["held"]:
            lines.append(f"held on legacy by their assessment: {', '.join(plan['held'])}")
        lines.append(f"apply with: authswitch rollout plan --apply {plan['token']} --reason ...")
    typer.echo("\n".join(lines))


def _evidence_text(document: dict[str, Any]) -> str:
    facts = document["facts"]
    lines = [
        f"connection {document['connection']} ({facts['protocol']}, {facts['assessment']}, "
        f"new provider {facts['new_provider']})",
        f"last routing change: {document['last_routing_change'] or '-'}",
        f"guard now: {document['guard_now']['verdict']}",
        "flag history:",
        *(
            f"  v{r['version']} {r['time']} {r['actor']} {r['action']}: {r['change']} "
            f"({r['reason']})"
            for r in document["flag_history"]
        ),
        "outcomes per day (side source: succeeded/failed/forwarded):",
    ]
    for day in document["outcomes_per_day"]:
        parts = [
            f"{side} {source} {c.get('succeeded', 0)}/{c.get('failed', 0)}/{c.get('forwarded', 0)}"
            for side, sources in day["counts"].items()
            for source, c in sources.items()
        ]
        if parts:
            lines.append(f"  {day['day']} {day['phase']:<6} " + "; ".join(parts))
    return "\n".join(lines)


def _exit(failure: _Failure, as_json: bool) -> NoReturn:
    fail(failure.message, failure.code, as_json=as_json)
