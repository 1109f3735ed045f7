"""Cognito ListUsers export against moto's Cognito: users created through the API, read back
page by page with PaginationToken, disabled users left out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from proxy.cli.main import app
from proxy.users_export.cognito import CognitoUsers, SigV4Auth, is_throttled, region_of
from proxy.users_export.sigv4 import AwsCredentials
from tests.proxy.cognito_emulator import ACCESS_KEY_ID, SECRET_ACCESS_KEY, CognitoEmulator
from tests.proxy.users_export.export_support import Sleeper, client, export, lines

USERS = 130  # three ListUsers pages of at most 60


def _create_users(emulator: CognitoEmulator, pool: str, count: int) -> set[str]:
    """`count` users, every tenth disabled; the emails of the enabled ones."""
    cognito = emulator.client()
    enabled: set[str] = set()
    for i in range(count):
        email = f"user{i}@example.com"
        attributes = [
            {"Name": "email", "Value": email},
            {"Name": "email_verified", "Value": "true" if i % 2 else "false"},
            {"Name": "given_name", "Value": f"Given{i}"},
            {"Name": "family_name", "Value": f"Family{i}"},
        ]
        cognito.admin_create_user(
            UserPoolId=pool,
            Username=f"user{i}",
            UserAttributes=attributes,
            MessageAction="SUPPRESS",
        )
        if i % 10 == 0:
            cognito.admin_disable_user(UserPoolId=pool, Username=f"user{i}")
        else:
            enabled.add(email)
    return enabled


def _subs(emulator: CognitoEmulator, pool: str) -> dict[str, str]:
    """Each user's `sub`, as the pool's own API reports it (email -> sub)."""
    cognito = emulator.client()
    subs: dict[str, str] = {}
    for page in cognito.get_paginator("list_users").paginate(UserPoolId=pool):
        for user in page["Users"]:
            values = {item["Name"]: item["Value"] for item in user["Attributes"]}
            subs[values["email"]] = values["sub"]
    return subs


def test_every_enabled_user_once_across_pagination_tokens(
    cognito_emulator: CognitoEmulator, tmp_path: Path
) -> None:
    pool = cognito_emulator.new_pool("paging")
    enabled = _create_users(cognito_emulator, pool, USERS)
    credentials = AwsCredentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY)
    sleeper = Sleeper()
    source = CognitoUsers(
        pool,
        cognito_emulator.url,
        client(sleeper, auth=SigV4Auth(credentials, region_of(pool)), throttled=is_throttled),
    )
    summary = export(source, tmp_path / "users.ndjson")
    exported = lines(tmp_path / "users.ndjson")
    emails = [line["email"] for line in exported]
    assert len(emails) == len(set(emails)) == len(enabled)
    assert set(emails) == enabled
    assert summary.pages == 3 and summary.skipped == {"disabled at the source": USERS // 10}
    assert sleeper.waits == []
    subs = _subs(cognito_emulator, pool)
    by_email: dict[str, dict[str, Any]] = {line["email"]: line for line in exported}
    assert by_email["user3@example.com"] == {
        "email": "user3@example.com",
        "email_verified": True,
        "external_id": subs["user3@example.com"],
        "given_name": "Given3",
        "family_name": "Family3",
    }
    assert by_email["user4@example.com"]["email_verified"] is False


def test_the_command_exports_a_moto_pool_without_echoing_the_keys(
    cognito_emulator: CognitoEmulator, tmp_path: Path
) -> None:
    pool = cognito_emulator.new_pool("command")
    enabled = _create_users(cognito_emulator, pool, 70)
    out = tmp_path / "cognito.ndjson"
    arguments = [
        "users",
        "export",
        "--source",
        "cognito",
        "--user-pool-id",
        pool,
        "--aws-credentials-file",
        str(cognito_emulator.credentials_file(tmp_path)),
        "--url",
        cognito_emulator.url,
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(app, [*arguments, "--json"])
    assert result.exit_code == 0, result.output
    assert {line["email"] for line in lines(out)} == enabled
    report = json.loads(result.output)
    assert report["users"] == len(enabled)
    assert SECRET_ACCESS_KEY not in result.output and SECRET_ACCESS_KEY not in out.read_text()
    # A second run resumes a finished export: nothing new, nothing twice.
    again = CliRunner().invoke(app, arguments)
    assert again.exit_code == 0, again.output
    assert len(lines(out)) == len(enabled)
