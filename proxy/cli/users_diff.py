"""What `authswitch users diff` does; proxy/cli/users.py holds its options and help, and
imports this only when the command runs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import typer

from foundation.config_error import ConfigError
from foundation.secret_file import read_secret_file
from proxy.cli.exit_codes import ExitCode
from proxy.cli.output import fail, print_json, render_table
from proxy.http.rate_limits import ApiUnavailable, RateLimitedClient
from proxy.users_import.diff import Side, UsersDiff, compare, read_ndjson_side, side_of
from proxy.users_import.workos_users import workos_users

WORKOS_TARGET = "workos"
WORKOS_URL = "https://api.workos.com"


def run_diff(
    *,
    source: Path,
    target: str,
    url: str | None,
    api_key_file: Path | None,
    config: Path | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Compare; exit 0 when the target has exactly the source's users, 1 on any difference."""
    try:
        source_side = read_ndjson_side(source)
    except OSError as exc:
        fail(f"{source}: cannot read: {exc.strerror}", ExitCode.USAGE, as_json=as_json)
    try:
        if target == WORKOS_TARGET:
            target_side = _workos_side(url, api_key_file, config, timeout)
        else:
            target_side = read_ndjson_side(Path(target))
    except ConfigError as exc:
        fail(str(exc), ExitCode.USAGE, as_json=as_json)
    except OSError as exc:
        fail(f"{target}: cannot read: {exc.strerror}", ExitCode.USAGE, as_json=as_json)
    except ApiUnavailable as exc:
        fail(f"the target can't be read: {exc}", ExitCode.USAGE, as_json=as_json)
    diff = compare(source_side, target_side)
    if as_json:
        print_json(diff.to_json())
    else:
        _print(diff)
    if diff.differences or diff.source.refused or diff.target.refused:
        raise typer.Exit(int(ExitCode.FAILED))


def _workos_side(
    url: str | None, api_key_file: Path | None, config: Path | None, timeout: float
) -> Side:
    if config is not None and (url is None or api_key_file is None):
        from proxy.broker.config import WorkosProvisioner, load_broker_config

        settings = load_broker_config(config).provisioner
        if isinstance(settings, WorkosProvisioner):
            url = url or str(settings.url)
            api_key_file = api_key_file or settings.api_key_file
    if api_key_file is None:
        raise ConfigError(
            "--target workos needs --api-key-file (or --config with a workos broker.provisioner)"
        )
    key = read_secret_file(api_key_file, "--api-key-file", min_bytes=1).decode()
    client = RateLimitedClient(
        httpx.AsyncClient(timeout=timeout, headers={"Authorization": f"Bearer {key}"})
    )

    async def collect() -> Side:
        try:
            return side_of([record async for record in workos_users(url or WORKOS_URL, client)])
        finally:
            await client.close()

    return asyncio.run(collect())


def _print(diff: UsersDiff) -> None:
    typer.echo(render_table(["", "users"], diff.summary_rows()))
    details = diff.detail_rows()
    if details:
        typer.echo("")
        typer.echo(render_table(["difference", "email", "fields (source -> target)"], details))
    for side, name in ((diff.source, "source"), (diff.target, "target")):
        for line, reason in side.refused[:20]:
            typer.echo(f"{name} line {line}: {reason}", err=True)
    verdict = "differences found" if diff.differences else "no differences"
    typer.echo(f"\n{verdict}")
