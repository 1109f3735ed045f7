"""What the proxy learns from the answers it proxies: outcomes per side, the status class."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flags import RolloutState, write_rollout_state
from proxy.app import AuthSwitch
from proxy.config import load_config
from proxy.demo.loopback_server import LoopbackServer
from proxy.ops import metrics
from tests.conftest import answer_lifespan
from tests.flags.redis_support import wait_until
from tests.proxy.outcomes.outcome_env import callback_path, write_outcome_files

# What the failing new provider answers per connection.
ANSWERS: dict[str, tuple[int, bytes | None]] = {
    "northwind": (500, None),
    "contoso": (302, b"https://app.example/login?error=access_denied&state=x"),
    "fabrikam": (302, b"https://app.example/dashboard"),
}


async def new_provider(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await answer_lifespan(receive, send)
        return
    connection = scope["path"].split("/")[2]
    status, location = ANSWERS[connection]
    headers = [(b"content-length", b"0")]
    if location is not None:
        headers.append((b"location", location))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def proxy(tmp_path: Path, providers: dict[str, LoopbackServer]) -> Iterator[tuple[str, AuthSwitch]]:
    with LoopbackServer(new_provider, name="new") as new:
        config = write_outcome_files(
            tmp_path,
            providers["legacy"].url,
            new.url,
            outcomes={"guard": {"mode": "off"}, "proxy": {"flush_seconds": 0.05}},
            mode="proxy",
        )
        write_rollout_state(
            tmp_path / "flags.yaml",
            RolloutState(
                version=1, overrides={"northwind": "on", "contoso": "on", "fabrikam": "on"}
            ),
        )
        app = AuthSwitch(load_config(config))
        with LoopbackServer(app, name="authswitch") as server:
            yield server.url, app


def _tally(app: AuthSwitch, connection: str) -> dict[tuple[str, str, str], int]:
    assert app._outcomes is not None
    minute = int(time.time() // 60)
    return app._outcomes.store.tally(connection, minute - 5, minute + 2).counts


def test_new_provider_answers_are_read_as_outcomes(proxy: tuple[str, AuthSwitch]) -> None:
    url, app = proxy
    before = metrics.CALLBACKS.labels(
        "northwind", "new", "override_on", "new_proxied", "5xx"
    )._value.get()
    for connection in ANSWERS:
        response = httpx.get(url + callback_path(connection), timeout=5)
        assert response.status_code == ANSWERS[connection][0]  # passed on as it was

    wait_until(lambda: _tally(app, "fabrikam"), deadline=5)
    assert _tally(app, "northwind") == {
        ("new", "proxy", "failed"): 1,
        ("new", "proxy", "forwarded"): 1,
    }
    assert _tally(app, "contoso")[("new", "proxy", "failed")] == 1
    assert _tally(app, "fabrikam")[("new", "proxy", "succeeded")] == 1
    after = metrics.CALLBACKS.labels(
        "northwind", "new", "override_on", "new_proxied", "5xx"
    )._value.get()
    assert after == before + 1


def test_legacy_fall_through_is_counted_on_the_legacy_side(
    tmp_path: Path, providers: dict[str, LoopbackServer]
) -> None:
    config = write_outcome_files(
        tmp_path,
        providers["legacy"].url,
        providers["new"].url,
        outcomes={"guard": {"mode": "off"}, "proxy": {"flush_seconds": 0.05}},
    )
    app = AuthSwitch(load_config(config))
    with LoopbackServer(app, name="authswitch") as server:
        for _ in range(3):
            assert httpx.get(server.url + callback_path("contoso"), timeout=5).status_code == 200
        # redirect mode, flag on: handed to the new provider, result unseen
        write_rollout_state(
            tmp_path / "flags.yaml", RolloutState(version=1, overrides={"contoso": "on"})
        )
        app.flag_provider.reload_now()  # type: ignore[attr-defined]
        assert httpx.get(server.url + callback_path("contoso"), timeout=5).status_code == 302
        wait_until(lambda: ("new", "proxy", "forwarded") in _tally(app, "contoso"), deadline=5)
    assert _tally(app, "contoso") == {
        ("legacy", "proxy", "succeeded"): 3,
        ("new", "proxy", "forwarded"): 1,
    }


def test_every_way_a_callback_ends_maps_to_one_side_or_none() -> None:
    import asyncio

    from proxy.outcomes.counts import MemoryOutcomeStore
    from proxy.outcomes.observer import ProxyObserver
    from proxy.outcomes.settings import ProxyObservation

    store = MemoryOutcomeStore(retention_minutes=60, max_buckets=100, max_event_ids=100)
    observer = ProxyObserver(
        store, ProxyObservation(), in_thread=False, label=str, clock=lambda: 600.0
    )
    ends = [
        ("legacy", "legacy_proxied", 200, None),
        ("legacy", "legacy_proxied", 302, b"/login?error=access_denied"),
        ("legacy", "legacy_unavailable", 502, None),
        ("new", "new_proxied", 303, b"https://app.example/home"),
        ("new", "new_upstream_error", 502, None),
        ("new", "upstream_truncated", 200, None),
        ("new", "new_redirect", 307, b"https://new.example/acs"),
        ("rejected", "rejected", 400, None),
        ("new", "cancelled", 503, None),
        ("none", "client_disconnected", 499, None),
    ]
    for destination, code, status, location in ends:
        observer.observe("acme", destination, "/cb", code, status, location)
    observer.observe(None, "legacy", "/cb", "legacy_proxied", 200, None)  # unknown connection
    asyncio.run(observer.flush())
    assert store.tally("acme", 0, 20).counts == {
        ("legacy", "proxy", "succeeded"): 1,
        ("legacy", "proxy", "failed"): 2,
        ("new", "proxy", "succeeded"): 1,
        ("new", "proxy", "failed"): 2,
        ("new", "proxy", "forwarded"): 4,
    }
