"""What `authswitch users import` does; proxy/cli/users.py holds its options and help, and
imports this only when the command runs."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import typer
from rich.console import Console

from proxy.broker.backends import provisioner_for
from proxy.broker.config import Broker as BrokerConfig
from proxy.broker.config import ConfigError, load_broker_config, read_secret_file
from proxy.broker.config import KratosProvisioner as KratosConfig
from proxy.broker.config import WorkosProvisioner as WorkosConfig
from proxy.broker.kratos_identities import KratosProvisioner
from proxy.broker.workos import WorkosProvisioner
from proxy.users_import import (
    Checkpoint,
    CheckpointRefused,
    DriftReport,
    ImportOptions,
    ImportProgress,
    ImportTarget,
    OnExisting,
    ProvisionerImportTarget,
    ScimImportTarget,
    SourceChanged,
    TargetUnavailable,
    UsersImport,
    scan_source,
)
from proxy.users_import.checkpoint import write_atomically
from proxy.users_import.okta_target import OktaProvisioner

log = logging.getLogger("authswitch.users_import")

_PROBLEMS_SHOWN = 50
# Per request to a WorkOS or Kratos target, unless --timeout: the broker's own deadline (its
# config's timeout_seconds, 2 s by default) is for a login waiting on it, too short for a bulk run.
_PROVIDER_TIMEOUT_SECONDS = 30.0


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"authswitch: {message}", err=True)
    return typer.Exit(code)


def run_import(
    *,
    file: Path,
    config: Path | None,
    on_existing: OnExisting,
    batch_size: int,
    parallel: int,
    checkpoint: Path | None,
    report_json: Path | None,
    skip_invalid: bool,
    scim_url: str | None,
    token_file: Path | None,
    timeout: float | None,
    bulk: bool | None,
    target: str | None = None,
    okta_url: str | None = None,
) -> None:
    """Validate every line of FILE, then import the users in checkpointed batches."""
    import_target: ImportTarget
    if target == "okta":
        import_target = _okta_target(okta_url, token_file, timeout, bulk, on_existing)
    else:
        import_target = _target(config, scim_url, token_file, timeout, bulk, parallel, on_existing)
    _run_import(
        file,
        import_target,
        batch_size,
        parallel,
        checkpoint,
        report_json,
        skip_invalid,
        on_existing,
    )


def _run_import(
    file: Path,
    target: ImportTarget,
    batch_size: int,
    parallel: int,
    checkpoint: Path | None,
    report_json: Path | None,
    skip_invalid: bool,
    on_existing: OnExisting,
) -> None:
    try:
        scan = scan_source(file, hash_target=target.hash_target)
    except OSError as exc:
        raise _fail(f"{file}: cannot read: {exc.strerror}", 2) from None
    report = DriftReport.for_source(scan.source, scan.problems)
    for problem in scan.problems[:_PROBLEMS_SHOWN]:
        typer.echo(f"{file}: {problem}", err=True)
    if len(scan.problems) > _PROBLEMS_SHOWN:
        typer.echo(f"... and {len(scan.problems) - _PROBLEMS_SHOWN} more", err=True)
    if scan.problems and not skip_invalid:
        # The valid lines are not attempted: the report counts them so, and still adds up.
        report.stopped = (
            f"{len(scan.problems)} invalid line(s): nothing imported "
            "(--skip-invalid imports the valid lines)"
        )
        _write_report(report, report_json)
        raise _fail(
            f"{len(scan.problems)} invalid line(s) in {file}: nothing imported "
            "(fix them, or give --skip-invalid to import the valid lines)",
            1,
        )
    path = checkpoint or file.with_name(file.name + ".checkpoint")
    try:
        state = Checkpoint.open(path, scan.sha256, batch_size)
    except CheckpointRefused as exc:
        raise _fail(str(exc), 2) from None
    options = ImportOptions(batch_size=batch_size, parallel=parallel, on_existing=on_existing)
    run = UsersImport(file, scan, target, state, options, report)
    try:
        asyncio.run(_run(run, target, scan.valid, sum(state.totals.values())))
    except TargetUnavailable as exc:
        raise _fail(f"the import target can't be used: {exc}", 2) from None
    except SourceChanged as exc:
        raise _fail(f"{file}: {exc}; the checkpoint keeps the completed batches", 2) from None
    report.transport = target.transport
    report.print(Console(width=100))
    _write_report(report, report_json)
    log.info("users import finished", extra={"fields": report.to_json()})
    if not report.ok:
        typer.echo(f"authswitch: checkpoint kept in {path}: a re-run does what is left", err=True)
        raise typer.Exit(1)
    state.remove()  # every batch is done: nothing to resume


async def _run(run: UsersImport, target: ImportTarget, total: int, done: int) -> None:
    await target.start()
    try:
        await run.run(ImportProgress(total, done))
    finally:
        await target.close()


def _target(
    config: Path | None,
    scim_url: str | None,
    token_file: Path | None,
    timeout: float | None,
    bulk: bool | None,
    parallel: int,
    on_existing: OnExisting,
) -> ImportTarget:
    settings = None
    if config is not None:
        try:
            settings = load_broker_config(config).provisioner
        except ConfigError as exc:
            raise _fail(str(exc), 2) from None
    if isinstance(settings, WorkosConfig | KratosConfig):
        if scim_url is None:
            return _provisioner_target(settings, token_file, timeout, bulk, on_existing)
        settings = None  # its URL and key are for another API
    url = scim_url or (str(settings.url) if settings is not None else None)
    if url is None:
        raise _fail("no import target: set broker.provisioner in --config, or give --scim-url", 2)
    token_path, key = token_file, "--token-file"
    if token_path is None and settings is not None:
        token_path, key = settings.token_file, "broker.provisioner.token_file"
    try:
        token = None if token_path is None else read_secret_file(token_path, key).decode()
    except ConfigError as exc:
        raise _fail(str(exc), 2) from None
    return ScimImportTarget(
        url,
        token=token,
        timeout_seconds=timeout or 30.0,
        connections=parallel * 8,
        use_bulk=bulk,
    )


def _okta_target(
    url: str | None,
    token_file: Path | None,
    timeout: float | None,
    bulk: bool | None,
    on_existing: OnExisting,
) -> ProvisionerImportTarget:
    """The Okta Users API as the target (users created with passwords or Okta hash imports)."""
    if url is None or token_file is None:
        raise _fail("--target okta needs --okta-url and --token-file (an Okta API token)", 2)
    if on_existing == "update":
        raise _fail("--on-existing update needs a SCIM target: use ignore or fail", 2)
    if bulk is not None:
        raise _fail("--bulk/--no-bulk apply to a SCIM target, not to okta", 2)
    try:
        token = read_secret_file(token_file, "--token-file").decode()
    except ConfigError as exc:
        raise _fail(str(exc), 2) from None
    provisioner = OktaProvisioner(
        url, api_token=token, timeout_seconds=timeout or _PROVIDER_TIMEOUT_SECONDS
    )
    return ProvisionerImportTarget(provisioner, name="okta")


def _provisioner_target(
    settings: WorkosConfig | KratosConfig,
    token_file: Path | None,
    timeout: float | None,
    bulk: bool | None,
    on_existing: OnExisting,
) -> ProvisionerImportTarget:
    """The WorkOS or Kratos provisioner the broker uses, as the import target."""
    kind = settings.type
    if on_existing == "update":
        raise _fail(
            f"--on-existing update needs a SCIM target: the {kind} provisioner creates users "
            "and can't update them (use ignore or fail)",
            2,
        )
    if bulk is not None:
        raise _fail(f"--bulk/--no-bulk apply to a SCIM target, not to {kind}", 2)
    changes: dict[str, object] = {"timeout_seconds": timeout or _PROVIDER_TIMEOUT_SECONDS}
    if token_file is not None:
        changes["api_key_file" if kind == "workos" else "token_file"] = token_file
    provisioner_settings = settings.model_copy(update=changes)
    try:
        provisioner = provisioner_for(BrokerConfig(provisioner=provisioner_settings))
    except ConfigError as exc:
        raise _fail(str(exc), 2) from None
    assert isinstance(provisioner, WorkosProvisioner | KratosProvisioner)
    return ProvisionerImportTarget(provisioner, name=kind)


def _write_report(report: DriftReport, path: Path | None) -> None:
    if path is not None:
        write_atomically(path, json.dumps(report.to_json(), indent=2).encode() + b"\n")
