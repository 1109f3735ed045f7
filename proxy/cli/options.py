"""Options every command group shares, spelled and documented once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

CONFIG_ENV = "AUTHSWITCH_CONFIG"
ACTOR_ENV = "AUTHSWITCH_ACTOR"

ConfigOption = Annotated[
    Path,
    typer.Option(
        "--config",
        "-c",
        envvar=CONFIG_ENV,
        help=f"The authswitch config (YAML); or set {CONFIG_ENV}.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="JSON on stdout, for scripts.")]
ActorOption = Annotated[
    str | None,
    typer.Option("--actor", envvar=ACTOR_ENV, help="Who; kept in the audit trail."),
]

# Preview/apply, for every change that is previewed before it is applied (flags stage, rollout
# plan): the apply must quote the token the preview printed.
ApplyOption = Annotated[
    str | None, typer.Option("--apply", help="Apply the preview that printed TOKEN.")
]
ApplyReasonOption = Annotated[
    str | None, typer.Option("--reason", help="Why (required with --apply).")
]
