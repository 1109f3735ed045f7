"""Fixtures of the broker tests: real Redis, a real SCIM server, authswitch on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from proxy.app import AuthSwitch
from proxy.config import load_config
from proxy.demo.loopback_server import LoopbackServer
from tests.flags.redis_support import RedisTarget, shared_redis  # noqa: F401
from tests.proxy.broker.broker_support import (
    BrokerEnv,
    ScimServer,
    hash_file_verifier,
    serve,
    write_broker_config,
)

StartBroker = Callable[..., BrokerEnv]


@pytest.fixture
def scim_server() -> Iterator[ScimServer]:
    scim = ScimServer()
    yield scim
    scim.server.stop()


@pytest.fixture
def start_broker(
    tmp_path: Path,
    shared_redis: RedisTarget,  # noqa: F811 (the fixture imported above)
    scim_server: ScimServer,
) -> Iterator[StartBroker]:
    """Start authswitch with the broker on; keyword arguments go into the `broker` section."""
    servers: list[LoopbackServer] = []
    envs: list[BrokerEnv] = []

    def start(verifier: dict[str, Any] | None = None, **broker: Any) -> BrokerEnv:
        path = write_broker_config(
            tmp_path,
            shared_redis,
            scim_server,
            verifier or hash_file_verifier(tmp_path),
            **broker,
        )
        app = AuthSwitch(load_config(path))
        server = serve(app, "authswitch-broker")
        servers.append(server)
        envs.append(BrokerEnv(server.url, shared_redis.prefix, scim_server, app))
        return envs[-1]

    yield start
    for server in servers:
        server.stop()
    for env in envs:
        env.stop_ops()
