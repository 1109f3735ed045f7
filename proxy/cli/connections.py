"""`authswitch connections ...`: import, export and triage the connection map.

Exit codes (see ``ExitCode``): FAILED the input was refused (nothing written) or `check` found
a connection that the flag sends to the new provider although it is not transparent; USAGE the
config, the map or the flags can't be used, or the command line is wrong; BACKEND_UNAVAILABLE
Redis did not answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import redis
import typer

from connection_map import (
    ConnectionMapDocument,
    ConnectionMapError,
    ImportRefused,
    MetadataError,
    MetadataFetchError,
    Protocol,
    TriageSettings,
    check_connections,
    export_connections_csv,
    fetch_metadata,
    import_connections_csv,
    import_idp_metadata,
    parse_idp_metadata,
    read_connection_map_document,
    save_connection_map,
    triage_connections,
    with_assessments,
)
from connection_map.check_report import CHECK_COLUMNS
from connection_map.metadata_fetch import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT_SECONDS
from connection_map.metadata_signature import SignaturePin, verify_metadata_signature
from connection_map.triage import DEFAULT_NAME_ID_FORMATS
from flags import (
    FlagFileError,
    RolloutState,
    RolloutStoreError,
    evaluate,
    load_rollout_state,
)
from foundation.atomic_file import write_file_atomically
from proxy.cli import connections_push
from proxy.cli.exit_codes import ExitCode
from proxy.cli.options import ConfigOption, JsonOption
from proxy.cli.output import fail, print_json, render_table
from proxy.config import Config, ConfigError, load_config
from proxy.flag_backend import open_rollout_store
from proxy.map_backend import MapBackendUnavailable, served_map_document
from proxy.shadow.readiness_report import COLUMNS as READINESS_COLUMNS
from proxy.shadow.readiness_report import readiness_rows
from proxy.shadow.readiness_report import table_rows as readiness_table
from proxy.shadow.readiness_report import to_json as readiness_json
from proxy.shadow.service import readiness_store_for

connections_app = typer.Typer(
    help="Import, export and triage the connection map.", no_args_is_help=True
)
import_app = typer.Typer(help="Import connections into the map.", no_args_is_help=True)
export_app = typer.Typer(help="Export the map.", no_args_is_help=True)
connections_app.add_typer(import_app, name="import")
connections_app.add_typer(export_app, name="export")

NameIdOption = Annotated[
    list[str] | None,
    typer.Option(
        "--name-id-format",
        help="A NameID format the new provider can express (repeat; replaces the default set).",
    ),
]
IdColumnOption = Annotated[
    str, typer.Option("--id-column", help="CSV column that gives each connection its id.")
]


@dataclass(frozen=True)
class _Setup:
    config: Config
    document: ConnectionMapDocument
    triage: TriageSettings


def _setup(config_path: Path, name_id_formats: Sequence[str] | None) -> _Setup:
    try:
        config = load_config(config_path)
        if config.connection_map.exists():
            document = read_connection_map_document(config.connection_map)
        else:  # the first import creates it
            document = ConnectionMapDocument()
    except (ConfigError, ConnectionMapError) as exc:
        fail(str(exc), ExitCode.USAGE)
    routes = config.routes  # the very routes the proxy serves, one model for both
    formats = frozenset(name_id_formats) if name_id_formats else DEFAULT_NAME_ID_FORMATS
    return _Setup(config, document, TriageSettings(routes=routes, name_id_formats=formats))


def _write_imported(setup: _Setup, document: ConnectionMapDocument, ids: Sequence[str]) -> None:
    assessed = with_assessments(document, ids, setup.triage)
    save_connection_map(setup.config.connection_map, assessed)
    results = triage_connections(assessed.connections, setup.triage)
    typer.echo(
        f"imported {len(ids)} connection(s) into {setup.config.connection_map} "
        f"(version {assessed.version}):"
    )
    for cid in ids:
        triage = results[cid]
        codes = ", ".join(r.code for r in triage.reasons)
        typer.echo(f"  {cid}: {triage.assessment.value}" + (f" ({codes})" if codes else ""))


@import_app.command("csv")
def import_csv(
    file: Annotated[Path, typer.Argument(help="The connections CSV (SAML, OIDC or both).")],
    config: ConfigOption,
    id_column: IdColumnOption = "externalId",
    protocol: Annotated[
        Protocol | None, typer.Option(help="Treat every row as this protocol.")
    ] = None,
    name_id_format: NameIdOption = None,
    strict: Annotated[
        bool, typer.Option(help="Refuse unknown and unnamed columns instead of ignoring them.")
    ] = False,
) -> None:
    """Import the connections CSV: every row valid, or nothing written (secrets not stored)."""
    setup = _setup(config, name_id_format)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problem = getattr(exc, "strerror", None) or "not UTF-8 text"
        fail(f"{file}: cannot read: {problem}", ExitCode.FAILED)
    try:
        result = import_connections_csv(
            setup.document,
            text,
            source=str(file),
            id_column=id_column,
            protocol=protocol,
            strict=strict,
        )
    except ImportRefused as exc:
        fail(str(exc), ExitCode.FAILED)
    for warning in result.warnings:
        typer.echo(f"{file}: warning: {warning}", err=True)
    _write_imported(setup, result.document, result.imported)


@import_app.command("metadata")
def import_metadata(
    source: Annotated[str, typer.Argument(help="IdP metadata: a file, or an https:// URL.")],
    connection_id: Annotated[str, typer.Option("--id", help="The connection to create/update.")],
    config: ConfigOption,
    entity_id: Annotated[
        str | None, typer.Option(help="Which IdP, when the metadata describes several.")
    ] = None,
    allow_http: Annotated[bool, typer.Option(help="Allow a plain http:// URL.")] = False,
    timeout: Annotated[
        float, typer.Option(min=0.1, max=120, help="Seconds for the whole download.")
    ] = DEFAULT_TIMEOUT_SECONDS,
    max_bytes: Annotated[
        int, typer.Option(min=1024, max=64 * 1024 * 1024, help="Size cap for the metadata.")
    ] = DEFAULT_MAX_BYTES,
    name_id_format: NameIdOption = None,
    signing_cert: Annotated[
        Path | None,
        typer.Option(help="PEM certificate the metadata's signature must verify with."),
    ] = None,
    signing_fingerprint: Annotated[
        str | None,
        typer.Option(help="SHA-256 fingerprint (hex) of the certificate that signed it."),
    ] = None,
) -> None:
    """Create or update a SAML connection from its IdP's metadata."""
    setup = _setup(config, name_id_format)
    pin = _signature_pin(signing_cert, signing_fingerprint)
    is_url = "://" in source
    try:
        data = (
            fetch_metadata(source, timeout=timeout, max_bytes=max_bytes, allow_http=allow_http)
            if is_url
            else _read_capped(Path(source), max_bytes)
        )
        if pin is not None:
            verify_metadata_signature(data, pin)
        metadata = parse_idp_metadata(data, entity_id=entity_id)
        document = import_idp_metadata(
            setup.document,
            metadata,
            connection_id,
            source=source if not is_url else "metadata",
            metadata_url=source if is_url else None,
        )
    except MetadataError as exc:
        fail(f"metadata {_shown(source, is_url)} {exc}", ExitCode.FAILED)
    except (MetadataFetchError, ImportRefused) as exc:
        fail(str(exc), ExitCode.FAILED)
    typer.echo(
        f"{metadata.entity_id}: {len(metadata.signing_certificates)} signing certificate(s), "
        f"{len(metadata.sso_services)} SSO URL(s), NameID formats: "
        + (", ".join(metadata.name_id_formats) or "none listed")
    )
    _write_imported(setup, document, [connection_id])


