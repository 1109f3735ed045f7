"""The state a `flags` command works on: the config, its rollout backend and the connection map;
writes with an audit record, and what the command prints about them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import typer
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
    EmptyStoreRefused,
    RolloutState,
    RolloutStore,
    RolloutStoreError,
    StoreNotEmpty,
    VersionConflict,
)
from flags.route_report import ConnectionFacts, route_report
from flags.stage_plan import StagePlan
from proxy.cli.exit_codes import ExitCode
from proxy.cli.output import fail, print_json
from proxy.config import Config, ConfigError, load_config
from proxy.flag_backend import UnmanagedFlagBackend, open_rollout_store
from proxy.map_backend import open_map_store
from proxy.map_preview import connection_facts_of

_WRITE_ATTEMPTS = 3
_CLI_MIN_SOCKET_TIMEOUT = 2.0


class CommandFailure(Exception):
    """Ends a `flags` command with an exit code, an error code for --json and a message."""

    def __init__(self, code: ExitCode, error: str, message: str) -> None:
        super().__init__(message)
        self.code, self.error, self.message = code, error, message


@dataclass
class FlagsSession:
    """A `flags` command's config, rollout store and (read when needed) connection map."""

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
                stop(ExitCode.USAGE, "connection_map", str(exc))
        store = open_map_store(self.config, min_timeout=_CLI_MIN_SOCKET_TIMEOUT)
        try:
            document = store.read()
        except ConnectionMapError as exc:
            stop(ExitCode.USAGE, "connection_map", str(exc))
        except RedisError as exc:
            stop(
                ExitCode.BACKEND_UNAVAILABLE,
                "connection_map_unavailable",
                f"{store.where}: {type(exc).__name__}: {exc}",
            )
        finally:
            store.close()
        if document is None:
            stop(
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
        return [connection_facts_of(c) for c in self.connections.values()]

    def check_connection(self, connection_id: str, *, force: bool, moving: bool) -> None:
        """Refuse ids the map doesn't know (typos), and moving a connection that can't move."""
        if force:
            return
        entry = self.connections.get(connection_id)
        if entry is None:
            stop(
                ExitCode.REFUSED,
                "unknown_connection",
                f"connection {connection_id!r} is not in the connection map "
                f"({self._map_name()}); --force writes it anyway",
            )
        if moving and not entry.migratable:
            held_by = connection_facts_of(entry).held_by
            why = "; ".join(entry.assessment_reasons)
            stop(
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
            if same_state(new_state, state):
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
        checked = self.require_actor(actor)
        return self.store.write(version, state, actor=checked, reason=reason, action=action)

    def require_actor(self, actor: str | None) -> str:
        if not actor:
            stop(
                ExitCode.USAGE,
                "no_actor",
                "who is making this change? pass --actor NAME or set AUTHSWITCH_ACTOR",
            )
        return actor

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

    def print_plan(self, plan: StagePlan, not_ready: dict[str, str] | None = None) -> None:
        not_ready = not_ready or {}
        if self.as_json:
            print_json(
                {
                    "version": plan.version,
                    "current_percent": plan.current_percent,
                    "target_percent": plan.target_percent,
                    "to_new": plan.to_new,
                    "to_legacy": plan.to_legacy,
                    "held_by_assessment": plan.held,
                    "not_ready": not_ready,
                    "token": plan.token,
                }
            )
            return
        typer.echo(
            f"stage {plan.current_percent:g}% -> {plan.target_percent:g}% "
            f"(version {plan.version}, {self.store.description})"
        )
        typer.echo(
            f"would move to the new provider ({len(plan.to_new)}): {listed_ids(plan.to_new)}"
        )
        typer.echo(
            f"would move back to legacy ({len(plan.to_legacy)}): {listed_ids(plan.to_legacy)}"
        )
        if plan.held:
            typer.echo(
                f"kept on legacy by their assessment ({len(plan.held)}): {listed_ids(plan.held)}"
            )
        for connection, why in not_ready.items():
            typer.echo(f"not ready (shadow readiness): {connection}: {why}")
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
        except CommandFailure:  # --force with an unreadable map: say what the flag alone says
            facts = []
        row = route_report(state, facts or [ConnectionFacts(connection, "?", "unknown", False)])[0]
        if not facts:
            return {"route": row.flag_route, "reason": f"{row.flag_reason}; not in the map"}
        return {"route": row.route, "reason": row.reason}


@contextmanager
def flags_session(config_path: Path, as_json: bool) -> Iterator[FlagsSession]:
    """Load the config and open its backend; turn every expected failure into an exit code."""
    try:
        try:
            config = load_config(config_path)
        except ConfigError as exc:
            stop(ExitCode.USAGE, "config", str(exc))
        yield FlagsSession(config, _open_store(config), as_json)
    except CommandFailure as failure:
        _exit(failure, as_json)
    except VersionConflict as exc:
        _exit(CommandFailure(ExitCode.CONFLICT, "conflict", str(exc)), as_json)
    except (EmptyStoreRefused, StoreNotEmpty) as exc:
        _exit(CommandFailure(ExitCode.REFUSED, "empty_store", str(exc)), as_json)
    except UnmanagedFlagBackend as exc:  # a config choice, not an outage
        _exit(CommandFailure(ExitCode.USAGE, "config", str(exc)), as_json)
    except RolloutStoreError as exc:
        _exit(CommandFailure(ExitCode.BACKEND_UNAVAILABLE, "backend", str(exc)), as_json)
    except AuditInputError as exc:
        _exit(CommandFailure(ExitCode.USAGE, "usage", str(exc)), as_json)


def _open_store(config: Config) -> RolloutStore:
    return open_rollout_store(
        config, client_name="authswitch-flags-cli", min_timeout=_CLI_MIN_SOCKET_TIMEOUT
    )


def same_state(a: RolloutState, b: RolloutState) -> bool:
    """Whether two states say the same apart from their version."""
    return a.model_dump(exclude={"version"}) == b.model_dump(exclude={"version"})


def listed_ids(ids: Sequence[str]) -> str:
    """Connection ids for a line of output; `-` for none."""
    return ", ".join(ids) if ids else "-"


def stop(code: ExitCode, error: str, message: str) -> NoReturn:
    """End the command (inside `flags_session`) with this code and message."""
    raise CommandFailure(code, error, message)


def _exit(failure: CommandFailure, as_json: bool) -> NoReturn:
    fail(failure.message, failure.code, error=failure.error, as_json=as_json)
