"""A serving process imports what its configured features use, and nothing of the tools.

Every worker of `authswitch serve` imports the command line (its spawned workers re-import the
console script) and builds the app; modules it loads stay in its memory for its whole life
(issue #14: RSS per worker). Each check runs in a fresh interpreter, since this test session
has imported everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_proxy_files

# Loaded by the tools, the password broker, outcomes, shadow checks and Redis backends only.
NOT_FOR_A_FILE_BACKED_WORKER = (
    "redis",
    "httpx",
    "cryptography",
    "onelogin",
    "xmlsec",
    "scim2_client",
    "scim2_models",
    "limits",
    "authlib",
    "starlette",
    "opentelemetry",
    "rich",
    "proxy.broker.service",
    "proxy.outcomes.service",
    "proxy.shadow.sampler",
    "proxy.console.app",
    "proxy.flow_store",
    "proxy.cli.flags",
    "proxy.cli.connections",
    "proxy.cli.broker",
    "proxy.cli.users",
    "proxy.cli.rollout",
    "connection_map.metadata_fetch",
    "connection_map.check_report",
    "flags.redis.provider",
)

_BUILD_THE_WORKERS_APP = """
import json, os, sys
import proxy.cli.main  # what a spawned worker re-imports as its main module
from proxy.ops.server import create_app_from_env
create_app_from_env()
print(json.dumps(sorted(sys.modules)))
"""


def _modules_after(code: str, env: dict[str, str] | None = None) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def _loaded(modules: set[str], package: str) -> bool:
    return any(name == package or name.startswith(package + ".") for name in modules)


def _worker_modules(tmp_path: Path, **config: Any) -> set[str]:
    path = write_proxy_files(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9", **config)
    env = {"AUTHSWITCH_CONFIG": str(path), "PATH": "/usr/bin:/bin"}
    return _modules_after(_BUILD_THE_WORKERS_APP, env)


def test_a_worker_with_the_map_and_flags_in_files_loads_no_tool_or_optional_feature(
    tmp_path: Path,
) -> None:
    modules = _worker_modules(tmp_path)

    assert "proxy.app" in modules and "lxml.etree" in modules  # it did build the app
    assert [name for name in NOT_FOR_A_FILE_BACKED_WORKER if _loaded(modules, name)] == []


def test_a_worker_that_follows_redis_loads_the_redis_side(tmp_path: Path) -> None:
    modules = _worker_modules(
        tmp_path, flags={"backend": "redis", "redis": {"url": "redis://127.0.0.1:6379/13"}}
    )

    assert _loaded(modules, "flags.redis.provider") and _loaded(modules, "redis")
    assert not _loaded(modules, "proxy.broker.service")


@pytest.mark.parametrize(
    ("package", "first_module", "not_loaded"),
    [
        ("connection_map", "connection_map.routes", "connection_map.metadata_fetch"),
        ("flags", "flags.settings", "flags.redis.provider"),
    ],
)
def test_a_package_module_does_not_load_its_siblings_but_every_name_still_resolves(
    package: str, first_module: str, not_loaded: str
) -> None:
    code = (
        f"import json, sys, {first_module}\n"
        "print(json.dumps(sorted(sys.modules)))\n"
        f"import {package}\n"
        f"missing = [n for n in {package}.__all__ if getattr({package}, n, None) is None]\n"
        "assert missing == [], missing\n"
        f"assert set({package}.__all__) <= set(dir({package}))\n"
        "try:\n"
        f"    {package}.no_such_name\n"
        "except AttributeError:\n"
        "    pass\n"
        "else:\n"
        "    raise AssertionError('an unknown name resolved')\n"
    )

    assert not _loaded(_modules_after(code), not_loaded)


def test_the_command_line_loads_a_tool_group_only_when_named() -> None:
    code = (
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from proxy.cli.main import app\n"
        "result = CliRunner().invoke(app, ['serve', '--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "before = sorted(sys.modules)\n"
        "result = CliRunner().invoke(app, ['flags', '--help'])\n"
        "assert result.exit_code == 0 and 'kill' in result.output, result.output\n"
        "assert 'proxy.cli.flags' in sys.modules\n"
        "print(json.dumps(before))\n"
    )

    modules = _modules_after(code)

    assert not any(_loaded(modules, f"proxy.cli.{group}") for group in ("flags", "users"))


def test_the_root_help_lists_every_command_in_order() -> None:
    from typer.testing import CliRunner

    from proxy.cli.main import app

    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "120"})

    assert result.exit_code == 0, result.output
    listed = [
        line.split()[1]
        for line in result.output.splitlines()
        if line.startswith("│ ") and len(line.split()) > 2
    ]
    commands = ["serve", "demo", "config", "flags", "connections", "broker", "users", "rollout"]
    assert [name for name in listed if name in commands] == commands
