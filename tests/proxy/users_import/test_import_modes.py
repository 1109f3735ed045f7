"""Importing a few hundred users into a real SCIM server, then the --on-existing modes."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from proxy.cli.main import app
from tests.conftest import free_port, write_proxy_files
from tests.proxy.users_import.import_support import (
    CountingScim,
    adds_up,
    run_import,
    user_line,
    write_config,
    write_ndjson,
)

USERS = 300


def by_user_name(scim: CountingScim) -> dict[str, dict[str, object]]:
    users = scim.users()
    counts = Counter(user["userName"] for user in users)
    assert [name for name, n in counts.items() if n > 1] == []
    return {str(user["userName"]): user for user in users}


@pytest.mark.parametrize("transport", ["--bulk", "--no-bulk"])
def test_import_creates_every_user_once_then_ignore_skips_them(
    tmp_path: Path, scim: CountingScim, transport: str
) -> None:
    lines = [user_line(i) for i in range(USERS)]
    lines[7]["email"] = "user00007@EXAMPLE.com"  # sent as normalised: the domain in lower case
    file = write_ndjson(tmp_path / "users.ndjson", lines)
    config = write_config(tmp_path, scim)
    options = (transport, "--batch-size", "40", "--parallel", "4")

    result, report = run_import(file, config, *options)

    assert result.exit_code == 0, result.output
    users = by_user_name(scim)
    assert len(users) == USERS
    alice = users["user00007@example.com"]
    assert alice["externalId"] == "legacy-7"
    assert alice["name"] == {"givenName": "Given7", "familyName": "Family7"}
    assert alice["emails"] == [{"value": "user00007@example.com", "primary": True}]
    assert alice["active"] is True
    assert "password" not in alice  # never returned, but stored:
    assert scim.stored_password("user00007@example.com") == "SEEKRIT-pw-7"
    if transport == "--bulk":
        assert scim.requests[("POST", "/v2/Bulk")] == 8  # ceil(300 / 40)
        assert scim.requests[("POST", "/v2/Users")] == 0
    else:
        assert scim.requests[("POST", "/v2/Users")] == USERS
    assert report is not None and adds_up(report)
    assert (report["created"], report["skipped_already_present"]) == (USERS, 0)
    assert not file.with_name(file.name + ".checkpoint").exists()  # done: nothing to resume

    again, report = run_import(file, config, *options, "--on-existing", "ignore")

    assert again.exit_code == 0, again.output
    assert len(by_user_name(scim)) == USERS
    assert report is not None and adds_up(report)
    assert (report["created"], report["skipped_already_present"]) == (0, USERS)
    assert "SEEKRIT" not in result.output + again.output


def test_fail_stops_at_the_first_existing_user(tmp_path: Path, scim: CountingScim) -> None:
    config = write_config(tmp_path, scim)
    early = write_ndjson(tmp_path / "early.ndjson", [user_line(50)])
    assert run_import(early, config)[0].exit_code == 0
    file = write_ndjson(tmp_path / "users.ndjson", [user_line(i) for i in range(1, 101)])

    result, report = run_import(
        file, config, "--on-existing", "fail", "--batch-size", "20", "--parallel", "1"
    )

    assert result.exit_code == 1
    assert "at line 50: the user already exists at the target (--on-existing fail)" in (
        result.output
    )
    # Batches 1-2 (lines 1-40) went in; the batch with line 50 and everything after did not.
    names = set(by_user_name(scim))
    assert names == {f"user{i:05d}@example.com" for i in range(1, 41)} | {"user00050@example.com"}
    assert report is not None and adds_up(report)
    assert (report["created"], report["failed"], report["not_attempted"]) == (40, 1, 59)
    assert report["failed_lines"] == [50]


def test_update_replaces_the_attributes_of_existing_users(
    tmp_path: Path, scim: CountingScim
) -> None:
    config = write_config(tmp_path, scim)
    first = write_ndjson(tmp_path / "first.ndjson", [user_line(i) for i in range(USERS)])
    assert run_import(first, config, "--batch-size", "50")[0].exit_code == 0
    renamed = [
        user_line(i, family_name=f"Renamed{i}", password=f"SEEKRIT-new-{i}") for i in range(USERS)
    ]
    changed = write_ndjson(tmp_path / "changed.ndjson", renamed)

    result, report = run_import(changed, config, "--on-existing", "update", "--batch-size", "50")

    assert result.exit_code == 0, result.output
    users = by_user_name(scim)
    assert len(users) == USERS
    assert users["user00123@example.com"]["name"] == {
        "givenName": "Given123",
        "familyName": "Renamed123",
    }
    assert scim.stored_password("user00123@example.com") == "SEEKRIT-new-123"
    assert report is not None and adds_up(report)
    assert (report["created"], report["updated"], report["imported"]) == (0, USERS, USERS)


def test_the_bearer_token_is_sent_and_never_shown(tmp_path: Path) -> None:
    scim = CountingScim(token="secret-token-SEEKRIT")
    try:
        file = write_ndjson(tmp_path / "users.ndjson", [user_line(i) for i in range(5)])
        config = write_config(tmp_path, scim)
        (tmp_path / "good-token").write_text("secret-token-SEEKRIT\n")
        (tmp_path / "wrong-token").write_text("secret-token-wrong\n")

        refused, _ = run_import(file, config, "--token-file", str(tmp_path / "wrong-token"))
        result, report = run_import(file, config, "--token-file", str(tmp_path / "good-token"))

        assert refused.exit_code == 2
        assert "SCIM answered 401: check the bearer token" in refused.output
        assert result.exit_code == 0, result.output
        assert len(scim.users()) == 5
        assert report is not None and report["created"] == 5
        shown = refused.output + result.output + json.dumps(report)
        assert "secret-token" not in shown and "SEEKRIT" not in shown
    finally:
        scim.server.stop()


def test_a_target_that_does_not_answer_stops_the_import_at_start(tmp_path: Path) -> None:
    file = write_ndjson(tmp_path / "users.ndjson", [user_line(i) for i in range(3)])
    nowhere = f"http://127.0.0.1:{free_port()}/v2"

    result = CliRunner().invoke(app, ["users", "import", str(file), "--scim-url", nowhere])

    assert result.exit_code == 2
    assert "the import target can't be used: SCIM GET /ServiceProviderConfig failed" in (
        result.output
    )
    assert not file.with_name(file.name + ".checkpoint").exists()


def test_scim_url_overrides_a_provisioner_that_is_not_scim(
    tmp_path: Path, scim: CountingScim
) -> None:
    """The WorkOS URL and key belong to another API: --scim-url sends neither to SCIM."""
    (tmp_path / "workos-key").write_text("sk_test_not_for_scim")
    legacy = "http://127.0.0.1:9"
    provisioner = {"type": "workos", "url": "http://127.0.0.1:9", "api_key_file": "workos-key"}
    config = write_proxy_files(tmp_path, legacy, legacy, broker={"provisioner": provisioner})
    file = write_ndjson(tmp_path / "users.ndjson", [user_line(i) for i in range(3)])

    result, report = run_import(file, config, "--scim-url", scim.base_url)

    assert result.exit_code == 0, result.output
    assert len(scim.users()) == 3
    assert report is not None and report["transport"] in ("bulk", "single")
    assert "sk_test_not_for_scim" not in result.output
