"""What `authswitch connections export legacy` does; proxy/cli/connections.py holds its options
and imports this only when the command runs."""

from __future__ import annotations

import asyncio
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
from proxy.connections_export.fetch import Fetched, auth0_connections, okta_idps
from proxy.http.rate_limits import ApiUnavailable, RateLimitedClient

LegacySource = Literal["auth0", "okta"]


def run_connections_export(
    *,
    source: LegacySource,
    url: str,
    token_file: Path,
    out: Path,
    timeout: float,
    as_json: bool,
) -> None:
    """Fetch every connection, write the CSV (0600: it holds client secrets), report the rest."""
    try:
        token = read_secret_file(token_file, "--token-file", min_bytes=1).decode()
    except ConfigError as exc:
        fail(str(exc), ExitCode.USAGE, as_json=as_json)
    scheme = "SSWS" if source == "okta" else "Bearer"
    client = RateLimitedClient(
        httpx.AsyncClient(timeout=timeout, headers={"Authorization": f"{scheme} {token}"})
    )
    try:
        fetched = asyncio.run(_fetch(source, url, client))
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


async def _fetch(source: LegacySource, url: str, client: RateLimitedClient) -> Fetched:
    try:
        if source == "okta":
            return await okta_idps(url, client)
        return await auth0_connections(url, client)
    finally:
        await client.close()
