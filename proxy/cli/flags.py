"""`authswitch flags ...`: read and change the rollout state, file or Redis backend alike.

Every change is a compare-and-set on the state's version with an audit record (actor, time,
reason, before -> after). Exit codes are part of the interface (see ``ExitCode``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from redis.exceptions import RedisError

from connection_map import (
    Connection,
    ConnectionMapDocument,
    ConnectionMapError,
    read_connection_map_document,
)
from flags import (
    AuditInputError,
    AuditRecord,
    RolloutState,
    RolloutStore,
    RolloutStoreError,
    VersionConflict,
    plan_stage,
)
from flags.route_report import ConnectionFacts, ConnectionRoute, ids_not_in, route_report
from flags.stage_plan import StagePlan, token_version
from flags.validation_messages import describe_validation_error
from proxy.cli.exit_codes import ExitCode
from proxy.cli.options import ActorOption, ConfigOption, JsonOption
from proxy.cli.output import fail, print_json, render_table
from proxy.config import Config, ConfigError, load_config
from proxy.flag_backend import UnmanagedFlagBackend, open_rollout_store
from proxy.map_backend import open_map_store

_WRITE_ATTEMPTS = 3
_CLI_MIN_SOCKET_TIMEOUT = 2.0


class _Failure(Exception):
    def __init__(self, code: ExitCode, error: str, message: str) -> None:
        super().__init__(message)
        self.code, self.error, self.message = code, error, message


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
    with _session(config, as_json) as session:
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
    with _session(config, as_json) as session:
        session.check_connection(connection, force=force, moving=True)
        session.change(
            "enable", _set_override(connection, "on"), actor, reason, connection=connection
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
    with _session(config, as_json) as session:
        session.check_connection(connection, force=force, moving=False)
        session.change(
            "disable", _set_override(connection, "off"), actor, reason, connection=connection
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
    with _session(config, as_json) as session:
        session.change(
            "clear", _set_override(connection, None), actor, reason, connection=connection
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
    with _session(config, as_json) as session:
        _require_all(all_connections, "kill")
        session.change("kill_all", _set_kill_all(True), actor, reason)


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
    with _session(config, as_json) as session:
        _require_all(all_connections, "unkill")
        session.change("unkill_all", _set_kill_all(False), actor, reason)


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
    with _session(config, as_json) as session:
        session.check_connection(connection, force=force, moving=True)
        session.change(
            "canary_add", _set_canary(connection, True), actor, reason, connection=connection
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
    with _session(config, as_json) as session:
        session.change(
            "canary_remove", _set_canary(connection, False), actor, reason, connection=connection
        )


@flags_app.command()
def stage(
    percent: Annotated[str, typer.Argument(help="Target stage, 0-100 (steps of 0.01), e.g. 25.")],
    config: ConfigOption,
    preview: Annotated[
        bool, typer.Option("--preview", help="Show which connections would change route.")
    ] = False,
    apply: Annotated[
        str | None, typer.Option("--apply", help="Apply the preview that printed TOKEN.")
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (required with --apply).")
    ] = None,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Preview a stage change (prints a token), then apply exactly that preview."""
    with _session(config, as_json) as session:
        target = _parse_percent(percent)
        if preview == (apply is not None):
            _fail(ExitCode.USAGE, "usage", "give either --preview or --apply TOKEN")
        state = session.store.read()
        plan = _plan(state, target, session.connection_facts())
        if apply is None:
            session.print_plan(plan)
            return
        if reason is None:
            _fail(ExitCode.USAGE, "usage", "--reason is required with --apply")
        _check_token(apply, plan)
        if _same(plan.new_state, state):
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
    with _session(config, as_json) as session:
        records = session.store.history(limit)
        if as_json:
            print_json([record.model_dump(mode="json") for record in records])
            return
        rows = [[str(r.version), r.time, r.actor, r.action, r.summary(), r.reason] for r in records]
        typer.echo(render_table(["VERSION", "TIME", "ACTOR", "ACTION", "CHANGE", "REASON"], rows))


# -- the session: config, backend, connection map ---------------------------------------------


