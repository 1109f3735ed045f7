"""Configuration from the environment (AUTHSWITCH__...), and `authswitch config check`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from proxy.config import ConfigError, load_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    for name in ("authswitch.yaml", "connections.yaml", "flags.yaml"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    return tmp_path / "authswitch.yaml"


def test_environment_variables_win_over_the_file_and_are_typed(config_file: Path) -> None:
    environ = {
        "AUTHSWITCH__FLAGS__BACKEND": "redis",
        "AUTHSWITCH__FLAGS__REDIS__URL": "redis://redis.internal:6380/2",
        "AUTHSWITCH__FLAGS__REDIS__PUBSUB": "false",
        "AUTHSWITCH__FLAGS__REDIS__SENTINEL": "null",
        "AUTHSWITCH__LISTEN__PORT": "9090",
        "authswitch__routes__0__path": "/from/env",  # case does not matter
        "AUTHSWITCH_CONFIG": "not an override (single underscore)",
    }

    config = load_config(config_file, environ=environ)

    assert config.flags.backend == "redis"
    assert config.flags.redis.url == "redis://redis.internal:6380/2"
    assert config.flags.redis.pubsub is False
    assert config.listen.port == 9090
    assert config.routes[0].path == "/from/env"
    assert load_config(config_file, environ={}).listen.port == 8080


def test_a_section_missing_from_the_file_is_created_by_the_environment(
    config_file: Path,
) -> None:
    environ = {
        "AUTHSWITCH__CONNECTION_MAP_REDIS__URL": "redis://map.internal:6379/0",
        "AUTHSWITCH__CONNECTION_MAP_REDIS__TOPOLOGY": "sentinel",
        "AUTHSWITCH__CONNECTION_MAP_REDIS__SENTINEL__MASTER_NAME": "authswitch",
        "AUTHSWITCH__CONNECTION_MAP_REDIS__SENTINEL__ADDRESSES": "[s1:26379, s2:26379]",
    }

    settings = load_config(config_file, environ=environ).connection_map_redis

    assert settings is not None and settings.sentinel is not None
    assert settings.sentinel.parsed_addresses() == (("s1", 26379), ("s2", 26379))


def test_file_suffix_reads_a_secret_from_a_file(config_file: Path, tmp_path: Path) -> None:
    secret = tmp_path / "redis-url"
    secret.write_text("redis://:hunter2@redis.internal:6379/0\n")

    environ = {"AUTHSWITCH__FLAGS__REDIS__URL__FILE": str(secret)}
    config = load_config(config_file, environ=environ)

    assert config.flags.redis.url == "redis://:hunter2@redis.internal:6379/0"
    with pytest.raises(ConfigError) as raised:
        load_config(config_file, environ={"AUTHSWITCH__FLAGS__REDIS__URL__FILE": "/nonexistent"})
    assert "AUTHSWITCH__FLAGS__REDIS__URL__FILE '/nonexistent': cannot read" in str(raised.value)


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        (
            {"AUTHSWITCH__FLAGS__REDIS__URLL": "redis://x:6379/0"},
            "key 'flags.redis.urll' (set by AUTHSWITCH__FLAGS__REDIS__URLL): Extra inputs are "
            "not permitted (did you mean 'url'?)",
        ),
        (
            {"AUTHSWITCH__FLAGS__REDIS__SOCKET_TIMEOUT_SECONDS": "fast"},
            "key 'flags.redis.socket_timeout_seconds' (set by "
            "AUTHSWITCH__FLAGS__REDIS__SOCKET_TIMEOUT_SECONDS): Input should be a valid number",
        ),
        (
            {"AUTHSWITCH__LEGACY__URL__HOST": "x"},
            "environment AUTHSWITCH__LEGACY__URL__HOST: 'legacy.url' is a value, not a section",
        ),
        (
            {"AUTHSWITCH__ROUTES__7__PATH": "/x"},
            "environment AUTHSWITCH__ROUTES__7__PATH: 'routes' is a list of 4; '7' is not one of",
        ),
        (
            {"AUTHSWITCH__FLAGS__RE-DIS": "x"},
            "environment AUTHSWITCH__FLAGS__RE-DIS: not a key path",
        ),
        (
            {"AUTHSWITCH__LISTEN__PORT": "[unclosed"},
            "environment AUTHSWITCH__LISTEN__PORT: invalid YAML",
        ),
    ],
)
def test_a_bad_override_names_the_variable_and_the_key(
    config_file: Path, environ: dict[str, str], problem: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(config_file, environ=environ)

    assert problem in str(raised.value)


def test_a_misspelled_key_in_the_file_gets_a_suggestion(config_file: Path) -> None:
    text = config_file.read_text().replace("  poll_interval_seconds:", "  poll_intervall_seconds:")
    config_file.write_text(text)

    with pytest.raises(ConfigError) as raised:
        load_config(config_file, environ={})

    assert "key 'flags.poll_intervall_seconds'" in str(raised.value)
    assert "(did you mean 'poll_interval_seconds'?)" in str(raised.value)


def _config_check(config_file: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.upper().startswith("AUTHSWITCH")}
    return subprocess.run(
        [sys.executable, "-m", "proxy", "config", "check", "--config", str(config_file)],
        capture_output=True,
        text=True,
        timeout=60,
        env=environ | variables,
    )


def test_config_check_prints_the_effective_configuration_with_secrets_masked(
    config_file: Path,
) -> None:
    done = _config_check(
        config_file,
        AUTHSWITCH__FLAGS__BACKEND="redis",
        AUTHSWITCH__FLAGS__REDIS__URL="redis://ops:hunter2@redis.internal:6379/0",
        AUTHSWITCH__OPS__HOST="0.0.0.0",
    )

    assert done.returncode == 0, done.stderr
    assert "# ops listener 0.0.0.0:9464: /livez /readyz /metrics" in done.stdout
    assert yaml.safe_load(done.stdout)["ops"]["host"] == "0.0.0.0"
    assert "url: redis://ops:***@redis.internal:6379/0" in done.stdout
    assert "backend: redis" in done.stdout
    assert "hunter2" not in done.stdout + done.stderr


def test_config_check_exits_2_naming_the_key_and_a_suggestion(config_file: Path) -> None:
    done = _config_check(config_file, AUTHSWITCH__FLAGS__REDIS__PASSWORD_FIL="/x")

    assert done.returncode == 2
    assert "key 'flags.redis.password_fil'" in done.stderr
    assert "(did you mean 'password_file'?)" in done.stderr
    assert done.stdout == ""
