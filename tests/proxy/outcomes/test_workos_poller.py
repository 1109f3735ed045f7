"""The WorkOS Events API poller against a loopback API in WorkOS's shapes, with real Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from connection_map import ConnectionMapFile
from proxy.config import load_config
from proxy.demo.loopback_server import LoopbackServer
from proxy.outcomes.counts import OutcomeStore
from proxy.outcomes.service import OutcomeService
from proxy.outcomes.workos_poller import PollFailed
from tests.flags.redis_support import (
    RedisTarget,
    shared_redis,  # noqa: F401  (registers the fixture for this module)
)
from tests.proxy.outcomes.outcome_env import CONNECTIONS, write_outcome_files
from tests.proxy.outcomes.workos_fake import API_KEY, FakeEventsApi, sso_event


@pytest.fixture
def events_api() -> Iterator[tuple[FakeEventsApi, str]]:
    api = FakeEventsApi()
    with LoopbackServer(api, name="workos") as server:
        yield api, server.url


def _service(
    tmp_path: Path, api_url: str, redis: RedisTarget, api_key: str | None = None
) -> OutcomeService:
    outcomes = {
        "store": "redis",
        "redis": {"url": redis.url, "key_prefix": redis.prefix},
        "workos": {
            "enabled": True,
            "poll": True,
            "api_url": api_url,
            "api_key_file": "api-key",
            "poll_seconds": 60,
        },
        "guard": {"mode": "off"},
    }
    path = write_outcome_files(
        tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9", outcomes=outcomes
    )
    if api_key is not None:
        (tmp_path / "api-key").write_text(api_key + "\n")
    config = load_config(path)
    connection_map = ConnectionMapFile(config.connection_map)
    return OutcomeService(config, lambda: connection_map.current)


async def _poll(service: OutcomeService) -> int:
    assert service.poller is not None
    await service.poller.start()
    try:
        return await service.poller.poll_once()
    finally:
        await service.poller.close()


def _counts(store: OutcomeStore, connection: str) -> tuple[int, int]:
    minute = int(time.time() // 60)
    return store.tally(connection, minute - 30, minute + 2).judged("new", "events")


def test_a_restarted_poller_neither_loses_nor_double_counts(
    tmp_path: Path,
    events_api: tuple[FakeEventsApi, str],
    shared_redis: RedisTarget,  # noqa: F811
) -> None:
    api, url = events_api
    now = time.time()
    contoso = CONNECTIONS["contoso"]
    # 150 events: more than one page of 100.
    api.events = [
        sso_event(f"event_{n:026d}", contoso, succeeded=n % 3 != 0, at=now - 60) for n in range(150)
    ]
    first = _service(tmp_path / "a", url, shared_redis)
    assert asyncio.run(_poll(first)) == 150
    assert _counts(first.store, "contoso") == (100, 50)
    assert api.requests[0]["events"] == [
        "authentication.sso_succeeded",
        "authentication.sso_failed",
    ]
    assert "after" not in api.requests[0] and "range_start" in api.requests[0]
    assert api.requests[1]["after"] == [f"event_{99:026d}"]

    # New events while the poller is down; a new process resumes from the stored cursor.
    api.events += [
        sso_event(f"event_{n:026d}", contoso, succeeded=False, at=now) for n in range(150, 155)
    ]
    second = _service(tmp_path / "b", url, shared_redis)
    assert asyncio.run(_poll(second)) == 5
    assert api.requests[-1]["after"] == [f"event_{149:026d}"]
    assert _counts(second.store, "contoso") == (100, 55)

    # A crash after counting but before saving the cursor: the page is read again, and
    # counted once.
    assert second._client is not None
    second._client.set(f"{shared_redis.prefix}:outcomes:cursor:workos", f"event_{120:026d}")
    third = _service(tmp_path / "c", url, shared_redis)
    assert asyncio.run(_poll(third)) == 34
    assert _counts(third.store, "contoso") == (100, 55)


def test_the_api_key_is_sent_as_bearer_and_never_logged(
    tmp_path: Path,
    events_api: tuple[FakeEventsApi, str],
    shared_redis: RedisTarget,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    api, url = events_api
    api.events = [sso_event("event_01X", CONNECTIONS["northwind"], succeeded=True)]
    assert asyncio.run(_poll(_service(tmp_path, url, shared_redis))) == 1
    assert api.requests[0]  # the fake answers 200 only to "Bearer <API_KEY>"
    # A wrong key: the poll fails with a message that carries neither key.
    service = _service(tmp_path / "wrong", url, shared_redis, api_key="sk_wrong_SEEKRIT")
    with pytest.raises(PollFailed, match="HTTP 401") as failure:
        asyncio.run(_poll(service))
    assert API_KEY not in str(failure.value) and "SEEKRIT" not in str(failure.value)
    assert API_KEY not in caplog.text


def test_an_odd_event_does_not_stop_the_poller(
    tmp_path: Path,
    events_api: tuple[FakeEventsApi, str],
    shared_redis: RedisTarget,  # noqa: F811
) -> None:
    api, url = events_api
    contoso = CONNECTIONS["contoso"]
    odd = {"object": "event", "id": "event_odd", "event": "authentication.sso_failed"}
    api.events = [
        sso_event("event_01", contoso, succeeded=True),
        odd,  # no created_at, no data: not an event the poller can count
        sso_event("event_02", contoso, succeeded=False),
    ]
    service = _service(tmp_path, url, shared_redis)
    assert asyncio.run(_poll(service)) == 3
    assert _counts(service.store, "contoso") == (1, 1)
    api.events.append(sso_event("event_03", contoso, succeeded=False))
    assert asyncio.run(_poll(_service(tmp_path / "again", url, shared_redis))) == 1
    assert api.requests[-1]["after"] == ["event_02"]
