"""What `authswitch users export` does; proxy/cli/users.py holds its options and help, and
imports this only when the command runs."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

import httpx
import typer

from foundation.config_error import ConfigError
from foundation.secret_file import read_secret_file
from proxy.cli.exit_codes import ExitCode
from proxy.cli.output import fail, print_json
from proxy.http.rate_limits import ApiUnavailable, RateLimitedClient
from proxy.users_export.auth0 import Auth0Users
from proxy.users_export.cognito import (
    CognitoUsers,
    SigV4Auth,
    is_throttled,
    read_aws_credentials,
    region_of,
)
from proxy.users_export.firebase_file import FirebaseExportFile, read_hash_config
from proxy.users_export.okta import OktaUsers
from proxy.users_export.run import ExportSummary, export_users
from proxy.users_export.source import UserSource
from proxy.users_export.state import ExportState, StateRefused

SourceKind = Literal["auth0", "cognito", "okta", "firebase-file"]
_PROGRESS_SECONDS = 2.0
_T = TypeVar("_T")


@dataclass(frozen=True)
class ExportRequest:
    """The command's options, as given."""

    source: SourceKind
    out: Path
    url: str | None
    token_file: Path | None
    aws_credentials_file: Path | None
    aws_profile: str
    user_pool_id: str | None
    file: Path | None
    hash_config: Path | None
    export_job: bool
    connection_id: str | None
    page_size: int | None
    timeout: float
    restart: bool
    as_json: bool


def run_export(request: ExportRequest) -> None:
    """Export the source's users into the state file, resuming where it stopped."""
    try:
        source = build_source(request)
        state = ExportState.open(request.out, source.identity, restart=request.restart)
    except (ConfigError, StateRefused) as exc:
        fail(str(exc), ExitCode.USAGE, as_json=request.as_json)
    except OSError as exc:
        fail(f"{exc.filename}: {exc.strerror}", ExitCode.USAGE, as_json=request.as_json)
    try:
        summary = asyncio.run(_export(source, state))
    except ApiUnavailable as exc:
        fail(
            f"{exc} ({state.users} users kept in {request.out})",
            ExitCode.LEGACY_UNAVAILABLE,
            error="source_unavailable",
            as_json=request.as_json,
        )
    if request.as_json:
        print_json({"file": str(request.out), **summary.to_json()})
        return
    _print(summary, request.out)


async def _export(source: UserSource, state: ExportState) -> ExportSummary:
    last = time.monotonic()

    def progress(state: ExportState) -> None:
        nonlocal last
        if time.monotonic() - last >= _PROGRESS_SECONDS:
            last = time.monotonic()
            typer.echo(f"... {state.users} users exported", err=True)

    try:
        summary = await export_users(source, state, on_page=progress)
    finally:
        await source.close()
    client = getattr(source, "client", None)
    if isinstance(client, RateLimitedClient):
        summary.waits = client.waits
    return summary


def build_source(request: ExportRequest) -> UserSource:
    """The source the options name; ConfigError when an option it needs is missing or bad."""
    if request.source == "firebase-file":
        if request.file is None:
            raise ConfigError("--source firebase-file needs --file (the auth:export JSON)")
        hash_config = None if request.hash_config is None else read_hash_config(request.hash_config)
        return FirebaseExportFile(request.file, hash_config, page_size=request.page_size or 1000)
    if request.source == "cognito":
        return _cognito(request)
    url = _required(request.url, f"--source {request.source} needs --url")
    token_file = _required(request.token_file, f"--source {request.source} needs --token-file")
    token = read_secret_file(token_file, "--token-file", min_bytes=1).decode()
    if request.source == "okta":
        client = _client(request, {"Authorization": f"SSWS {token}"})
        return OktaUsers(url, client, page_size=request.page_size or 200)
    return Auth0Users(
        url,
        token,
        _client(request, {}),
        page_size=request.page_size or 100,
        export_job=request.export_job,
        connection_id=request.connection_id,
    )


def _cognito(request: ExportRequest) -> CognitoUsers:
    pool = _required(request.user_pool_id, "--source cognito needs --user-pool-id")
    credentials_file = _required(
        request.aws_credentials_file, "--source cognito needs --aws-credentials-file"
    )
    region = region_of(pool)
    credentials = read_aws_credentials(credentials_file, request.aws_profile)
    endpoint = request.url or f"https://cognito-idp.{region}.amazonaws.com/"
    client = RateLimitedClient(
        httpx.AsyncClient(timeout=request.timeout, auth=SigV4Auth(credentials, region)),
        throttled=is_throttled,
    )
    return CognitoUsers(pool, endpoint, client, page_size=request.page_size or 60)


def _client(request: ExportRequest, headers: dict[str, str]) -> RateLimitedClient:
    return RateLimitedClient(httpx.AsyncClient(timeout=request.timeout, headers=headers))


def _required(value: _T | None, message: str) -> _T:
    if value is None:
        raise ConfigError(message)
    return value


def _print(summary: ExportSummary, out: Path) -> None:
    how = "resumed: " if summary.resumed else ""
    typer.echo(
        f"{how}{summary.users} users in {out} ({summary.this_run} this run, {summary.pages} pages)"
    )
    for reason, count in sorted(summary.skipped.items()):
        typer.echo(f"skipped {count}: {reason}")
    if summary.waits:
        typer.echo(f"rate limited {len(summary.waits)} times, waited {sum(summary.waits):.1f} s")
