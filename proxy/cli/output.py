"""How commands report: one error printer, one table renderer, JSON for scripts."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any, NoReturn

import typer

from proxy.cli.exit_codes import ExitCode


def print_json(value: Any) -> None:
    """Pretty JSON on stdout."""
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def fail(
    message: str, code: ExitCode, *, error: str | None = None, as_json: bool = False
) -> NoReturn:
    """End the command: `authswitch: message` on stderr (and a JSON error on stdout with --json)."""
    if as_json:
        print_json(
            {"error": error or code.name.lower(), "message": message, "exit_code": int(code)}
        )
    typer.echo(f"authswitch: {message}", err=True)
    raise typer.Exit(int(code))


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Plain aligned columns (no borders or colour: greppable, pasteable); a cell's lines stack."""
    # Imported here: only the commands that print a table pay for rich.
    from rich.console import Console
    from rich.table import Table

    table = Table(
        box=None, pad_edge=False, show_edge=False, header_style=None, padding=(0, 2, 0, 0)
    )
    for name in header:
        table.add_column(name, no_wrap=True, overflow="ignore")
    for row in rows:
        table.add_row(*row)
    out = io.StringIO()
    console = Console(
        file=out, width=100_000, color_system=None, highlight=False, emoji=False, markup=False
    )
    console.print(table)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())