@dataclass
class _Session:
    config: Config
    store: RolloutStore
    as_json: bool
    _connections: dict[str, Connection] | None = None

    @property
    def connections(self) -> dict[str, Connection]:
        """The map the proxy serves: the file, or the one pushed to Redis when it follows that."""
        if self._connections is None:
            document = self._read_map()
            self._connections = {c.id: c for c in document.connections}
        return self._connections

    def _read_map(self) -> ConnectionMapDocument:
        if self.config.connection_map_redis is None:
            try:
                return read_connection_map_document(self.config.connection_map)
            except ConnectionMapError as exc:
                _fail(ExitCode.USAGE, "connection_map", str(exc))
        store = open_map_store(self.config, min_timeout=_CLI_MIN_SOCKET_TIMEOUT)
        try:
            document = store.read()
        except ConnectionMapError as exc:
            _fail(ExitCode.USAGE, "connection_map", str(exc))
        except RedisError as exc:
            _fail(
                ExitCode.BACKEND_UNAVAILABLE,
                "connection_map_unavailable",
                f"{store.where}: {type(exc).__name__}: {exc}",
            )
        finally:
            store.close()
        if document is None:
            _fail(
                ExitCode.USAGE,
                "connection_map",
                f"no connection map in {store.where} yet: push one with "
                "'authswitch connections push'",
            )
        return document

    def _map_name(self) -> str:
        if self.config.connection_map_redis is None:
            return str(self.config.connection_map)
        return f"key prefix {self.config.connection_map_redis.key_prefix!r} in Redis"

    def connection_facts(self) -> list[ConnectionFacts]:
        return [_facts(c) for c in self.connections.values()]

    def check_connection(self, connection_id: str, *, force: bool, moving: bool) -> None:
        """Refuse ids the map doesn't know (typos), and moving a connection that can't move."""
        if force:
            return
        entry = self.connections.get(connection_id)
        if entry is None:
            _fail(
                ExitCode.REFUSED,
                "unknown_connection",
                f"connection {connection_id!r} is not in the connection map "
                f"({self._map_name()}); --force writes it anyway",
            )
        if moving and not entry.migratable:
            held_by = _facts(entry).held_by
            why = "; ".join(entry.assessment_reasons)
            _fail(
                ExitCode.REFUSED,
                "not_migratable",
                f"connection {connection_id!r} stays on legacy whatever the flags say "
                f"({held_by}{': ' + why if why else ''}); --force writes the flag anyway",
            )

    def change(
        self,
        action: str,
        mutate: Callable[[RolloutState], RolloutState],
        actor: str | None,
        reason: str,
        *,
        connection: str | None = None,
    ) -> None:
        """Apply a delta to the stored state; re-read and re-apply if another writer won."""
        for attempt in range(1, _WRITE_ATTEMPTS + 1):
            state = self.store.read()
            new_state = mutate(state)
            if _same(new_state, state):
                self.print_unchanged(state, connection)
                return
            try:
                record = self.write(state.version, new_state, actor, reason, action)
            except VersionConflict:
                if attempt == _WRITE_ATTEMPTS:
                    raise
                continue  # a delta is safe to re-apply on top of the other writer's change
            self.print_record(record, connection=connection, state=new_state)
            return

    def write(
        self, version: int, state: RolloutState, actor: str | None, reason: str, action: str
    ) -> AuditRecord:
        if not actor:
            _fail(
                ExitCode.USAGE,
                "no_actor",
                "who is making this change? pass --actor NAME or set AUTHSWITCH_ACTOR",
            )
        return self.store.write(version, state, actor=actor, reason=reason, action=action)

    def print_record(
        self,
        record: AuditRecord,
        *,
        connection: str | None = None,
        state: RolloutState | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        effect = self._effect(connection, state)
        if self.as_json:
            print_json(
                {
                    "changed": True,
                    "version": record.version,
                    "record": record.model_dump(mode="json"),
                    **({"effect": effect} if effect else {}),
                    **(extra or {}),
                }
            )
            return
        typer.echo(f"version {record.version - 1} -> {record.version}: {record.summary()}")
        if effect:
            typer.echo(f"{connection} now goes to {effect['route']} ({effect['reason']})")

    def print_unchanged(self, state: RolloutState, connection: str | None) -> None:
        effect = self._effect(connection, state)
        if self.as_json:
            print_json(
                {
                    "changed": False,
                    "version": state.version,
                    **({"effect": effect} if effect else {}),
                }
            )
            return
        typer.echo(f"no change: version {state.version} already says so")
        if effect:
            typer.echo(f"{connection} goes to {effect['route']} ({effect['reason']})")

    def print_plan(self, plan: StagePlan) -> None:
        if self.as_json:
            print_json(
                {
                    "version": plan.version,
                    "current_percent": plan.current_percent,
                    "target_percent": plan.target_percent,
                    "to_new": plan.to_new,
                    "to_legacy": plan.to_legacy,
                    "held_by_assessment": plan.held,
                    "token": plan.token,
                }
            )
            return
        typer.echo(
            f"stage {plan.current_percent:g}% -> {plan.target_percent:g}% "
            f"(version {plan.version}, {self.store.description})"
        )
        typer.echo(f"would move to the new provider ({len(plan.to_new)}): {_ids(plan.to_new)}")
        typer.echo(f"would move back to legacy ({len(plan.to_legacy)}): {_ids(plan.to_legacy)}")
        if plan.held:
            typer.echo(f"kept on legacy by their assessment ({len(plan.held)}): {_ids(plan.held)}")
        typer.echo(f"token: {plan.token}")
        typer.echo(
            f"apply with: authswitch flags stage {plan.target_percent:g} --apply {plan.token} "
            '--reason "..."'
        )

    def _effect(self, connection: str | None, state: RolloutState | None) -> dict[str, str] | None:
        """Where the connection goes now, joined with the map as the proxy does."""
        if connection is None or state is None:
            return None
        try:
            facts = [f for f in self.connection_facts() if f.id == connection]
        except _Failure:  # --force with an unreadable map: say what the flag alone says
            facts = []
        row = route_report(state, facts or [ConnectionFacts(connection, "?", "unknown", False)])[0]
        if not facts:
            return {"route": row.flag_route, "reason": f"{row.flag_reason}; not in the map"}
        return {"route": row.route, "reason": row.reason}


def _facts(connection: Connection) -> ConnectionFacts:
    return ConnectionFacts(
        id=connection.id,
        protocol=connection.protocol.value,
        assessment=connection.assessment.value,
        imported=connection.new_provider is not None,
    )


@contextmanager
def _session(config_path: Path, as_json: bool) -> Iterator[_Session]:
    """Load the config and open its backend; turn every expected failure into an exit code."""
    try:
        try:
            config = load_config(config_path)
        except ConfigError as exc:
            _fail(ExitCode.USAGE, "config", str(exc))
        yield _Session(config, _open_store(config), as_json)
    except _Failure as failure:
        _exit(failure, as_json)
    except VersionConflict as exc:
        _exit(_Failure(ExitCode.CONFLICT, "conflict", str(exc)), as_json)
    except UnmanagedFlagBackend as exc:  # a config choice, not an outage
        _exit(_Failure(ExitCode.USAGE, "config", str(exc)), as_json)
    except RolloutStoreError as exc:
        _exit(_Failure(ExitCode.BACKEND_UNAVAILABLE, "backend", str(exc)), as_json)
    except AuditInputError as exc:
        _exit(_Failure(ExitCode.USAGE, "usage", str(exc)), as_json)


def _open_store(config: Config) -> RolloutStore:
    return open_rollout_store(
        config, client_name="authswitch-flags-cli", min_timeout=_CLI_MIN_SOCKET_TIMEOUT
    )


# -- state changes -----------------------------------------------------------------------------


def _updated(state: RolloutState, **changes: Any) -> RolloutState:
    return RolloutState.model_validate({**state.model_dump(), **changes})


def _set_override(connection: str, value: str | None) -> Callable[[RolloutState], RolloutState]:
    def mutate(state: RolloutState) -> RolloutState:
        overrides: dict[str, str] = dict(state.overrides)
        if value is None:
            overrides.pop(connection, None)
        else:
            overrides[connection] = value
        return _updated(state, overrides=overrides)

    return mutate


def _set_canary(connection: str, member: bool) -> Callable[[RolloutState], RolloutState]:
    def mutate(state: RolloutState) -> RolloutState:
        canary = [c for c in state.canary if c != connection]
        if member:
            canary = [*state.canary] if connection in state.canary else [*canary, connection]
        return _updated(state, canary=canary)

    return mutate


def _set_kill_all(value: bool) -> Callable[[RolloutState], RolloutState]:
    return lambda state: _updated(state, kill_all=value)


def _same(a: RolloutState, b: RolloutState) -> bool:
    return a.model_dump(exclude={"version"}) == b.model_dump(exclude={"version"})


def _plan(state: RolloutState, target: float, facts: Sequence[ConnectionFacts]) -> StagePlan:
    try:
        return plan_stage(state, target, {f.id: f.migratable for f in facts})
    except ValidationError as exc:
        _fail(ExitCode.USAGE, "usage", f"PERCENT: {describe_validation_error(exc)}")


def _check_token(token: str, plan: StagePlan) -> None:
    previewed = token_version(token)
    if previewed is None:
        _fail(ExitCode.USAGE, "usage", f"--apply {token!r} is not a preview token")
    if token == plan.token:
        return
    if previewed != plan.version:
        why = f"the state changed since the preview (version {previewed} -> {plan.version})"
    else:
        why = (
            "the plan differs from the previewed one (another stage percent, or the connection "
            "map changed who would move)"
        )
    _fail(ExitCode.CONFLICT, "stale_preview", f"{why}; nothing was written: preview again")


def _parse_percent(text: str) -> float:
    try:
        return float(text.strip().removesuffix("%"))
    except ValueError:
        _fail(ExitCode.USAGE, "usage", f"PERCENT must be a number from 0 to 100 (got {text!r})")


def _require_all(given: bool, command: str) -> None:
    if not given:
        hint = " (one connection: authswitch flags disable CONN)" if command == "kill" else ""
        _fail(ExitCode.USAGE, "usage", f"{command} applies to every connection: pass --all{hint}")


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


def _ids(ids: Sequence[str]) -> str:
    return ", ".join(ids) if ids else "-"


def _fail(code: ExitCode, error: str, message: str) -> NoReturn:
    raise _Failure(code, error, message)


def _exit(failure: _Failure, as_json: bool) -> NoReturn:
    fail(failure.message, failure.code, error=failure.error, as_json=as_json)
