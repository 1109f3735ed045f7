"""The pre-pass: every line is checked before anything is imported, problems name the line and
the field, and a secret value is never shown."""

from __future__ import annotations

import json
from pathlib import Path

from tests.proxy.users_import.import_support import (
    CountingScim,
    adds_up,
    run_import,
    user_line,
    write_config,
    write_ndjson,
)


def bad_file(directory: Path) -> Path:
    return write_ndjson(
        directory / "users.ndjson",
        [
            user_line(1),  # line 1: good
            '{"email": "user2@example.com", "password": "SEEKRIT-unterminated',  # 2: not JSON
            '["user3@example.com"]',  # 3: not an object
            {"given_name": "No", "password": "SEEKRIT-pw-4"},  # 4: email missing
            user_line(5, email="not-an-email"),  # 5: bad email
            user_line(6, email="USER00001@Example.COM"),  # 6: duplicate of line 1, case-folded
            user_line(7, nickname="x"),  # 7: unknown field
            user_line(
                8, password=None, password_hash="SEEKRIT-hash", password_hash_algorithm="bcrypt"
            ),
            user_line(9, password=12345),  # 9: wrong type
            "",  # a blank line: ignored, not counted
            user_line(10),  # line 11: good
        ],
    )


def test_every_bad_line_is_named_and_nothing_is_imported(
    tmp_path: Path, scim: CountingScim
) -> None:
    file = bad_file(tmp_path)
    result, report = run_import(file, write_config(tmp_path, scim))

    assert result.exit_code == 1
    expected = [
        "line 2: (line): not valid JSON",
        "line 3: (line): a JSON array, not an object",
        "line 4: email: required",
        "line 5: email: not an RFC 5322 address",
        "line 6: email: duplicate of line 1 (case-folded)",
        "line 7: nickname: unknown field",
        "line 8: password_hash: this target can't import password hashes",
        "line 9: password: ",
    ]
    for text in expected:
        assert text in result.output, text
    assert "9 invalid line(s)" not in result.output
    assert "8 invalid line(s)" in result.output and "nothing imported" in result.output
    assert "SEEKRIT" not in result.output
    assert scim.users() == []
    assert scim.requests[("POST", "/v2/Bulk")] == 0
    assert not file.with_name(file.name + ".checkpoint").exists()
    assert report is not None
    assert "SEEKRIT" not in json.dumps(report)
    assert (report["source"], report["invalid"], report["imported"]) == (10, 8, 0)
    assert report["invalid_lines"] == [2, 3, 4, 5, 6, 7, 8, 9]
    assert report["invalid_reasons"]["email: duplicate of an earlier line (case-folded)"] == 1
    # The two valid lines were never attempted: counted so, and the report adds up.
    assert (report["not_attempted"], report["adds_up"]) == (2, True)
    assert adds_up(report)
    assert "nothing imported" in report["stopped"]


def test_skip_invalid_imports_the_valid_lines_and_still_fails(
    tmp_path: Path, scim: CountingScim
) -> None:
    file = bad_file(tmp_path)
    result, report = run_import(file, write_config(tmp_path, scim), "--skip-invalid")

    assert result.exit_code == 1
    assert sorted(user["userName"] for user in scim.users()) == [
        "user00001@example.com",
        "user00010@example.com",
    ]
    assert report is not None
    assert (report["imported"], report["invalid"], report["failed"]) == (2, 8, 0)
    assert adds_up(report)
    assert "SEEKRIT" not in result.output


def test_a_username_clashing_with_another_lines_email_is_a_duplicate(
    tmp_path: Path, scim: CountingScim
) -> None:
    file = write_ndjson(
        tmp_path / "users.ndjson",
        [user_line(1), user_line(2, username="User00001@example.com"), user_line(3, username="c")],
    )
    result, _ = run_import(file, write_config(tmp_path, scim))

    assert result.exit_code == 1
    assert "line 2: username: duplicate of line 1 (case-folded)" in result.output
    assert scim.users() == []


def test_a_file_with_the_workos_field_names_imports_as_it_is(
    tmp_path: Path, scim: CountingScim
) -> None:
    """A line as the WorkOS migration guide writes it: first_name, last_name, email_verified."""
    workos_line = {
        "email": "ada@example.com",
        "email_verified": True,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "password": "SEEKRIT-ada",
    }
    file = write_ndjson(tmp_path / "users.ndjson", [workos_line, user_line(2)])
    result, report = run_import(file, write_config(tmp_path, scim))

    assert result.exit_code == 0, result.output
    assert report is not None and report["imported"] == 2 and adds_up(report)
    ada = next(u for u in scim.users() if u["userName"] == "ada@example.com")
    assert ada["name"] == {"givenName": "Ada", "familyName": "Lovelace"}


def test_a_field_given_under_both_names_is_refused(tmp_path: Path, scim: CountingScim) -> None:
    file = write_ndjson(
        tmp_path / "users.ndjson",
        [user_line(1), user_line(2, first_name="Other"), user_line(3, last_name="Other")],
    )
    result, report = run_import(file, write_config(tmp_path, scim))

    assert result.exit_code == 1
    assert "line 2: (line): Value error, give first_name or given_name, not both" in result.output
    assert "line 3: (line): Value error, give last_name or family_name, not both" in result.output
    assert report is not None and report["invalid_lines"] == [2, 3] and adds_up(report)
    assert scim.users() == []


def test_a_non_ascii_local_part_is_not_an_rfc_5322_address(
    tmp_path: Path, scim: CountingScim
) -> None:
    """RFC 5322 has no non-ASCII local part (SMTPUTF8 is RFC 6531): refused as promised."""
    file = write_ndjson(
        tmp_path / "users.ndjson",
        [user_line(1, email="jos\u00e9.garc\u00eda@example.com"), user_line(2)],
    )
    result, report = run_import(file, write_config(tmp_path, scim))

    assert result.exit_code == 1
    assert "line 1: email: not an RFC 5322 address" in result.output
    assert report is not None and report["invalid_lines"] == [1] and adds_up(report)
