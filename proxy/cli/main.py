"""The `authswitch` command line."""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from typing import Annotated, Any

import typer
from typer.core import TyperGroup
from typer.main import get_group_from_info
from typer.models import TyperInfo

from connection_map import ConnectionMapError, load_connection_map
from flags import FlagFileError, load_rollout_state
from foundation.version import authswitch_version
from proxy.cli.exit_codes import ExitCode
from proxy.cli.options import ConfigOption
from proxy.cli.output import fail
from proxy.config import Config, ConfigError, load_config

# The tools' command groups, by the module that defines each. Their modules (and the vendor
# clients, parsers and Redis stores those import) load when the command line names the group:
# every process of `authswitch serve`, its workers included, imports this module.
_GROUPS = {
    "flags": ("proxy.cli.flags", "flags_app"),
    "connections": ("proxy.cli.connections", "connections_app"),
    "broker": ("proxy.cli.broker", "broker_app"),
    "users": ("proxy.cli.users", "users_app"),
    "rollout": ("proxy.cli.rollout", "rollout_app"),
}


# Values are typer's click commands (typer vendors click and doesn't export its types).
class _CommandsImportedOnUse(MutableMapping[str, Any]):
    """The root group's commands: the ones built at start, then `_GROUPS`, built when looked up."""

    def __init__(self, built: MutableMapping[str, Any]) -> None:
        self._built = built
        self._order = [*built, *(name for name in _GROUPS if name not in built)]

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            if name not in _GROUPS:
                raise KeyError(name)
            self._built[name] = _build_group(name)
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._built[name] = command
        if name not in self._order:
            self._order.append(name)

    def __delitem__(self, name: str) -> None:
        self._built.pop(name, None)
        self._order.remove(name)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._order))

    def __len__(self) -> int:
        return len(self._order)


class _RootGroup(TyperGroup):
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.commands = _CommandsImportedOnUse(self.commands)


def _build_group(name: str) -> TyperGroup:
    """The click group of one of `_GROUPS`, built as `app.add_typer(group, name=name)` would."""
    module, attribute = _GROUPS[name]
    group = getattr(importlib.import_module(module), attribute)
    return get_group_from_info(
        TyperInfo(group, name=name),
        pretty_exceptions_short=app.pretty_exceptions_short,
        rich_markup_mode=app.rich_markup_mode,
        suggest_commands=app.suggest_commands,
    )


app = typer.Typer(
    cls=_RootGroup,
    help="Transparent SSO callback proxy for moving connections to a new auth provider.",
    no_args_is_help=True,
    add_completion=False,
)


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"authswitch {authswitch_version()}")
        raise typer.Exit(0)


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Transparent SSO callback proxy for moving connections to a new auth provider."""


@app.command()
def serve(
    config: ConfigOption,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
    graceful_seconds: Annotated[
        int,
        typer.Option(min=0, max=3600, help="Seconds in-flight requests get to finish on SIGTERM."),
    ] = 25,
) -> None:
    """Serve the proxy in front of the legacy host described by CONFIG."""
    from proxy.ops.server import OpenFileLimitTooLow, OpsListenerUnavailable
    from proxy.ops.server import serve as run_server

    try:
        settings = load_config(config)
        if settings.connection_map_redis is None:  # else the replicas follow Redis
            load_connection_map(settings.connection_map)
        if settings.flags.file is not None and settings.flags.backend == "file":
            load_rollout_state(settings.flags.file)
        _check_secrets_and_broker(settings)
    except (ConfigError, ConnectionMapError, FlagFileError) as exc:
        fail(str(exc), ExitCode.USAGE)
    try:
        run_server(str(config), settings, workers=workers, graceful_seconds=graceful_seconds)
    except (OpsListenerUnavailable, OpenFileLimitTooLow) as exc:
        fail(str(exc), ExitCode.USAGE)


def _check_secrets_and_broker(settings: Config) -> None:
    """Read every secret file and build the broker once, so a bad file stops `serve` with
    exit 2 here instead of a traceback in each worker."""
    # The services' modules load only for what the config turns on: this process goes on to
    # serve (or supervise the workers), and keeps what it imported.
    if settings.outcomes.enabled:
        from proxy.outcomes.service import check_outcome_secrets

        check_outcome_secrets(settings)

    if settings.flags.backend == "redis":
        settings.flags.redis.password()
    if settings.flow_affinity.enabled:
        settings.flow_affinity.secret()
    if settings.broker.enabled:
        from proxy.broker.service import PasswordBroker

        PasswordBroker(
            settings.broker,
            body_seconds=settings.timeouts.body_seconds,
        )


@app.command()
def demo(
    serve_forever: Annotated[
        bool, typer.Option("--serve", help="Keep the demo running and print curl-able URLs.")
    ] = False,
) -> None:
    """Run real signed SAML logins through the proxy at each rollout step and check them."""
    from proxy.demo.runner import run_demo

    raise typer.Exit(run_demo(serve_forever=serve_forever))


config_app = typer.Typer(help="Check the configuration.", no_args_is_help=True)


@config_app.command("check")
def config_check(config: ConfigOption) -> None:
    """Print the effective configuration (file and AUTHSWITCH__* environment, secrets masked);
    exit 2 naming the key on a problem."""
    from proxy.cli.config_check import render_effective_config

    try:
        settings = load_config(config)
        _check_secrets_and_broker(settings)
    except ConfigError as exc:
        fail(str(exc), ExitCode.USAGE)
    typer.echo(render_effective_config(settings), nl=False)


app.add_typer(config_app, name="config")


def main() -> None:
    app()
