"""`authswitch connections push | history | rollback`: publishing the map to Redis, previewed.

A push that would move any connection's callbacks (to the new provider or back to legacy) is
applied only with `--apply TOKEN` from a `--preview` of the very same change: same live map,
same file, same rollout state. A push that moves nobody (new metadata for a connection on
legacy, a typo fixed in a name) goes through as before, its diff printed. `rollback VERSION`
pushes a kept map again, as a new version, through the same gate.
"""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, NoReturn

import redis
import typer

from connection_map import ConnectionMap, ConnectionMapDocument, ConnectionMapError, MapDiff
from connection_map import read_connection_map_document as read_map_file
from connection_map.redis_store import PushResult, RedisMapStore
from proxy.cli.exit_codes import ExitCode
from proxy.cli.options import ActorOption, ApplyOption, ConfigOption, JsonOption
from proxy.cli.output import fail, print_json, render_table
from proxy.config import Config, ConfigError, load_config
from proxy.map_backend import open_map_store
from proxy.map_preview import MapPushPreview
from proxy.map_push import MapPushRefused, Problem, preview_push, push_previewed, rollback_document

PreviewOption = Annotated[
    bool, typer.Option("--preview", help="Show what the push changes and its token; write nothing.")
]
PushReasonOption = Annotated[
    str | None, typer.Option("--reason", help="Why; kept in the audit trail (required to write).")
]
_SHOWN_VALUE = 60  # characters of a field's value in a diff line (certificates are long)


