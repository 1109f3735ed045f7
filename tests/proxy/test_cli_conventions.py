"""What every `authswitch` command shares: the config from AUTHSWITCH_CONFIG, one exit-code
table (documented in README.md), one error line format."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from proxy.cli.exit_codes import ExitCode
from proxy.cli.main import app
from tests.conftest import free_port, write_proxy_files

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_proxy_files(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9")


@pytest.mark.parametrize(
    ("command", "expected_code", "expected_out"),
    [
        (["flags", "status"], ExitCode.OK, "0 of 6 connections go to the new provider"),
        (["connections", "check"], ExitCode.OK, "6 connections: "),
        (["broker", "test", "--identifier", "a@example.com"], ExitCode.USAGE, "broker.verifier"),
        (["users", "import", "users.ndjson"], ExitCode.USAGE, "broker"),
    ],
    ids=["flags", "connections", "broker", "users"],
)
def test_every_command_that_reads_the_config_takes_it_from_authswitch_config(
    config: Path, command: list[str], expected_code: ExitCode, expected_out: str
) -> None:
    (config.parent / "users.ndjson").write_text("")
    result = CliRunner().invoke(
        app, command, env={"AUTHSWITCH_CONFIG": str(config), "AUTHSWITCH_ACTOR": "ops"}
    )

    assert result.exit_code == expected_code, result.output
    assert "Missing option" not in result.output
    assert expected_out in result.output


def test_serve_takes_its_config_from_authswitch_config(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    result = CliRunner().invoke(app, ["serve"], env={"AUTHSWITCH_CONFIG": str(missing)})

    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.startswith("authswitch: ") and str(missing) in result.stderr


def test_each_exit_code_has_one_meaning_and_the_readme_documents_them_all() -> None:
    assert len({int(code) for code in ExitCode}) == len(ExitCode.__members__), "no aliases"
    section = (ROOT / "README.md").read_text().split("### Exit codes", 1)[1].split("\n#", 1)[0]
    documented = {
        name: int(code) for code, name in re.findall(r"^\| (\d+) \| `([A-Z_]+)` \|", section, re.M)
    }
    assert documented == {code.name: int(code) for code in ExitCode}


def test_connections_push_with_redis_down_exits_backend_unavailable(tmp_path: Path) -> None:
    config = write_proxy_files(
        tmp_path,
        "http://127.0.0.1:9",
        "http://127.0.0.1:9",
        connection_map_redis={"url": f"redis://127.0.0.1:{free_port()}/11"},
    )
    result = CliRunner().invoke(
        app, ["connections", "push", "--config", str(config), "--reason", "r", "--actor", "ops"]
    )

    assert result.exit_code == ExitCode.BACKEND_UNAVAILABLE, result.output
    assert result.stderr.startswith("authswitch: ") and "nothing pushed" in result.stderr
