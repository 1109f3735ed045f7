"""`authswitch flags ...`: read and change the rollout state, file or Redis backend alike.

Every change is a compare-and-set on the state's version with an audit record (actor, time,
reason, before -> after). Exit codes are part of the interface (see ``ExitCode``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Annotated

import typer
from pydantic import ValidationError
from redis import RedisError

from flags import (
    AuditRecord,
    RedisRolloutStore,
    RolloutState,
    plan_stage,
)
from flags.rollout_change import same_state, set_canary, set_kill_all, set_override, stale_preview
from flags.route_report import ConnectionFacts, ConnectionRoute, ids_not_in, route_report
from flags.stage_plan import StagePlan, token_version
from flags.validation_messages import describe_validation_error
from proxy.cli.exit_codes import ExitCode
from proxy.cli.flags_session import FlagsSession, flags_session, stop
from proxy.cli.options import ActorOption, ApplyOption, ApplyReasonOption, ConfigOption, JsonOption
from proxy.cli.output import print_json, render_table
from proxy.shadow.gate import forced_past_gate, gate_refusals
from proxy.shadow.service import readiness_store_for

flags_app = typer.Typer(
    help="Inspect and change the rollout flags: status, enable/disable, kill switch, canary, "
    "stage (preview, then apply), history.",
    no_args_is_help=True,
    add_completion=False,
)
canary_app = typer.Typer(help="Add or remove canary connections.", no_args_is_help=True)
flags_app.add_typer(canary_app, name="canary")

ReasonOption = Annotated[str, typer.Option("--reason", help="Why; kept in the audit trail.")]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Write even if the connection map doesn't allow it.")
]
ConnectionArgument = Annotated[str, typer.Argument(help="Connection id.", show_default=False)]


# -- commands --------------------------------------------------------------------------------


@flags_app.command()
def status(config: ConfigOption, as_json: JsonOption = False) -> None:
    """Per connection: assessment, bucket, effective route and the reason."""
    with flags_session(config, as_json) as session:
        state = session.store.read()
        latest = session.store.history(1)
        facts = session.connection_facts()
        rows = route_report(state, facts)
        unknown = ids_not_in(state, [f.id for f in facts])
        if as_json:
            print_json(
                {
                    "backend": session.store.description,
                    "state": state.model_dump(mode="json"),
                    "last_change": latest[0].model_dump(mode="json") if latest else None,
                    "connections": [asdict(row) for row in rows],
                    "not_in_connection_map": unknown,
                }
            )
            return
        typer.echo(f"backend: {session.store.description}")
        typer.echo(_describe_state(state))
        if latest:
            typer.echo(f"last change: {_describe_record(latest[0])}")
        typer.echo("")
        typer.echo(render_table(_STATUS_COLUMNS, [_status_row(row) for row in rows]))
        moved = sum(row.route == "new" for row in rows)
        typer.echo(f"\n{moved} of {len(rows)} connections go to the new provider.")
        if unknown:
            typer.echo(f"named in the flags but not in the connection map: {', '.join(unknown)}")


@flags_app.command()
def enable(
    connection: ConnectionArgument,
    config: ConfigOption,
    reason: ReasonOption,
    actor: ActorOption = None,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Send CONNECTION to the new provider whatever the stage (override "on")."""
    with flags_session(config, as_json) as session:
        session.check_connection(connection, force=force, moving=True)
        reason = _pass_gate(session, [connection], force, reason)
        session.change(
            "enable", set_override(connection, "on"), actor, reason, connection=connection
        )


