"""/readyz says whether this replica can route, and what is missing when it can't."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from flags import RedisKeys, RedisRolloutStore, RolloutState
from flags.redis.keys import connect
from proxy.app import AuthSwitch
from proxy.config import load_config
from proxy.demo.loopback_server import LoopbackServer
from tests.conftest import ProxyEnv, ops_listener, readyz, write_proxy_files
from tests.flags.redis_support import (
    PrivateRedis,
    private_redis,  # noqa: F401  (registers the fixture for this module)
    wait_until,
)


def test_livez_and_readyz_with_the_file_backend(proxy_env: ProxyEnv) -> None:
    assert httpx.get(proxy_env.ops_url + "/livez", timeout=5).json() == {"status": "ok"}
    status, report = readyz(proxy_env.ops_url)
    assert (status, report["ready"], report["missing"]) == (200, True, [])
    assert report["checks"]["connection_map"]["connections"] == 6
    assert report["checks"]["flags"]["backend"] == "file"


@pytest.mark.parametrize("requires_redis", [True, False])
def test_readyz_follows_redis_when_configured_to(
    tmp_path: Path,
    providers: dict[str, LoopbackServer],
    private_redis: PrivateRedis,  # noqa: F811  (the fixture imported above)
    requires_redis: bool,
) -> None:
    store = RedisRolloutStore(
        connect(private_redis.url, socket_timeout=2, client_name="t"), RedisKeys("ready")
    )
    store.write(0, RolloutState(overrides={"hooli": "on"}), actor="t", reason="r", action="x")
    redis_settings = {
        "url": private_redis.url,
        "key_prefix": "ready",
        "resync_seconds": 0.2,
        "socket_timeout_seconds": 0.2,
        "ready_requires_redis": requires_redis,
    }
    config = write_proxy_files(
        tmp_path,
        providers["legacy"].url,
        providers["new"].url,
        flags={"backend": "redis", "redis": redis_settings},
    )
    app = AuthSwitch(load_config(config))
    with LoopbackServer(app, name="authswitch") as server, ops_listener(app) as ops:
        assert readyz(ops.url)[0] == 200
        private_redis.stop()
        wait_until(lambda: readyz(ops.url)[1]["checks"]["flags"]["stale"])
        down_status, down_report = readyz(ops.url)
        route = httpx.get(server.url + "/oidc/hooli/callback?code=a&state=b", timeout=5)
        private_redis.start()  # empty: the replica may already have recorded its version
        store = RedisRolloutStore(
            connect(private_redis.url, socket_timeout=2, client_name="t"), RedisKeys("ready")
        )
        restored = store.initialise_empty_store(actor="t", reason="Redis came back empty")
        store.write(
            restored.version,
            RolloutState(overrides={"hooli": "on"}),
            actor="t",
            reason="r",
            action="x",
        )
        wait_until(lambda: readyz(ops.url)[0] == 200)
    assert route.status_code == 302, "the last known state keeps routing during the outage"
    if requires_redis:
        assert down_status == 503 and down_report["ready"] is False
        assert down_report["missing"] == ["flag backend unreachable (serving the last known state)"]
    else:
        assert down_status == 200 and down_report["missing"] == []