def push(
    config: ConfigOption,
    reason: PushReasonOption = None,
    from_file: Annotated[
        Path | None,
        typer.Option("--from", help="The map file to push (default: the config's connection_map)."),
    ] = None,
    preview: PreviewOption = False,
    apply: ApplyOption = None,
    actor: ActorOption = None,
    expect_version: Annotated[
        int | None,
        typer.Option(help="Refuse unless this version is live (default: the one live now)."),
    ] = None,
    if_newer: Annotated[
        bool,
        typer.Option(
            help="Exit 0 without writing when the live version is this file's or newer "
            "(a deploy hook that runs on every upgrade)."
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Validate the map file and publish it to Redis: every replica swaps to it at once.

    A push that changes any connection's route needs --preview first, then --apply TOKEN
    (a deploy hook's push too: it is refused, exit 5, and a person previews and applies it)."""
    settings, store = _open(config, as_json)
    source = from_file if from_file is not None else settings.connection_map
    try:
        document = read_map_file(source)
        ConnectionMap.build(document)  # what the replicas will do with it
    except ConnectionMapError as exc:
        fail(f"{exc}; nothing pushed", ExitCode.FAILED, as_json=as_json)
    if if_newer and not preview:
        try:
            live = store.version()
        except redis.RedisError as exc:
            _unavailable(store, exc, as_json)
        if live is not None and live >= document.version:
            store.close()
            message = f"version {live} is live, the file has {document.version}: not pushed"
            if as_json:
                print_json({"pushed": False, "live_version": live, "message": message})
            else:
                typer.echo(message)
            return
    _gated_push(
        settings,
        store,
        document,
        preview=preview,
        apply=apply,
        reason=reason,
        actor=actor,
        expect_version=expect_version,
        as_json=as_json,
        command="authswitch connections push" + (f" --from {from_file}" if from_file else ""),
    )


def rollback(
    version: Annotated[int, typer.Argument(help="The kept version to push again.")],
    config: ConfigOption,
    reason: PushReasonOption = None,
    preview: PreviewOption = False,
    apply: ApplyOption = None,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Push a kept map again, as a new version, through the same preview/apply gate."""
    settings, store = _open(config, as_json)
    try:
        document = rollback_document(store, version)
    except MapPushRefused as exc:
        store.close()
        _refused(exc, as_json, f"authswitch connections rollback {version}")
    _gated_push(
        settings,
        store,
        document,
        preview=preview,
        apply=apply,
        reason=reason,
        actor=actor,
        expect_version=None,
        as_json=as_json,
        command=f"authswitch connections rollback {version}",
        rolled_back_to=version,
    )


def history(
    config: ConfigOption,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many pushes.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """The last pushes, newest first: version, time, actor, reason, and whether it is kept."""
    _, store = _open(config, as_json)
    try:
        records = store.history(limit)
        kept = store.kept_versions()
        live = store.version()
    except redis.RedisError as exc:
        _unavailable(store, exc, as_json)
    finally:
        store.close()
    if as_json:
        print_json(
            {
                "live_version": live,
                "pushes": [
                    {**r.to_json(), "kept": r.version in kept, "live": r.version == live}
                    for r in records
                ],
            }
        )
        return
    columns = ("version", "time", "actor", "action", "connections", "sha256", "kept", "reason")
    rows = [
        (
            f"{r.version}{' (live)' if r.version == live else ''}",
            r.time,
            r.actor,
            r.action + (f" to {r.rolled_back_to}" if r.rolled_back_to is not None else ""),
            str(r.connections),
            r.sha256[:12],
            "yes" if r.version in kept else "no",
            r.reason,
        )
        for r in records
    ]
    typer.echo(render_table(columns, rows) if rows else f"no pushes in {store.where} yet")


# -- the gate ----------------------------------------------------------------------------------

_EXIT_CODES: dict[Problem, ExitCode] = {
    "map_unreadable": ExitCode.FAILED,
    "flags_file": ExitCode.USAGE,
    "backend_unavailable": ExitCode.BACKEND_UNAVAILABLE,
    "not_kept": ExitCode.USAGE,
    "already_live": ExitCode.FAILED,
    "reason_required": ExitCode.USAGE,
    "stale_preview": ExitCode.CONFLICT,
    "preview_required": ExitCode.REFUSED,
    "push_refused": ExitCode.FAILED,
}
_ERRORS: dict[Problem, str] = {
    "not_kept": "not_kept",
    "stale_preview": "stale_preview",
    "preview_required": "preview_required",
}


def _refused(exc: MapPushRefused, as_json: bool, command: str) -> NoReturn:
    message = exc.message
    if exc.problem == "reason_required":
        message = "--reason is required to push (it is kept in the audit trail)"
    elif exc.problem == "stale_preview":
        message += f"; preview again with '{command} --preview'"
    elif exc.problem == "preview_required":
        if not as_json and exc.plan is not None:
            _print_preview(exc.plan, as_json, command, token=False)
        message = (
            "this push changes where callbacks go: review it with "
            f"'{command} --preview', then push with --apply TOKEN; nothing pushed"
        )
    fail(message, _EXIT_CODES[exc.problem], error=_ERRORS.get(exc.problem), as_json=as_json)


def _gated_push(
    settings: Config,
    store: RedisMapStore,
    document: ConnectionMapDocument,
    *,
    preview: bool,
    apply: str | None,
    reason: str | None,
    actor: str | None,
    expect_version: int | None,
    as_json: bool,
    command: str,
    rolled_back_to: int | None = None,
) -> None:
    if preview and apply is not None:
        fail("give --preview or --apply, not both", ExitCode.USAGE, as_json=as_json)
    try:
        plan = preview_push(settings, store, document)
        if preview:
            _print_preview(plan, as_json, command)
            return
        result = push_previewed(
            store,
            document,
            plan,
            token=apply,
            reason=reason,
            actor=actor or _os_user(),
            expect_version=expect_version,
            rolled_back_to=rolled_back_to,
        )
    except MapPushRefused as exc:
        _refused(exc, as_json, command)
    finally:
        store.close()
    _print_pushed(result, plan, store.where, as_json)


def _open(config_path: Path, as_json: bool) -> tuple[Config, RedisMapStore]:
    try:
        settings = load_config(config_path)
        return settings, open_map_store(settings, min_timeout=5.0)
    except ConfigError as exc:
        fail(str(exc), ExitCode.USAGE, as_json=as_json)


def _unavailable(store: RedisMapStore, exc: redis.RedisError, as_json: bool) -> NoReturn:
    fail(
        f"{store.where}: {type(exc).__name__}: {exc}; nothing pushed",
        ExitCode.BACKEND_UNAVAILABLE,
        as_json=as_json,
    )


# -- output ------------------------------------------------------------------------------------


def _print_preview(
    plan: MapPushPreview, as_json: bool, command: str, *, token: bool = True
) -> None:
    if as_json:
        print_json(plan.to_json())
        return
    live = "none" if plan.live_version is None else str(plan.live_version)
    typer.echo(f"map version {live} -> {plan.new_version} (sha256 {plan.new_sha256[:12]})")
    for line in diff_lines(plan.diff):
        typer.echo(line)
    if plan.route_changes is None:
        typer.echo(
            "routes: not evaluated (flags.backend is openfeature: the rollout lives in another "
            "flag system); any change needs --apply"
        )
    else:
        typer.echo(
            f"route changes at stage {plan.stage_percent:g}% (flags version "
            f"{plan.state_version}): {len(plan.route_changes)}"
        )
        for change in plan.route_changes:
            typer.echo(
                f"  {change.id}: {change.before} ({change.reason_before}) -> "
                f"{change.after} ({change.reason_after})"
            )
    if token:
        typer.echo(f"token: {plan.token}")
        typer.echo(f'apply with: {command} --apply {plan.token} --reason "..."')


def diff_lines(diff: MapDiff) -> list[str]:
    """The diff as lines of text: counts, then one line per connection and changed field."""
    lines = [
        f"connections added: {len(diff.added)}, removed: {len(diff.removed)}, "
        f"changed: {len(diff.changed)}"
    ]
    lines += [f"  + {cid}" for cid in diff.added]
    lines += [f"  - {cid}" for cid in diff.removed]
    for change in diff.changed:
        lines.append(f"  ~ {change.id}")
        lines += [
            f"      {f.field}: {_shown(f.before)} -> {_shown(f.after)}" for f in change.fields
        ]
    return lines


def _shown(value: object) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= _SHOWN_VALUE else text[: _SHOWN_VALUE - 3] + "..."


def _print_pushed(result: PushResult, plan: MapPushPreview, where: str, as_json: bool) -> None:
    moved: Sequence[str] = [c.id for c in plan.route_changes or ()]
    if as_json:
        print_json(
            {
                "pushed": True,
                "version": result.version,
                "previous_version": result.previous_version,
                "connections": result.connections,
                "sha256": result.sha256,
                "route_changes": [c.to_json() for c in plan.route_changes or ()],
            }
        )
        return
    typer.echo(
        f"pushed version {result.version} ({result.connections} connections, "
        f"{result.doc_bytes} bytes compressed, sha256 {result.sha256[:12]}) to {where}"
        + (
            f"; it replaces version {result.previous_version}"
            if result.previous_version is not None
            else " (the first map there)"
        )
    )
    for line in diff_lines(plan.diff)[:1]:
        typer.echo(line)
    if moved:
        typer.echo(f"callbacks now routed elsewhere ({len(moved)}): {', '.join(moved)}")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user without a passwd entry
        return "unknown"