def _signature_pin(certificate: Path | None, fingerprint: str | None) -> SignaturePin | None:
    if certificate is None and fingerprint is None:
        return None
    if certificate is not None and fingerprint is not None:
        fail("give --signing-cert or --signing-fingerprint, not both", ExitCode.USAGE)
    if fingerprint is not None:
        return SignaturePin(sha256_fingerprint=fingerprint)
    assert certificate is not None
    try:
        return SignaturePin(certificate_pem=certificate.read_text(encoding="ascii"))
    except (OSError, UnicodeDecodeError) as exc:
        problem = getattr(exc, "strerror", None) or "not a PEM file"
        fail(f"--signing-cert {certificate}: cannot read: {problem}", ExitCode.USAGE)


def _shown(source: str, is_url: bool) -> str:
    return source.split("?", 1)[0] if is_url else f"'{source}'"


def _read_capped(path: Path, max_bytes: int) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise MetadataFetchError(f"'{path}': cannot read: {exc.strerror}") from None
    if len(data) > max_bytes:
        raise MetadataFetchError(f"'{path}': larger than {max_bytes} bytes")
    return data


@export_app.command("csv")
def export_csv(
    config: ConfigOption,
    protocol: Annotated[
        Protocol | None, typer.Option(help="Only this protocol's connections and columns.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default: stdout).")
    ] = None,
    secrets_from: Annotated[
        Path | None,
        typer.Option(help="The CSV the secrets come from (the map never holds them)."),
    ] = None,
    id_column: IdColumnOption = "externalId",
) -> None:
    """Write the map as the connections CSV for the new provider's import tool."""
    setup = _setup(config, None)
    secrets = None
    if secrets_from is not None:
        try:
            text = secrets_from.read_text(encoding="utf-8")
            secrets = import_connections_csv(
                ConnectionMapDocument(), text, source=str(secrets_from), id_column=id_column
            ).secrets
        except (OSError, UnicodeDecodeError):
            fail(f"{secrets_from}: cannot read", ExitCode.FAILED)
        except ImportRefused as exc:
            fail(str(exc), ExitCode.FAILED)
    result = export_connections_csv(
        setup.document.connections, protocol=protocol, secrets=secrets, id_column=id_column
    )
    if output is None:
        typer.echo(result.text, nl=False)
    else:
        _write_private(output, result.text)
        typer.echo(f"exported {result.rows} connection(s) to {output}", err=True)
    if result.missing_secrets:
        shown = ", ".join(f"{cid}.{column}" for cid, column in result.missing_secrets[:10])
        more = len(result.missing_secrets) - 10
        typer.echo(
            f"authswitch: {len(result.missing_secrets)} secret cell(s) left empty: {shown}"
            + (f" and {more} more" if more > 0 else "")
            + " (use --secrets-from with the original CSV)",
            err=True,
        )


