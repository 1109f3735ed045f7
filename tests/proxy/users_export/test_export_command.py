"""`authswitch users export` as users run it: export → `users import`, a kill mid-way and a
resume with exactly the source's users, resumption refused for another source, clear errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner, Result

from proxy.cli.main import app
from tests.proxy.users_export.export_support import lines
from tests.proxy.users_export.vendor_servers import FakeOkta, okta_user
from tests.proxy.users_import.import_support import (
    REPO,
    CountingScim,
    run_import,
    write_config,
)

TOKEN = "00SEEKRIT-okta-token"


def _export(out: Path, url: str, token_file: Path, *args: str) -> Result:
    return CliRunner().invoke(
        app,
        [
            "users",
            "export",
            "--source",
            "okta",
            "--url",
            url,
            "--token-file",
            str(token_file),
            "--out",
            str(out),
            *args,
        ],
    )


def _token_file(tmp_path: Path, token: str = TOKEN) -> Path:
    path = tmp_path / "okta-token"
    path.write_text(token + "\n")
    return path


def test_exported_users_import_as_they_are(tmp_path: Path, scim: CountingScim) -> None:
    server = FakeOkta([okta_user(i) for i in range(120)], TOKEN)
    out = tmp_path / "users.ndjson"
    try:
        result = _export(out, server.url, _token_file(tmp_path), "--page-size", "50")
    finally:
        server.stop()
    assert result.exit_code == 0, result.output
    assert "120 users in" in result.output and "3 pages" in result.output
    assert oct(out.stat().st_mode & 0o777) == "0o600"  # hashes may be in it
    imported, report = run_import(out, write_config(tmp_path, scim))
    assert imported.exit_code == 0, imported.output
    assert report is not None and report["imported"] == 120
    at_target = {user["externalId"]: user["userName"] for user in scim.users()}
    assert at_target == {f"00u{i:017d}": f"isaac{i}@example.com" for i in range(120)}


def test_killed_mid_way_then_resumed_every_user_exactly_once(tmp_path: Path) -> None:
    ids = {f"00u{i:017d}" for i in range(600)}
    server = FakeOkta([okta_user(i) for i in range(600)], TOKEN)
    server.hold_after = 12  # of 30 pages: the 13th is held, and the kill lands then
    out = tmp_path / "users.ndjson"
    token_file = _token_file(tmp_path)
    try:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "proxy",
                "users",
                "export",
                "--source",
                "okta",
                "--url",
                server.url,
                "--token-file",
                str(token_file),
                "--out",
                str(out),
                "--page-size",
                "20",
            ],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        cursor = out.with_name(out.name + ".cursor")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if cursor.exists() and json.loads(cursor.read_text())["users"] == 240:
                break
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        state = json.loads(cursor.read_text())
        assert state["users"] == 240 and state["done"] is False
        served_before = sum(server.served.values())
        server.released.set()
        result = _export(out, server.url, token_file, "--page-size", "20")
    finally:
        server.released.set()
        server.stop()
    assert result.exit_code == 0, result.output
    assert result.output.startswith("resumed: 600 users")
    exported = [line["external_id"] for line in lines(out)]
    assert len(exported) == len(ids) and set(exported) == ids
    # The resume went on from the cursor: the rest, and the held page once more at most.
    assert sum(server.served.values()) - served_before <= 600 - 240 + 20


def test_a_state_file_of_another_source_is_not_resumed(tmp_path: Path) -> None:
    server = FakeOkta([okta_user(i) for i in range(3)], TOKEN)
    out = tmp_path / "users.ndjson"
    try:
        assert _export(out, server.url, _token_file(tmp_path)).exit_code == 0
        other = _export(out, "http://127.0.0.1:9", _token_file(tmp_path))
        restarted = _export(out, server.url, _token_file(tmp_path), "--restart")
    finally:
        server.stop()
    assert other.exit_code == 2
    assert "is an export of okta " + server.url in other.output
    assert "--restart" in other.output
    assert restarted.exit_code == 0 and "3 users" in restarted.output


def test_a_file_that_is_not_an_export_is_not_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "users.ndjson"
    out.write_text('{"email": "keep@example.com"}\n')
    result = _export(out, "http://127.0.0.1:9", _token_file(tmp_path))
    assert result.exit_code == 2 and "not an export in progress" in result.output
    assert out.read_text() == '{"email": "keep@example.com"}\n'


def test_a_refused_token_exits_6_and_never_shows_it(tmp_path: Path) -> None:
    server = FakeOkta([okta_user(1)], TOKEN)
    try:
        result = _export(
            tmp_path / "users.ndjson", server.url, _token_file(tmp_path, "00SEEKRIT-bad"), "--json"
        )
    finally:
        server.stop()
    assert result.exit_code == 6
    assert json.loads(result.stdout)["error"] == "source_unavailable"
    assert "HTTP 401" in result.output and "SEEKRIT" not in result.output


def test_missing_options_are_named(tmp_path: Path) -> None:
    runner = CliRunner()
    out = str(tmp_path / "users.ndjson")
    cases = {
        ("--source", "okta"): "--source okta needs --url",
        ("--source", "auth0", "--url", "http://x"): "--source auth0 needs --token-file",
        ("--source", "cognito"): "--source cognito needs --user-pool-id",
        ("--source", "firebase-file"): "--source firebase-file needs --file",
    }
    for args, message in cases.items():
        result = runner.invoke(app, ["users", "export", *args, "--out", out])
        assert result.exit_code == 2 and message in result.output, result.output


def test_the_json_summary(tmp_path: Path) -> None:
    server = FakeOkta([okta_user(i) for i in range(5)], TOKEN)
    try:
        result = _export(tmp_path / "u.ndjson", server.url, _token_file(tmp_path), "--json")
    finally:
        server.stop()
    summary = json.loads(result.stdout)
    assert summary["users"] == 5 and summary["this_run"] == 5 and summary["resumed"] is False
    assert summary["rate_limit_waits"] == 0 and summary["skipped"] == {}


def test_each_source_through_the_command(tmp_path: Path) -> None:
    # Cognito through the command: test_cognito_moto.py, against moto's Cognito.
    from tests.proxy.users_export.vendor_servers import FIXTURES, FakeAuth0, auth0_user

    runner = CliRunner()
    auth0 = FakeAuth0([auth0_user(i) for i in range(30)], "SEEKRIT-mgmt")
    auth0_token = tmp_path / "auth0-token"
    auth0_token.write_text("SEEKRIT-mgmt\n")
    try:
        results = {
            "auth0": runner.invoke(
                app,
                [
                    "users",
                    "export",
                    "--source",
                    "auth0",
                    "--url",
                    auth0.url,
                    "--token-file",
                    str(auth0_token),
                    "--out",
                    str(tmp_path / "auth0.ndjson"),
                ],
            ),
            "firebase-file": runner.invoke(
                app,
                [
                    "users",
                    "export",
                    "--source",
                    "firebase-file",
                    "--file",
                    str(FIXTURES / "firebase_export.json"),
                    "--hash-config",
                    str(FIXTURES / "firebase_hash_config.txt"),
                    "--out",
                    str(tmp_path / "firebase-file.ndjson"),
                ],
            ),
        }
    finally:
        auth0.stop()
    counts = {"auth0": 30, "firebase-file": 2}
    for source, result in results.items():
        assert result.exit_code == 0, (source, result.output)
        assert len(lines(tmp_path / f"{source}.ndjson")) == counts[source]
        assert "SEEKRIT" not in result.output
    assert "skipped 1: disabled at the source" in results["firebase-file"].output


def test_an_unreadable_source_file_or_state_directory_is_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "users",
            "export",
            "--source",
            "firebase-file",
            "--file",
            str(tmp_path / "none.json"),
            "--out",
            str(tmp_path / "out.ndjson"),
        ],
    )
    assert result.exit_code == 2 and "none.json" in result.output
