"""The documented entry points stay true: examples load, CI runs the README's test command."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from connection_map import load_connection_map
from flags import load_rollout_state
from proxy.config import load_config

ROOT = Path(__file__).resolve().parent.parent


def _readme_command(section: str) -> str:
    text = (ROOT / "README.md").read_text()
    block = text.split(f"## {section}", 1)[1]
    found = re.search(r"```sh\n(.+?)\n```", block, re.S)
    assert found, f"no command under '{section}'"
    return found.group(1).strip()


def test_ci_runs_exactly_the_readme_test_command() -> None:
    command = _readme_command("Run the tests")
    assert command.endswith("pytest")
    # Installed from the lock, so CI tests the versions the image ships, today and next month.
    assert "-c constraints.txt" in command
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert command in ci_lines


def test_readme_demo_command_installs_and_runs_the_demo() -> None:
    command = _readme_command("Try it")
    assert "pip install -c constraints.txt ." in command and command.endswith("authswitch demo")


def test_examples_are_valid_and_consistent() -> None:
    config = load_config(ROOT / "examples" / "authswitch.yaml")
    connections = load_connection_map(config.connection_map)
    state = load_rollout_state(config.flags.file)
    assert len(connections) >= 3
    for connection_id in (*state.canary, *state.overrides):
        assert connections.get(connection_id) is not None, connection_id
    # Every default the example spells out is the real default.
    assert config.limits.max_body_bytes == 256 * 1024


def test_the_cli_loads_the_broker_and_import_clients_only_for_their_commands() -> None:
    """`authswitch flags ...` and `connections ...` shouldn't wait ~1.5 s for SCIM, WorkOS and
    Kratos clients, and email validation they never use."""
    probe = (
        "import sys, proxy.cli.main; "
        "print(sorted(m for m in ('scim2_client', 'scim2_models', 'email_validator', "
        "'proxy.broker.service', 'proxy.users_import', 'proxy.users_export') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"
