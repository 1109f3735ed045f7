"""`authswitch broker test`: one password check (and, optionally, one provisioning) against
the systems a config names, each step's result printed. The password is read with hidden input
or from a file and never printed. Exit codes are part of the interface (see ``ExitCode``)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from proxy.broker.credential import Credential, Password
from proxy.broker.provisioning import Provisioner, ProvisioningFailed, provision
from proxy.broker.verifier import LegacyUnavailable, Profile, Verifier
from proxy.cli.exit_codes import ExitCode
from proxy.cli.options import ConfigOption
from proxy.cli.output import fail
from proxy.config import ConfigError, load_config, read_secret_file

_DEADLINE_SECONDS = 30.0  # each step; the verifier's and provisioner's own timeouts come first


broker_app = typer.Typer(
    help="Check the password broker's configuration against the real systems.",
    no_args_is_help=True,
    add_completion=False,
)


@broker_app.command("test")
def test_login(
    config: ConfigOption,
    identifier: Annotated[str, typer.Option(help="The user's login (email or username).")],
    password_file: Annotated[
        Path | None,
        typer.Option(help="Read the password from this file instead of a hidden prompt."),
    ] = None,
    provision: Annotated[
        bool, typer.Option("--provision", help="Also create the user at the new provider.")
    ] = False,
) -> None:
    """Verify IDENTIFIER's password at legacy (broker.verifier), then optionally provision the
    user (broker.provisioner), printing the result of each step."""
    try:
        settings = load_config(config).broker
        if settings.verifier is None:
            raise ConfigError(f"config '{config}': key 'broker.verifier' is not set")
        if provision and settings.provisioner is None:
            raise ConfigError(f"config '{config}': key 'broker.provisioner' is not set")
        password = (
            read_secret_file(password_file, "--password-file").decode()
            if password_file is not None
            else typer.prompt("password", hide_input=True)
        )
        # Here, not at the top: the providers' clients would slow every `authswitch` command.
        from proxy.broker.backends import provisioner_for, verifier_for

        verifier = verifier_for(settings)
        provisioner = provisioner_for(settings) if provision else None
    except ConfigError as exc:
        fail(str(exc), ExitCode.USAGE)
    credential = Credential(identifier, Password(password))
    raise typer.Exit(asyncio.run(_run(verifier, provisioner, credential)))


async def _run(
    verifier: Verifier, provisioner: Provisioner | None, credential: Credential
) -> ExitCode:
    profile = await _verify(verifier, credential)
    if not isinstance(profile, Profile):
        return profile
    if provisioner is None:
        return ExitCode.OK
    return await _provision(provisioner, credential, profile.completed(credential.identifier))


async def _verify(verifier: Verifier, credential: Credential) -> Profile | ExitCode:
    await verifier.start()
    try:
        async with asyncio.timeout(_DEADLINE_SECONDS):
            profile = await verifier.verify(credential)
    except (LegacyUnavailable, TimeoutError) as exc:
        typer.echo(f"verify: legacy unavailable ({_reason(exc)})")
        return ExitCode.LEGACY_UNAVAILABLE
    finally:
        await verifier.close()
    if profile is None:
        typer.echo("verify: denied (wrong password or unknown user)")
        return ExitCode.FAILED
    typer.echo(f"verify: verified ({_describe(profile.completed(credential.identifier))})")
    return profile


async def _provision(
    provisioner: Provisioner, credential: Credential, profile: Profile
) -> ExitCode:
    await provisioner.start()
    try:
        async with asyncio.timeout(_DEADLINE_SECONDS):
            result = await provision(provisioner, credential, profile)
    except (ProvisioningFailed, TimeoutError) as exc:
        typer.echo(f"provision: failed ({_reason(exc)})")
        return ExitCode.PROVISIONING_FAILED
    finally:
        await provisioner.close()
    typer.echo(f"provision: {result.replace('_', ' ')}")
    return ExitCode.OK


def _reason(exc: Exception) -> str:
    # Both exception types carry messages written to name no credential.
    detail = str(exc) if isinstance(exc, LegacyUnavailable | ProvisioningFailed) else "no answer"
    return f"{type(exc).__name__}: {detail}"


def _describe(profile: Profile) -> str:
    known = [
        f"{name}: {value}"
        for name, value in (
            ("email", profile.email),
            ("name", profile.name),
            ("given_name", profile.given_name),
            ("family_name", profile.family_name),
        )
        if value is not None
    ]
    if profile.email is not None:
        known.append(f"email_verified: {str(profile.email_verified).lower()}")
    return ", ".join(known) or "no profile attributes"