def _write_private(path: Path, text: str) -> None:
    # It may hold private keys and client secrets: 0600 from the start, replaced atomically.
    write_file_atomically(path, text.encode("utf-8"), mode=0o600)


@connections_app.command()
def check(
    config: ConfigOption,
    as_json: JsonOption = False,
    name_id_format: NameIdOption = None,
) -> None:
    """Triage every connection; exit 1 if one the flag sends to the new provider can't move."""
    setup = _setup(config, name_id_format)
    if not setup.config.connection_map.exists():
        fail(f"connection map '{setup.config.connection_map}': no such file", ExitCode.USAGE)
    try:
        state = _rollout_state(setup.config)
    except FlagFileError as exc:
        fail(str(exc), ExitCode.USAGE)
    except RolloutStoreError as exc:
        fail(str(exc), ExitCode.BACKEND_UNAVAILABLE)
    report = check_connections(
        setup.document.connections,
        setup.triage,
        enabled=lambda cid: evaluate(state, cid).route == "new",
    )
    if as_json:
        print_json(report.to_json())
    else:
        typer.echo(render_table(CHECK_COLUMNS, report.table_rows()))
        typer.echo(f"\n{report.summary_line()}")
    raise typer.Exit(report.exit_code)


@connections_app.command()
def readiness(config: ConfigOption, as_json: JsonOption = False) -> None:
    """Shadow readiness: per connection, would the new provider accept its live logins."""
    setup = _setup(config, None)
    shadow = setup.config.shadow
    if shadow.redis is None:
        fail(
            "shadow.redis is not configured: readiness counts stay in each proxy's memory",
            ExitCode.USAGE,
            as_json=as_json,
        )
    try:
        # The checks compared samples with the map the proxy serves (file or Redis): so does this.
        served = served_map_document(setup.config, min_timeout=2.0)
        rows = readiness_rows(served.connections, shadow, readiness_store_for(shadow, cli=True))
    except ConnectionMapError as exc:
        fail(str(exc), ExitCode.USAGE, as_json=as_json)
    except MapBackendUnavailable as exc:
        fail(str(exc), ExitCode.BACKEND_UNAVAILABLE, as_json=as_json)
    except redis.RedisError as exc:
        fail(f"shadow.redis: {type(exc).__name__}", ExitCode.BACKEND_UNAVAILABLE, as_json=as_json)
    if as_json:
        print_json(readiness_json(rows))
        return
    typer.echo(render_table(READINESS_COLUMNS, readiness_table(rows)))
    ready = sum(why is None for _, why in rows)
    typer.echo(f"\n{ready} of {len(rows)} connections ready.")


def _rollout_state(config: Config) -> RolloutState:
    if config.flags.backend == "file":
        assert config.flags.file is not None  # the config requires it for the file backend
        return load_rollout_state(config.flags.file)
    store = open_rollout_store(config, client_name="authswitch-connections-cli", min_timeout=2.0)
    return store.read()


# Publishing to Redis, previewed, with history and rollback: in their own module.
connections_app.command()(connections_push.push)
connections_app.command()(connections_push.history)
connections_app.command()(connections_push.rollback)


class LegacyConnectionsSource(StrEnum):
    auth0 = "auth0"
    okta = "okta"
    cognito = "cognito"


@export_app.command("legacy")
def export_legacy(
    source: Annotated[LegacyConnectionsSource, typer.Option(help="The legacy provider to read.")],
    out: Annotated[
        Path,
        typer.Option(help="The connections CSV to write (0600: it holds OIDC client secrets)."),
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
        typer.Option(
            help="auth0: a Management API token (read:connections); okta: an API token that "
            "reads identity providers."
        ),
    ] = None,
    aws_credentials_file: Annotated[
        Path | None,
        typer.Option(
            help="cognito: an AWS shared-credentials file (cognito-idp:DescribeUserPool, "
            "ListIdentityProviders, DescribeIdentityProvider)."
        ),
    ] = None,
    aws_profile: Annotated[
        str, typer.Option(help="cognito: the profile in that file.")
    ] = "default",
    user_pool_id: Annotated[str | None, typer.Option(help="cognito: the pool (REGION_ID).")] = None,
    timeout: Annotated[float, typer.Option(min=0.1, max=300, help="Seconds per request.")] = 30.0,
    as_json: JsonOption = False,
) -> None:
    """Export the legacy provider's SAML and OIDC connections as the connections CSV."""
    from proxy.connections_export.command import LegacyAccess, run_connections_export

    access = LegacyAccess(
        url=url,
        token_file=token_file,
        aws_credentials_file=aws_credentials_file,
        aws_profile=aws_profile,
        user_pool_id=user_pool_id,
        timeout=timeout,
    )
    run_connections_export(source=source.value, access=access, out=out, as_json=as_json)
