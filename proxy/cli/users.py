"""`authswitch users export`: the legacy provider's users into a resumable NDJSON state file
(exit 0; 2 options, credentials or state file; 6 the source could not be read).
`authswitch users diff`: the new provider's users against the source's (exit 0 none; 1 differences;
2 a file, key or target that can't be read).
`authswitch users inventory`: what a users file holds (exit 0; 2 when it can't be read).
`authswitch users import`: bulk-import password users into the new provider.

The target is broker.provisioner: a SCIM server, or the WorkOS or Kratos API the broker's
provisioner writes to (create only: no --on-existing update, no --bulk); --scim-url overrides.

Exit status: 0 every line imported or already present; 1 a line was invalid (nothing is
imported unless --skip-invalid), a user failed, or --on-existing fail stopped the import;
2 the command can't start: config, provisioner, input file, checkpoint of another input, or a
target that does not answer or refuses the token.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from proxy.cli.options import CONFIG_ENV

users_app = typer.Typer(
    help="Take stock of users and bulk-import them into the new provider.", no_args_is_help=True
)


class ImportTargetKind(StrEnum):
    okta = "okta"


class OnExistingMode(StrEnum):
    ignore = "ignore"
    fail = "fail"
    update = "update"


@users_app.command("import")
def import_users(
    file: Annotated[Path, typer.Argument(help="NDJSON, one user per line (see README).")],
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar=CONFIG_ENV,
            help="authswitch config: broker.provisioner is the target.",
        ),
    ] = None,
    on_existing: Annotated[
        OnExistingMode, typer.Option(help="A user already at the target: skip, stop, or update.")
    ] = OnExistingMode.ignore,
    batch_size: Annotated[
        int, typer.Option(min=1, max=1000, help="Users per batch (the unit of the checkpoint).")
    ] = 100,
    parallel: Annotated[int, typer.Option(min=1, max=64, help="Batches in flight.")] = 8,
    checkpoint: Annotated[
        Path | None, typer.Option(help="Checkpoint file [default: FILE.checkpoint].")
    ] = None,
    report_json: Annotated[
        Path | None, typer.Option(help="Also write the drift report here, as JSON.")
    ] = None,
    skip_invalid: Annotated[
        bool, typer.Option(help="Import the valid lines even when some are invalid.")
    ] = False,
    scim_url: Annotated[
        str | None, typer.Option(help="SCIM base URL [default: broker.provisioner.url].")
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(
            help="Bearer token (SCIM, Kratos) or API key (WorkOS) file "
            "[default: broker.provisioner's]."
        ),
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(min=0.1, max=300, help="Seconds per request [default: 30].")
    ] = None,
    bulk: Annotated[
        bool | None,
        typer.Option(
            "--bulk/--no-bulk",
            help="SCIM /Bulk [default: when the server offers it]; SCIM only.",
        ),
    ] = None,
    target: Annotated[
        ImportTargetKind | None,
        typer.Option(
            help="okta: the Okta Users API (--okta-url, --token-file: an API token) "
            "(default: broker.provisioner)."
        ),
    ] = None,
    okta_url: Annotated[
        str | None, typer.Option(help="--target okta: https://ORG.okta.com.")
    ] = None,
) -> None:
    """Validate every line of FILE, then import the users in checkpointed batches."""
    # Here, not at the top: the import machinery would slow every `authswitch` command.
    from proxy.users_import.command import run_import

    run_import(
        file=file,
        config=config,
        on_existing=on_existing.value,
        batch_size=batch_size,
        parallel=parallel,
        checkpoint=checkpoint,
        report_json=report_json,
        skip_invalid=skip_invalid,
        scim_url=scim_url,
        token_file=token_file,
        timeout=timeout,
        bulk=bulk,
        target=None if target is None else target.value,
        okta_url=okta_url,
    )


@users_app.command("inventory")
def inventory_users(
    file: Annotated[Path, typer.Argument(help="NDJSON, one user per line (see README).")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    top: Annotated[
        int, typer.Option(min=1, max=1000, help="Email domains and groups listed.")
    ] = 10,
) -> None:
    """Count FILE's users by state, identity type, email domain, group, attribute and hash."""
    from proxy.users_import.inventory import run_inventory

    run_inventory(file, as_json=as_json, top=top)


