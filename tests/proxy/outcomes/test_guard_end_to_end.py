"""End to end: two replicas, WorkOS webhooks and Events API, a connection that starts failing
at the new provider is turned off by the guard; the next callback lands at legacy, the others
keep moving.

Real parts: two in-process AuthSwitch apps served by uvicorn on loopback, the machine's Redis
(flags, outcome counts, the guard's and the poller's leases), signed WorkOS-shaped webhooks over
HTTP, and a WorkOS-shaped Events API on loopback that the replicas poll.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flags import RedisKeys, RedisRolloutStore, RolloutState
from flags.redis.keys import connect
from proxy.app import AuthSwitch
from proxy.config import load_config
from proxy.demo.loopback_server import LoopbackServer
from tests.flags.redis_support import (
    RedisTarget,
    shared_redis,  # noqa: F401  (registers the fixture for this module)
    wait_until,
)
from tests.proxy.outcomes.outcome_env import CONNECTIONS, callback_path, write_outcome_files
from tests.proxy.outcomes.workos_fake import (
    API_KEY,
    WEBHOOK_SECRET,
    FakeEventsApi,
    send_webhook,
    sso_event,
)

_ids = itertools.count(1)


def _route_of(base_url: str, connection: str) -> str:
    response = httpx.get(base_url + callback_path(connection), timeout=5)
    if response.status_code == 302:
        return "new"
    assert response.status_code == 200, response.text
    assert response.json()["landed"] == "legacy"
    return "legacy"


def _report(url: str, connection: str, *, succeeded: bool) -> None:
    event = sso_event(f"event_{next(_ids):026d}", CONNECTIONS[connection], succeeded=succeeded)
    response = send_webhook(url + "/_authswitch/outcomes/workos", event)
    assert response.status_code == 200, response.text
    assert response.json()["counted"] == 1


@pytest.fixture
def events_api() -> Iterator[tuple[FakeEventsApi, str]]:
    api = FakeEventsApi()
    with LoopbackServer(api, name="workos") as server:
        yield api, server.url


@pytest.fixture
def replicas(
    tmp_path: Path,
    providers: dict[str, LoopbackServer],
    shared_redis: RedisTarget,  # noqa: F811
    events_api: tuple[FakeEventsApi, str],
) -> Iterator[tuple[list[str], RedisRolloutStore]]:
    flags = {
        "backend": "redis",
        "redis": {"url": shared_redis.url, "key_prefix": shared_redis.prefix},
    }
    outcomes = {
        "workos": {
            "enabled": True,
            "webhook_secret_file": "webhook-secret",
            "poll": True,
            "api_url": events_api[1],
            "api_key_file": "api-key",
            "poll_seconds": 0.1,
        },
        "guard": {"mode": "enforce", "interval_seconds": 0.1, "lease_seconds": 2},
    }
    store = RedisRolloutStore(
        connect(shared_redis.url, socket_timeout=2, client_name="test"),
        RedisKeys(shared_redis.prefix),
    )
    store.write(
        0,
        RolloutState(overrides={"northwind": "on", "contoso": "on"}),
        actor="sre-on-call",
        reason="canary: two connections",
        action="enable",
    )
    servers = []
    for number in (1, 2):
        config = write_outcome_files(
            tmp_path / f"replica{number}",
            providers["legacy"].url,
            providers["new"].url,
            outcomes=outcomes,
            flags=flags,
        )
        servers.append(LoopbackServer(AuthSwitch(load_config(config)), name=f"r{number}").start())
    try:
        yield [server.url for server in servers], store
    finally:
        for server in servers:
            server.stop()


def test_guard_turns_off_a_connection_failing_at_the_new_provider(
    replicas: tuple[list[str], RedisRolloutStore],
    events_api: tuple[FakeEventsApi, str],
) -> None:
    urls, store = replicas
    api = events_api[0]
    for url in urls:
        wait_until(lambda url=url: _route_of(url, "northwind") == "new", deadline=10)
        assert _route_of(url, "contoso") == "new"
    # Both connections log in fine at first; reports reach either replica.
    for number in range(4):
        _report(urls[number % 2], "northwind", succeeded=True)
        _report(urls[number % 2], "contoso", succeeded=True)
    assert store.read().overrides == {"northwind": "on", "contoso": "on"}

    # northwind starts failing at the new provider: three failures reach authswitch as
    # webhooks, three more only through the Events API (webhook deliveries lost).
    for number in range(3):
        _report(urls[number % 2], "northwind", succeeded=False)
        _report(urls[number % 2], "contoso", succeeded=True)
    api.events += [
        sso_event(f"event_{next(_ids):026d}", CONNECTIONS["northwind"], succeeded=False)
        for _ in range(3)
    ]

    wait_until(lambda: store.read().overrides.get("northwind") == "off", deadline=10)
    for url in urls:  # the next callback lands at legacy on every replica
        wait_until(lambda url=url: _route_of(url, "northwind") == "legacy", deadline=5)
        assert _route_of(url, "contoso") == "new"  # the others keep moving
    state = store.read()
    assert state.overrides["contoso"] == "on"

    record = store.history(1)[0]
    assert (record.actor, record.action) == ("guard", "disable")
    assert record.after == {"overrides": {"northwind": "off"}}
    assert "failing" in record.reason
    # Killed by the fifth or sixth failure, with the numbers.
    assert re.search(r"new side [56] failed of (9|10); legacy baseline", record.reason)
    assert {"authentication.sso_failed"} <= set(api.requests[-1]["events"])
    assert "SPRT log LR" in record.reason
    written = json.dumps(record.model_dump())
    assert API_KEY not in written and WEBHOOK_SECRET.decode() not in written
    assert "todd@example.com" not in written

    # It never turns a connection back on by itself.
    for _ in range(3):
        _report(urls[0], "northwind", succeeded=True)
    wait_until(lambda: len(store.history(10)) == 2, deadline=1)
    assert store.read().overrides["northwind"] == "off"
