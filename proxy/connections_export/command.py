"""What `authswitch connections export legacy` does; proxy/cli/connections.py holds its options
and imports this only when the command runs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx
import typer

from connection_map.exports import connections_csv
from foundation.atomic_file import write_file_atomically
from foundation.config_error import ConfigError
from foundation.secret_file import read_secret_file
from proxy.cli.exit_codes import ExitCode
from proxy.cli.output import fail, print_json
from proxy.connections_export.fetch import (
    Fetched,
    auth0_connections,
    cognito_idps,
    okta_idps,
)
from proxy.http.rate_limits import ApiUnavailable, RateLimitedClient
from proxy.users_export.cognito import SigV4Auth, is_throttled, read_aws_credentials, region_of

LegacySource = Literal["auth0", "okta", "cognito"]


@dataclass(frozen=True)
class LegacyAccess:
    """How to reach the legacy provider, as the options gave it."""

    url: str | None
    token_file: Path | None  # auth0, okta
    aws_credentials_file: Path | None  # cognito
    aws_profile: str
    user_pool_id: str | None  # cognito
    timeout: float


def run_connections_export(
    *, source: LegacySource, access: LegacyAccess, out: Path, as_json: bool
) -> None:
    """Fetch every connection, write the CSV (0600: it holds client secrets), report the rest."""
    try:
        client, fetch = _reader(source, access)
    except ConfigError as exc:
        fail(str(exc), ExitCode.USAGE, as_json=as_json)
    try:
        fetched = asyncio.run(_fetch(fetch, client))
    except ApiUnavailable as exc:
        fail(str(exc), ExitCode.LEGACY_UNAVAILABLE, error="source_unavailable", as_json=as_json)
    rows = [row for _, row in fetched if not isinstance(row, str)]
    skipped = [(name, row) for name, row in fetched if isinstance(row, str)]
    try:
        write_file_atomically(out, connections_csv(rows).encode(), mode=0o600)
    except OSError as exc:
        fail(f"{out}: cannot write: {exc.strerror}", ExitCode.USAGE, as_json=as_json)
    notes = [(row.id, note) for row in rows for note in row.notes]
    if as_json:
        print_json(
            {
                "file": str(out),
                "exported": [row.id for row in rows],
                "skipped": [{"id": name, "reason": why} for name, why in skipped],
                "notes": [{"id": cid, "note": note} for cid, note in notes],
            }
        )
        return
    typer.echo(f"exported {len(rows)} connection(s) to {out}")
    for name, why in skipped:
        typer.echo(f"  skipped {name}: {why}")
    for cid, note in notes:
        typer.echo(f"  {cid}: {note}")


def _reader(
    source: LegacySource, access: LegacyAccess
) -> tuple[RateLimitedClient, Callable[[RateLimitedClient], Awaitable[Fetched]]]:
    """The client and the fetch of `source`; ConfigError when an option it needs is missing."""
    if source == "cognito":
        if access.user_pool_id is None or access.aws_credentials_file is None:
            raise ConfigError("--source cognito needs --user-pool-id and --aws-credentials-file")
        pool = access.user_pool_id
        region = region_of(pool)
        credentials = read_aws_credentials(access.aws_credentials_file, access.aws_profile)
        endpoint = access.url or f"https://cognito-idp.{region}.amazonaws.com/"
        client = RateLimitedClient(
            httpx.AsyncClient(timeout=access.timeout, auth=SigV4Auth(credentials, region)),
            throttled=is_throttled,
        )
        return client, lambda client: cognito_idps(endpoint, pool, client)
    if access.url is None or access.token_file is None:
        raise ConfigError(f"--source {source} needs --url and --token-file")
    url = access.url
    token = read_secret_file(access.token_file, "--token-file", min_bytes=1).decode()
    scheme = "SSWS" if source == "okta" else "Bearer"
    client = RateLimitedClient(
        httpx.AsyncClient(timeout=access.timeout, headers={"Authorization": f"{scheme} {token}"})
    )
    if source == "okta":
        return client, lambda client: okta_idps(url, client)
    return client, lambda client: auth0_connections(url, client)


async def _fetch(
    fetch: Callable[[RateLimitedClient], Awaitable[Fetched]], client: RateLimitedClient
) -> Fetched:
    try:
        return await fetch(client)
    finally:
        await client.close()
