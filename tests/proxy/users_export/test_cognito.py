"""Cognito ListUsers export against a hand-written server, for what moto's Cognito does not do
(test_cognito_moto.py covers paging, attributes and disabled users against moto): it checks
each request's SigV4 signature (a wrong secret key is InvalidSignatureException) and answers
TooManyRequestsException (HTTP 400) when asked, which the export waits out."""

from __future__ import annotations

from pathlib import Path

import pytest

from foundation.config_error import ConfigError
from proxy.users_export import ExportFailed
from proxy.users_export.cognito import (
    CognitoUsers,
    SigV4Auth,
    is_throttled,
    read_aws_credentials,
    region_of,
)
from proxy.users_export.sigv4 import AwsCredentials
from tests.proxy.users_export.export_support import Sleeper, client, export, lines
from tests.proxy.users_export.vendor_servers import FakeCognito, cognito_user

POOL = "eu-west-1_aBcDeFgHi"
CREDENTIALS = AwsCredentials("AKIAEXAMPLEREADONLY", "SEEKRIT/secret/access/key")


def _source(server: FakeCognito, sleeper: Sleeper, credentials: AwsCredentials) -> CognitoUsers:
    auth = SigV4Auth(credentials, region_of(POOL))
    return CognitoUsers(POOL, server.url, client(sleeper, auth=auth, throttled=is_throttled))


def test_every_user_once_through_pagination_tokens_and_throttling(tmp_path: Path) -> None:
    users = [cognito_user(i, verified=i % 3 != 0) for i in range(130)]
    users[5]["Enabled"] = False
    server = FakeCognito(users, CREDENTIALS, POOL)
    server.throttle = {2}
    sleeper = Sleeper()
    try:
        summary = export(_source(server, sleeper, CREDENTIALS), tmp_path / "users.ndjson")
    finally:
        server.stop()
    exported = lines(tmp_path / "users.ndjson")
    assert [line["email"] for line in exported] == [
        f"jane{i}@example.com" for i in range(130) if i != 5
    ]
    assert summary.pages == 3 and summary.skipped == {"disabled at the source": 1}
    assert len(sleeper.waits) == 1  # TooManyRequestsException is waited out, with back-off
    assert exported[0] == {
        "email": "jane0@example.com",
        "email_verified": False,
        "external_id": "7f5bb1a0-0000-4000-8000-000000000000",
        "given_name": "Jane0",
        "family_name": "Doe0",
    }
    assert exported[1]["email_verified"] is True


def test_a_wrong_secret_key_is_named_without_the_key(tmp_path: Path) -> None:
    server = FakeCognito([cognito_user(1)], CREDENTIALS, POOL)
    wrong = AwsCredentials(CREDENTIALS.access_key_id, "SEEKRIT-not-the-key")
    try:
        with pytest.raises(ExportFailed) as failed:
            export(_source(server, Sleeper(), wrong), tmp_path / "users.ndjson")
    finally:
        server.stop()
    assert "InvalidSignatureException" in str(failed.value)
    assert "secret key does not match" in str(failed.value)
    assert "SEEKRIT" not in str(failed.value) and "SEEKRIT" not in repr(wrong)


def test_aws_credentials_file_profiles(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text(
        "[default]\naws_access_key_id = AKIA1\naws_secret_access_key = s1\n"
        "[migration]\naws_access_key_id = AKIA2\naws_secret_access_key = s2\n"
        "aws_session_token = t2\n"
    )
    assert read_aws_credentials(path, "default") == AwsCredentials("AKIA1", "s1")
    assert read_aws_credentials(path, "migration") == AwsCredentials("AKIA2", "s2", "t2")
    with pytest.raises(ConfigError, match=r"no \[other\] profile"):
        read_aws_credentials(path, "other")
    path.write_text("[default]\naws_access_key_id = AKIA1\n")
    with pytest.raises(ConfigError, match="no aws_secret_access_key"):
        read_aws_credentials(path, "default")


def test_a_pool_id_names_its_region() -> None:
    assert region_of(POOL) == "eu-west-1"
    with pytest.raises(ConfigError, match="not a pool id"):
        region_of("nopool")
