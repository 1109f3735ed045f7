"""The `authswitch` command line."""

from __future__ import annotations

from typing import Annotated

import typer

from connection_map import ConnectionMapError, load_connection_map
from flags import FlagFileError, load_rollout_state
from foundation.version import authswitch_version
from proxy.cli.broker import broker_app
from proxy.cli.connections import connections_app
from proxy.cli.exit_codes import ExitCode
from proxy.cli.flags import flags_app
from proxy.cli.options import ConfigOption
from proxy.cli.output import fail
from proxy.cli.rollout import rollout_app
from proxy.cli.users import users_app
from proxy.config import Config, ConfigError, load_config

app = typer.Typer(
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
    from proxy.ops.server import OpsListenerUnavailable
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
    except OpsListenerUnavailable as exc:
        fail(str(exc), ExitCode.USAGE)


def _check_secrets_and_broker(settings: Config) -> None:
    """Read every secret file and build the broker once, so a bad file stops `serve` with
    exit 2 here instead of a traceback in each worker."""
    from proxy.broker.service import PasswordBroker
    from proxy.outcomes.service import check_outcome_secrets

    check_outcome_secrets(settings)

    if settings.flags.backend == "redis":
        settings.flags.redis.password()
    if settings.flow_affinity.enabled:
        settings.flow_affinity.secret()
    if settings.broker.enabled:
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
app.add_typer(flags_app, name="flags")
app.add_typer(connections_app, name="connections")
app.add_typer(broker_app, name="broker")
app.add_typer(users_app, name="users")
app.add_typer(rollout_app, name="rollout")


def main() -> None:
    app()
