"""Choosing the connection map's backend: the file (default) or Redis (`connection_map_redis`)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from proxy.app import AuthSwitch
from proxy.config import ConfigError, load_config
from proxy.demo.loopback_server import LoopbackServer
from tests.conftest import ops_listener, write_proxy_files
from tests.flags.redis_support import (
    RedisTarget,
    shared_redis,  # noqa: F401  (registers the fixture for this module)
    wait_until,
)

BASE: dict[str, Any] = {
    "legacy": {"url": "http://127.0.0.1:9"},
    "connection_map": "connections.yaml",
    "flags": {"file": "flags.yaml"},
    "routes": [{"path": "/login/callback", "protocol": "saml", "identify": ["saml_issuer"]}],
}


def _config(tmp_path: Path, **changes: Any) -> Path:
    path = tmp_path / "authswitch.yaml"
    path.write_text(yaml.safe_dump({**BASE, **changes}))
    return path


def test_the_plain_file_form_still_means_the_file_backend(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path))
    assert config.connection_map == tmp_path / "connections.yaml"
    assert config.connection_map_redis is None


def test_the_redis_block_takes_the_flags_redis_shape_with_paths_resolved(tmp_path: Path) -> None:
    config = load_config(
        _config(
            tmp_path,
            connection_map_redis={"key_prefix": "authswitch:{prod}", "password_file": "pw"},
        )
    )
    settings = config.connection_map_redis
    assert settings is not None
    assert (settings.url, settings.key_prefix) == ("redis://127.0.0.1:6379/0", "authswitch:{prod}")
    assert (settings.resync_seconds, settings.socket_timeout_seconds) == (5.0, 0.5)
    assert settings.password_file == tmp_path / "pw"
    with pytest.raises(ConfigError, match=re.escape("connection_map_redis.password_file")):
        settings.password()
    (tmp_path / "pw").write_text("s3cret\n")
    assert settings.password() == "s3cret"


@pytest.mark.parametrize(
    ("block", "key"),
    [
        ({"url": "http://redis"}, "connection_map_redis.url"),
        ({"key_prefix": "has space"}, "connection_map_redis.key_prefix"),
        ({"resync_seconds": 0}, "connection_map_redis.resync_seconds"),
        ({"backend": "redis"}, "connection_map_redis.backend"),
    ],
)
def test_a_bad_redis_block_is_named_by_its_key(
    tmp_path: Path, block: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"key '{key}'")):
        load_config(_config(tmp_path, connection_map_redis=block))


def test_push_with_a_file_backend_config_is_a_usage_error(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "proxy", "connections", "push", "--reason", "r"]
    done = subprocess.run(
        [*command, "--config", str(_config(tmp_path))], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "set 'connection_map_redis' to push it to Redis" in done.stderr


def test_a_replica_with_no_map_in_redis_is_not_ready_until_a_push(
    tmp_path: Path,
    providers: dict[str, LoopbackServer],
    shared_redis: RedisTarget,  # noqa: F811
) -> None:
    config = write_proxy_files(
        tmp_path,
        providers["legacy"].url,
        providers["new"].url,
        connection_map_redis={"url": shared_redis.url, "key_prefix": shared_redis.prefix},
    )
    app = AuthSwitch(load_config(config))
    with LoopbackServer(app, name="authswitch"), ops_listener(app) as ops:
        readyz = ops.url + "/readyz"
        wait_until(
            lambda: httpx.get(readyz, timeout=5).json()["checks"]["connection_map"]["last_error"]
        )
        before = httpx.get(readyz, timeout=5)
        command = [sys.executable, "-m", "proxy", "connections", "push", "--reason", "first"]
        done = subprocess.run(
            [*command, "--config", str(config)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        after = wait_until(lambda: httpx.get(readyz, timeout=5).status_code == 200)

    report = before.json()
    assert before.status_code == 503
    assert "no connection map known yet (every callback goes to legacy)" in report["missing"]
    assert report["checks"]["connection_map"]["backend"] == "redis"
    assert report["checks"]["connection_map"]["loaded"] is False
    assert after < 1.0


def test_push_if_newer_lets_a_deploy_hook_run_on_every_upgrade(
    tmp_path: Path,
    providers: dict[str, LoopbackServer],
    shared_redis: RedisTarget,  # noqa: F811
) -> None:
    config = write_proxy_files(
        tmp_path,
        providers["legacy"].url,
        providers["new"].url,
        connection_map_redis={"url": shared_redis.url, "key_prefix": shared_redis.prefix},
    )
    command = [sys.executable, "-m", "proxy", "connections", "push", "--config", str(config)]

    def push(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, "--reason", "helm upgrade", *extra],
            capture_output=True,
            text=True,
            timeout=60,
        )

    first = push("--if-newer")
    again = push("--if-newer")
    plain = push()

    assert first.returncode == 0 and "pushed version 1" in first.stdout, first.stderr
    assert again.returncode == 0, "the same version live already: nothing to do, no failure"
    assert "version 1 is live, the file has 1: not pushed" in again.stdout
    assert plain.returncode == 1 and "is not newer than the live version" in plain.stderr
