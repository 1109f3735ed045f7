"""/readyz with the broker on: its Redis unreachable is reported (callbacks still route, every
hook is denied); it takes the replica out of the load balancer only when configured to."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml

from proxy.app import AuthSwitch
from proxy.config import load_config
from proxy.demo.loopback_server import LoopbackServer
from tests.conftest import readyz, write_proxy_files
from tests.flags.redis_support import (
    PrivateRedis,
    RedisTarget,
    private_redis,  # noqa: F401  (registers the fixture for this module)
    wait_until,
)
from tests.proxy.broker.broker_support import (
    ALICE,
    BrokerEnv,
    ScimServer,
    hash_file_verifier,
    okta_answer,
    serve,
    write_broker_config,
)
from tests.proxy.broker.conftest import StartBroker

PROBLEM = "broker Redis unreachable (every password hook is denied)"


def test_ready_with_the_broker_and_its_redis_up(start_broker: StartBroker) -> None:
    env = start_broker()

    status, report = readyz(env.ops_url)

    assert (status, report["missing"], report["degraded"]) == (200, [], [])
    assert report["checks"]["broker"] == {"redis_reachable": True}


def test_without_the_broker_there_is_no_broker_check(start_broker: StartBroker) -> None:
    env = start_broker(enabled=False)

    status, report = readyz(env.ops_url)

    assert status == 200 and "broker" not in report["checks"]


@pytest.mark.parametrize("requires_redis", [False, True])
def test_broker_redis_down_is_reported_and_hooks_fail_closed(
    tmp_path: Path,
    private_redis: PrivateRedis,  # noqa: F811  (the fixture imported above)
    scim_server: ScimServer,
    providers: dict[str, LoopbackServer],
    requires_redis: bool,
) -> None:
    target = RedisTarget(private_redis.url, "ready")
    write_broker_config(
        tmp_path,
        target,
        scim_server,
        hash_file_verifier(tmp_path),
        redis={
            "url": target.url,
            "key_prefix": target.prefix,
            "socket_timeout_seconds": 0.2,
            "ready_requires_redis": requires_redis,
        },
    )
    # The same broker section in front of the real legacy and new providers.
    broker = yaml.safe_load((tmp_path / "authswitch.yaml").read_text())["broker"]
    path = write_proxy_files(tmp_path, providers["legacy"].url, providers["new"].url, broker=broker)
    app = AuthSwitch(load_config(path))
    server = serve(app, "authswitch-broker")
    env = BrokerEnv(server.url, target.prefix, scim_server, app)
    try:
        up = readyz(env.ops_url)
        callback_up = httpx.get(env.url + "/oidc/hooli/callback?code=a&state=b", timeout=5)

        private_redis.stop()
        wait_until(lambda: not readyz(env.ops_url)[1]["checks"]["broker"]["redis_reachable"])
        down_status, down = readyz(env.ops_url)
        hook = env.call("okta", *ALICE)
        callback_down = httpx.get(env.url + "/oidc/hooli/callback?code=a&state=b", timeout=5)

        private_redis.start()
        wait_until(lambda: readyz(env.ops_url)[1]["checks"]["broker"]["redis_reachable"])
        back = readyz(env.ops_url)
        hook_back = env.call("okta", *ALICE)
    finally:
        server.stop()
        env.stop_ops()

    assert up[0] == 200 and up[1]["checks"]["broker"] == {"redis_reachable": True}
    if requires_redis:
        assert (down_status, down["ready"]) == (503, False)
        assert (down["missing"], down["degraded"]) == ([PROBLEM], [])
    else:
        assert (down_status, down["ready"]) == (200, True)
        assert (down["missing"], down["degraded"]) == ([], [PROBLEM])
    # Fail closed: no Redis, no rate limits or locks, no "verified".
    assert hook.json() == okta_answer(False)
    # The callback path doesn't use the broker's Redis: legacy answers as before the outage.
    assert callback_up.status_code < 500
    assert (callback_down.status_code, callback_down.content) == (
        callback_up.status_code,
        callback_up.content,
    )
    assert (back[0], back[1]["missing"], back[1]["degraded"]) == (200, [], [])
    assert hook_back.json() == okta_answer(True)
    assert [u["userName"] for u in scim_server.users()] == [ALICE[0]]
