"""The `broker` configuration section: off by default, complete when on, its own prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from proxy.app import AuthSwitch
from proxy.config import ConfigError, load_config
from proxy.demo.loopback_server import LoopbackServer
from tests.conftest import write_proxy_files
from tests.flags.redis_support import RedisTarget
from tests.proxy.broker.broker_support import ALICE, hash_file_verifier, hook_body
from tests.proxy.broker.conftest import StartBroker


def test_off_by_default_the_prefix_is_just_a_legacy_path(
    tmp_path: Path, providers: dict[str, LoopbackServer]
) -> None:
    path = write_proxy_files(tmp_path, providers["legacy"].url, providers["new"].url)
    config = load_config(path)
    assert config.broker.enabled is False

    legacy = providers["legacy"].app.state.received  # type: ignore[union-attr]
    before = len(legacy)
    with LoopbackServer(AuthSwitch(config), name="authswitch") as server:
        answer = httpx.post(f"{server.url}/_authswitch/broker/okta", json=hook_body("okta", *ALICE))

    # No broker behind it: the path is the legacy host's, passed through like any other.
    assert [r["path"] for r in legacy[before:]] == ["/_authswitch/broker/okta"]
    assert "verified" not in answer.text


@pytest.mark.parametrize("missing", ["secret_file", "verifier"])
def test_enabled_without_a_secret_or_a_verifier_names_the_key(tmp_path: Path, missing: str) -> None:
    broker: dict[str, Any] = {
        "enabled": True,
        "secret_file": "s",
        "verifier": {"type": "hash_file", "path": "h.csv"},
    }
    del broker[missing]
    path = write_proxy_files(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9", broker=broker)

    with pytest.raises(ConfigError, match=rf"key 'broker': .*'{missing}' is required"):
        load_config(path)


def test_a_short_secret_is_refused_at_start(tmp_path: Path, shared_redis: RedisTarget) -> None:
    (tmp_path / "s").write_text("short\n")
    verifier = hash_file_verifier(tmp_path)
    path = write_proxy_files(
        tmp_path,
        "http://127.0.0.1:9",
        "http://127.0.0.1:9",
        broker={"enabled": True, "secret_file": "s", "verifier": verifier},
    )

    with pytest.raises(ConfigError, match=r"broker\.secret_file .* at least 16 bytes"):
        AuthSwitch(load_config(path))


def test_a_custom_prefix_leaves_ops_and_legacy_routes_alone(start_broker: StartBroker) -> None:
    env = start_broker(path_prefix="/internal/password-hooks")

    moved = httpx.post(
        f"{env.url}/internal/password-hooks/generic",
        json=hook_body("generic", *ALICE),
        headers={"x-authswitch-broker-secret": env.secret.decode()},
    )
    old = env.call("generic", *ALICE)

    assert moved.json() == {"verified": True}
    # /_authswitch/broker/... is no hook any more: the legacy host's path (unreachable here).
    assert old.status_code == 502 and "verified" not in old.text
    assert httpx.get(f"{env.ops_url}/livez").json() == {"status": "ok"}


def test_rates_are_validated(tmp_path: Path) -> None:
    path = write_proxy_files(
        tmp_path,
        "http://127.0.0.1:9",
        "http://127.0.0.1:9",
        broker={"rate_limits": {"per_ip": "lots"}},
    )

    with pytest.raises(ConfigError, match=r"key 'broker\.rate_limits\.per_ip'"):
        load_config(path)


def test_yaml_example_block_is_a_valid_broker_section(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[3] / "examples" / "authswitch.yaml"
    lines = example.read_text().splitlines()
    start = lines.index("# broker:")
    block = "\n".join(line.removeprefix("# ") for line in lines[start:])
    broker = yaml.safe_load(block)["broker"]
    path = write_proxy_files(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9", broker=broker)

    config = load_config(path)

    assert config.broker.verifier is not None and config.broker.verifier.type == "http_login"
    assert config.broker.budget_seconds.okta == 2.5
