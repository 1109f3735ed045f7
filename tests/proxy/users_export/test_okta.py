"""Okta Users API export: Link pagination, SSWS token, 429 with X-Rate-Limit-Reset."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.users_export import ExportFailed
from proxy.users_export.okta import OktaUsers
from tests.proxy.users_export.export_support import NOW, Sleeper, client, export, lines
from tests.proxy.users_export.vendor_servers import FakeOkta, okta_user

TOKEN = "00SEEKRIT-okta-api-token"


@pytest.fixture
def okta() -> Iterator[FakeOkta]:
    users = [okta_user(i) for i in range(450)]
    users.append(okta_user(450, status="SUSPENDED"))
    server = FakeOkta(users, TOKEN)
    yield server
    server.stop()


def _source(okta: FakeOkta, sleeper: Sleeper, token: str = TOKEN) -> OktaUsers:
    return OktaUsers(okta.url, client(sleeper, headers={"Authorization": f"SSWS {token}"}))


def test_every_user_once_across_link_pages_and_a_rate_limit(okta: FakeOkta, tmp_path: Path) -> None:
    okta.throttle = {2}
    okta.clock = lambda: NOW
    okta.reset_after_seconds = 30
    sleeper = Sleeper()
    summary = export(_source(okta, sleeper), tmp_path / "users.ndjson")
    exported = lines(tmp_path / "users.ndjson")
    assert [line["external_id"] for line in exported] == [f"00u{i:017d}" for i in range(450)]
    assert summary.pages == 3 and summary.users == 450
    assert summary.skipped == {"suspended at the source": 1}
    # The reset time Okta sent, plus a second: not a guess.
    assert sleeper.waits == [31.0]
    first = exported[0]
    assert first == {
        "email": "isaac0@example.com",
        "external_id": "00u00000000000000000",
        "given_name": "Isaac0",
        "family_name": "Brock0",
    }


def test_a_login_that_is_not_the_email_becomes_the_username(tmp_path: Path) -> None:
    user = okta_user(1)
    user["profile"]["login"] = "isaac.b"
    server = FakeOkta([user], TOKEN)
    try:
        export(_source(server, Sleeper()), tmp_path / "users.ndjson")
    finally:
        server.stop()
    assert lines(tmp_path / "users.ndjson")[0]["username"] == "isaac.b"


def test_a_refused_token_is_a_clear_error_without_the_token(okta: FakeOkta, tmp_path: Path) -> None:
    with pytest.raises(ExportFailed) as failed:
        export(_source(okta, Sleeper(), token="00SEEKRIT-wrong"), tmp_path / "users.ndjson")
    assert "HTTP 401" in str(failed.value) and "okta.users.read" in str(failed.value)
    assert "SEEKRIT" not in str(failed.value)


def test_a_next_link_to_another_host_is_refused(tmp_path: Path) -> None:
    server = FakeOkta([okta_user(i) for i in range(3)], TOKEN)
    server.url = "http://127.0.0.2:1"  # its Link headers now name another origin
    try:
        source = OktaUsers(server.server.url, client(Sleeper(), headers={"Authorization": "x"}))
        source.client.client.headers["Authorization"] = f"SSWS {TOKEN}"
        source.page_size = 2
        with pytest.raises(ExportFailed, match="another origin"):
            export(source, tmp_path / "users.ndjson")
    finally:
        server.stop()