class ExportSource(StrEnum):
    auth0 = "auth0"
    cognito = "cognito"
    okta = "okta"
    firebase_file = "firebase-file"


@users_app.command("export")
def export_users(
    source: Annotated[ExportSource, typer.Option(help="The legacy provider to read.")],
    out: Annotated[
        Path,
        typer.Option(
            help="The NDJSON state file (`users import` reads it); a cursor file beside it "
            "makes a re-run resume."
        ),
    ],
    url: Annotated[
        str | None,
        typer.Option(
            help="auth0: https://TENANT.auth0.com; okta: https://ORG.okta.com; cognito: the "
            "endpoint (default https://cognito-idp.REGION.amazonaws.com)."
        ),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(help="auth0: a Management API token (read:users); okta: an API token."),
    ] = None,
    aws_credentials_file: Annotated[
        Path | None,
        typer.Option(help="cognito: an AWS shared-credentials file (cognito-idp:ListUsers)."),
    ] = None,
    aws_profile: Annotated[
        str, typer.Option(help="cognito: the profile in that file.")
    ] = "default",
    user_pool_id: Annotated[str | None, typer.Option(help="cognito: the pool (REGION_ID).")] = None,
    file: Annotated[
        Path | None, typer.Option(help="firebase-file: the `firebase auth:export` JSON file.")
    ] = None,
    hash_config: Annotated[
        Path | None,
        typer.Option(help="firebase-file: the project's password hash parameters (hash_config)."),
    ] = None,
    export_job: Annotated[
        bool, typer.Option(help="auth0: by a user-export job (any number of users).")
    ] = False,
    connection_id: Annotated[
        str | None, typer.Option(help="auth0 --export-job: only this connection's users.")
    ] = None,
    page_size: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=1000,
            help="Users per page (default the most the source allows: 100/60/200/1000).",
        ),
    ] = None,
    timeout: Annotated[float, typer.Option(min=0.1, max=300, help="Seconds per request.")] = 30.0,
    restart: Annotated[
        bool, typer.Option(help="Start over: discard the state file and its cursor.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The summary as JSON.")] = False,
) -> None:
    """Export the legacy provider's users into a resumable NDJSON state file."""
    from proxy.users_export.command import ExportRequest, run_export

    run_export(
        ExportRequest(
            source=source.value,
            out=out,
            url=url,
            token_file=token_file,
            aws_credentials_file=aws_credentials_file,
            aws_profile=aws_profile,
            user_pool_id=user_pool_id,
            file=file,
            hash_config=hash_config,
            export_job=export_job,
            connection_id=connection_id,
            page_size=page_size,
            timeout=timeout,
            restart=restart,
            as_json=as_json,
        )
    )


@users_app.command("diff")
def diff_users(
    source: Annotated[
        Path, typer.Option(help="The source's users: an export state file (NDJSON).")
    ],
    target: Annotated[
        str,
        typer.Option(
            help="`workos` (the WorkOS User Management API), or an NDJSON file of the target's "
            "users (./workos for a file of that name)."
        ),
    ],
    url: Annotated[
        str | None, typer.Option(help="WorkOS API base (default https://api.workos.com).")
    ] = None,
    api_key_file: Annotated[
        Path | None, typer.Option(help="The WorkOS API key file (read access to users).")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar=CONFIG_ENV,
            help="authswitch config: a workos broker.provisioner gives the URL and key.",
        ),
    ] = None,
    timeout: Annotated[float, typer.Option(min=0.1, max=300, help="Seconds per request.")] = 30.0,
    as_json: Annotated[bool, typer.Option("--json", help="The whole diff as JSON.")] = False,
) -> None:
    """Compare the new provider's users with the source's: missing, extra, changed."""
    from proxy.cli.users_diff import run_diff

    run_diff(
        source=source,
        target=target,
        url=url,
        api_key_file=api_key_file,
        config=config,
        timeout=timeout,
        as_json=as_json,
    )
