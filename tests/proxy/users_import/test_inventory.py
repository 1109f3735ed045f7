"""`authswitch users inventory`: the preflight counts of a users file, as tables and JSON."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from proxy.cli.main import app
from tests.proxy.users_import.import_support import user_line, write_ndjson
from tests.proxy.users_import.test_hash_passing import PASSWORD, source_hashes


def inventory(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["users", "inventory", *args])
    return result.exit_code, result.output


def users_file(directory: Path) -> tuple[Path, list[str]]:
    hashes = source_hashes(PASSWORD)
    lines: list[dict[str, object] | str] = [
        user_line(1, state="active", groups=["admins", "staff"]),
        user_line(2, status="Suspended", groups=["staff"]),
        user_line(3, email="ops@Corp.example", blocked=True),
        user_line(4, email="x@corp.example", active=False, password=None),
        {  # WorkOS names, a hash
            "email": "ada@corp.example",
            "first_name": "Ada",
            "password_hash": hashes["bcrypt"][0],
            "password_hash_type": "bcrypt",
        },
        {"email": "eve@corp.example", "password_hash": hashes["pbkdf2"][0]},  # no type given
        {"email": "fed@idp.example", "identity_provider": "okta-acme", "nickname": "f"},
        "not json at all",
        "",
    ]
    secrets = [hashes["bcrypt"][0], hashes["pbkdf2"][0], "SEEKRIT"]
    return write_ndjson(directory / "users.ndjson", lines), secrets


def test_inventory_counts_what_a_migration_needs_to_know(tmp_path: Path) -> None:
    file, secrets = users_file(tmp_path)

    code, output = inventory(str(file), "--json", "--top", "2")

    assert code == 0, output
    report = json.loads(output)
    assert (report["users"], report["unreadable_lines"]) == (7, 1)
    assert report["unreadable_line_numbers"] == [8]
    assert report["states"] == {
        "(not given)": 3,
        "active": 1,
        "suspended": 1,
        "blocked": 1,
        "inactive": 1,
    }
    assert report["identity_types"] == {
        "password (clear text)": 3,
        "password (hash)": 2,
        "no password": 1,
        "federated": 1,
    }
    # Domains compare case-folded; only the top 2 are listed, the distinct count is complete.
    assert report["email_domains"] == {
        "distinct": 3,
        "top": {"corp.example": 4, "example.com": 2},
    }
    assert report["groups"] == {
        "users_in_a_group": 2,
        "distinct": 2,
        "top": {"staff": 2, "admins": 1},
    }
    coverage = report["attribute_coverage"]
    assert (coverage["email"], coverage["given_name"], coverage["password_hash"]) == (7, 5, 2)
    assert report["unknown_keys"] == {"nickname": 1}
    assert report["hash_schemes"] == {"bcrypt:cost=4": 1, "pbkdf2:sha512:i=210000": 1}
    # pbkdf2 passes to WorkOS and Kratos, not to Okta (bcrypt and salted SHA only)
    assert report["hashes_passable"] == {"workos": 2, "kratos": 2, "okta": 1}
    assert [s for s in secrets if s in output] == []


def test_the_table_shows_the_same_counts(tmp_path: Path) -> None:
    file, secrets = users_file(tmp_path)

    code, output = inventory(str(file))

    assert code == 0, output
    assert "users: 7   unreadable lines: 1" in output
    for text in ("identity type", "federated", "corp.example", "pbkdf2:sha512:i=210000", "staff"):
        assert text in output, text
    assert "unreadable lines: 8" in output
    assert [s for s in secrets if s in output] == []


def test_a_file_that_cannot_be_read_is_a_clear_error(tmp_path: Path) -> None:
    code, output = inventory(str(tmp_path / "missing.ndjson"))

    assert code == 2
    assert "missing.ndjson: cannot read: No such file or directory" in output
