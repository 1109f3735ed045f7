"""Auth0 Management API export: paged users (first 1000), the users-export job, hashes from
the support export, 429 with x-ratelimit-reset."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.users_export import ExportFailed
from proxy.users_export.auth0 import Auth0Users, auth0_line
from proxy.users_import.hash_passing import passed_hash
from tests.proxy.users_export.export_support import NOW, Sleeper, client, export, lines
from tests.proxy.users_export.vendor_servers import FakeAuth0, auth0_user, fixture

TOKEN = "eyJSEEKRIT.management.token"


def _source(server: FakeAuth0, sleeper: Sleeper, **options: object) -> Auth0Users:
    return Auth0Users(server.url, TOKEN, client(sleeper), sleep=sleeper, **options)  # type: ignore[arg-type]


def test_paged_export_in_creation_order_through_a_rate_limit(tmp_path: Path) -> None:
    users = [auth0_user(i) for i in range(250)]
    users[7]["blocked"] = True
    server = FakeAuth0(users, TOKEN)
    server.throttle = {2}
    server.clock = lambda: NOW
    server.reset_after_seconds = 12
    sleeper = Sleeper()
    try:
        summary = export(_source(server, sleeper), tmp_path / "users.ndjson")
    finally:
        server.stop()
    exported = lines(tmp_path / "users.ndjson")
    expected = [f"auth0|{i:024x}" for i in range(250) if i != 7]
    assert [line["external_id"] for line in exported] == expected
    assert summary.skipped == {"blocked at the source": 1}
    assert sleeper.waits == [13.0]
    assert exported[0] == {
        "email": "john0@example.com",
        "email_verified": True,
        "username": "john0",
        "external_id": "auth0|000000000000000000000000",
        "given_name": "John0",
        "family_name": "Doe0",
    }
    assert exported[1]["email_verified"] is False


def test_more_than_1000_users_by_page_is_refused_with_the_way_out(tmp_path: Path) -> None:
    server = FakeAuth0([auth0_user(i) for i in range(1001)], TOKEN)
    try:
        with pytest.raises(ExportFailed, match="--export-job"):
            export(_source(server, Sleeper()), tmp_path / "users.ndjson")
    finally:
        server.stop()


def test_export_job_polls_then_downloads_without_the_token(tmp_path: Path) -> None:
    server = FakeAuth0([auth0_user(i) for i in range(1500)], TOKEN)
    sleeper = Sleeper()
    try:
        source = _source(server, sleeper, export_job=True, poll_seconds=5.0)
        summary = export(source, tmp_path / "users.ndjson")
    finally:
        server.stop()
    exported = lines(tmp_path / "users.ndjson")
    assert {line["external_id"] for line in exported} == {f"auth0|{i:024x}" for i in range(1500)}
    assert len(exported) == 1500 and summary.users == 1500
    assert server.job_bodies[0]["format"] == "json"
    assert sleeper.waits == [5.0, 5.0]  # two polls found it processing
    download = [headers for _, path, headers in server.requests if path.startswith("/exports/")]
    assert download and all("authorization" not in headers for headers in download)


def test_a_resumed_job_export_polls_the_same_job(tmp_path: Path) -> None:
    server = FakeAuth0([auth0_user(i) for i in range(20)], TOKEN)
    out = tmp_path / "users.ndjson"
    try:
        source = _source(server, Sleeper(), export_job=True)
        import asyncio

        from proxy.users_export import ExportState

        state = ExportState.open(out, source.identity)
        first = asyncio.run(source.page(None))  # the job is created; then the run is killed
        state.append(first.lines, first.skipped, first.next_cursor)
        export(_source(server, Sleeper(), export_job=True), out)
    finally:
        server.stop()
    assert len(server.jobs) == 1
    assert len(lines(out)) == 20


def test_the_support_hash_export_keeps_the_bcrypt_hash() -> None:
    line = auth0_line(fixture("auth0_hash_export_line.json"))
    assert isinstance(line, dict)
    assert line["password_hash"].startswith("$2b$10$Z6hUTEEeoJXN5")
    assert line["password_hash_type"] == "bcrypt"
    assert line["external_id"] == "60425dc43519d90068f82973"
    # ... in a form the hash-taking targets accept.
    assert passed_hash("workos", line["password_hash"], "bcrypt")[1] == "bcrypt"


def test_a_user_without_email_is_skipped_with_the_reason() -> None:
    assert auth0_line({"user_id": "sms|1", "phone_number": "+15555550100"}) == "no email"
    assert auth0_line("not an object") == "not an Auth0 user object"