@flags_app.command()
def disable(
    connection: ConnectionArgument,
    config: ConfigOption,
    reason: ReasonOption,
    actor: ActorOption = None,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Kill switch for one: send CONNECTION to legacy whatever else says (override "off")."""
    with flags_session(config, as_json) as session:
        session.check_connection(connection, force=force, moving=False)
        session.change(
            "disable", set_override(connection, "off"), actor, reason, connection=connection
        )


@flags_app.command()
def clear(
    connection: ConnectionArgument,
    config: ConfigOption,
    reason: ReasonOption,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Remove CONNECTION's override: it follows the canary list and the stage again."""
    with flags_session(config, as_json) as session:
        session.change(
            "clear", set_override(connection, None), actor, reason, connection=connection
        )


@flags_app.command()
def kill(
    config: ConfigOption,
    reason: ReasonOption,
    all_connections: Annotated[
        bool, typer.Option("--all", help="Required: every connection goes to legacy.")
    ] = False,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Global kill switch: every callback goes to legacy (--all required)."""
    with flags_session(config, as_json) as session:
        _require_all(all_connections, "kill")
        session.change("kill_all", set_kill_all(True), actor, reason)


@flags_app.command()
def unkill(
    config: ConfigOption,
    reason: ReasonOption,
    all_connections: Annotated[
        bool, typer.Option("--all", help="Required: lift the global kill switch.")
    ] = False,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Lift the global kill switch (--all required)."""
    with flags_session(config, as_json) as session:
        _require_all(all_connections, "unkill")
        session.change("unkill_all", set_kill_all(False), actor, reason)


@canary_app.command("add")
def canary_add(
    connection: ConnectionArgument,
    config: ConfigOption,
    reason: ReasonOption,
    actor: ActorOption = None,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Put CONNECTION in the canary list (new provider whatever the stage)."""
    with flags_session(config, as_json) as session:
        session.check_connection(connection, force=force, moving=True)
        session.change(
            "canary_add", set_canary(connection, True), actor, reason, connection=connection
        )


@canary_app.command("remove")
def canary_remove(
    connection: ConnectionArgument,
    config: ConfigOption,
    reason: ReasonOption,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Take CONNECTION out of the canary list."""
    with flags_session(config, as_json) as session:
        session.change(
            "canary_remove", set_canary(connection, False), actor, reason, connection=connection
        )


@flags_app.command()
def stage(
    percent: Annotated[str, typer.Argument(help="Target stage, 0-100 (steps of 0.01), e.g. 25.")],
    config: ConfigOption,
    preview: Annotated[
        bool, typer.Option("--preview", help="Show which connections would change route.")
    ] = False,
    apply: ApplyOption = None,
    reason: ApplyReasonOption = None,
    actor: ActorOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Apply even if a connection it moves is not ready.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Preview a stage change (prints a token), then apply exactly that preview."""
    with flags_session(config, as_json) as session:
        target = _parse_percent(percent)
        if preview == (apply is not None):
            stop(ExitCode.USAGE, "usage", "give either --preview or --apply TOKEN")
        state = session.store.read()
        plan = _plan(state, target, session.connection_facts())
        if apply is None:
            session.print_plan(plan, _not_ready(session, plan.to_new))
            return
        if reason is None:
            stop(ExitCode.USAGE, "usage", "--reason is required with --apply")
        _check_token(apply, plan)
        reason = _pass_gate(session, plan.to_new, force, reason)
        if same_state(plan.new_state, state):
            session.print_unchanged(state, None)
            return
        record = session.write(plan.version, plan.new_state, actor, reason, "stage")
        session.print_record(
            record, extra={"moved_to_new": plan.to_new, "moved_to_legacy": plan.to_legacy}
        )


@flags_app.command()
def history(
    config: ConfigOption,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10_000)] = 20,
    as_json: JsonOption = False,
) -> None:
    """The audit trail, newest first."""
    with flags_session(config, as_json) as session:
        records = session.store.history(limit)
        if as_json:
            print_json([record.model_dump(mode="json") for record in records])
            return
        rows = [[str(r.version), r.time, r.actor, r.action, r.summary(), r.reason] for r in records]
        typer.echo(render_table(["VERSION", "TIME", "ACTOR", "ACTION", "CHANGE", "REASON"], rows))


# -- state changes -----------------------------------------------------------------------------


@flags_app.command("initialise-empty-store")
def initialise_empty_store(
    config: ConfigOption,
    reason: ReasonOption,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """After Redis lost its data: store the empty state (every connection on legacy), audited.

    Changes are refused while the store is empty but replicas were serving a version; this
    starts again from the empty state on purpose. Refused if a state is stored.
    """
    with flags_session(config, as_json) as session:
        store = session.store
        if not isinstance(store, RedisRolloutStore):
            stop(ExitCode.USAGE, "usage", "initialise-empty-store is for the redis backend only")
        record = store.initialise_empty_store(actor=session.require_actor(actor), reason=reason)
        session.print_record(record)


def _not_ready(session: FlagsSession, ids: Sequence[str]) -> dict[str, str]:
    """The connections among `ids` the readiness gate refuses, with why (gate off: none)."""
    shadow = session.config.shadow
    if not shadow.gate or not ids:
        return {}
    entries = [session.connections[i] for i in ids if i in session.connections]
    try:
        return gate_refusals(entries, shadow, readiness_store_for(shadow, cli=True))
    except RedisError as exc:
        stop(
            ExitCode.BACKEND_UNAVAILABLE,
            "shadow_unavailable",
            f"shadow readiness counts in Redis: {type(exc).__name__}",
        )


def _pass_gate(session: FlagsSession, ids: Sequence[str], force: bool, reason: str) -> str:
    """Refuse to move a connection that is not ready; forced, the audit record says past what."""
    refused = _not_ready(session, ids)
    if not refused:
        return reason
    listed = "; ".join(f"{cid}: {why}" for cid, why in refused.items())
    if not force:
        stop(
            ExitCode.REFUSED,
            "not_ready",
            f"not ready to move (shadow readiness) - {listed}; --force --reason moves it anyway",
        )
    return forced_past_gate(reason, refused)


def _plan(state: RolloutState, target: float, facts: Sequence[ConnectionFacts]) -> StagePlan:
    try:
        return plan_stage(state, target, {f.id: f.migratable for f in facts})
    except ValidationError as exc:
        stop(ExitCode.USAGE, "usage", f"PERCENT: {describe_validation_error(exc)}")


def _check_token(token: str, plan: StagePlan) -> None:
    if token_version(token) is None:
        stop(ExitCode.USAGE, "usage", f"--apply {token!r} is not a preview token")
    why = stale_preview(token, planned=plan.token, version=plan.version)
    if why is not None:
        stop(ExitCode.CONFLICT, "stale_preview", f"{why}; nothing was written: preview again")


def _parse_percent(text: str) -> float:
    try:
        return float(text.strip().removesuffix("%"))
    except ValueError:
        stop(ExitCode.USAGE, "usage", f"PERCENT must be a number from 0 to 100 (got {text!r})")


def _require_all(given: bool, command: str) -> None:
    if not given:
        hint = " (one connection: authswitch flags disable CONN)" if command == "kill" else ""
        stop(ExitCode.USAGE, "usage", f"{command} applies to every connection: pass --all{hint}")


# -- output ------------------------------------------------------------------------------------

_STATUS_COLUMNS = ["CONNECTION", "PROTOCOL", "ASSESSMENT", "BUCKET", "IN FROM", "ROUTE", "REASON"]


def _status_row(row: ConnectionRoute) -> list[str]:
    reason = row.reason
    if row.reason != row.flag_reason:
        reason += f" (flag: {row.flag_route}, {row.flag_reason})"
    return [
        row.id,
        row.protocol,
        row.assessment,
        str(row.bucket),
        f"{row.enters_at_percent:.2f}%",
        row.route,
        reason,
    ]


def _describe_state(state: RolloutState) -> str:
    canary = ", ".join(state.canary) or "none"
    overrides = ", ".join(f"{k}={v}" for k, v in sorted(state.overrides.items())) or "none"
    kill = "ON (every connection goes to legacy)" if state.kill_all else "off"
    return (
        f"version {state.version}; stage {state.stage_percent:g}%; kill_all {kill}; "
        f"canary: {canary}; overrides: {overrides}"
    )


def _describe_record(record: AuditRecord) -> str:
    return (
        f"version {record.version} at {record.time} by {record.actor} ({record.action}): "
        f"{record.summary()}; reason: {record.reason}"
    )
