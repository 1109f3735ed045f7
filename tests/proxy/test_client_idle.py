"""A client idle in a forwarded exchange (its streamed body paused, or the answer unread) is
cut after `timeouts.client_idle_seconds`, and the upstream connection and pool slot it held
are freed for the next request."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from proxy.app import AuthSwitch
from proxy.config import load_config
from proxy.demo.loopback_server import LoopbackServer
from proxy.http.client_idle import ClientIdleWatch
from tests.conftest import write_proxy_files
from tests.proxy.test_server_limits import _answer
from tests.proxy.test_upstream_pool import FORM, CountingUpstream, _passthrough_count

_IDLE = 0.3
_BIG = 16 * 1024 * 1024


def _config(tmp_path: Path, legacy_url: str) -> Path:
    return write_proxy_files(
        tmp_path,
        legacy_url,
        legacy_url,
        limits={"upstream_pool_size": 1},  # one slot: a request left holding it stops the rest
        timeouts={
            "connect_seconds": 1,
            "read_seconds": 5,
            "upstream_pool_wait_seconds": 2,
            "client_idle_seconds": _IDLE,
        },
    )


def test_a_paused_upload_gets_408_and_frees_its_upstream_slot(tmp_path: Path) -> None:
    before = _passthrough_count("client_timeout")
    with CountingUpstream(delay=0) as legacy:
        config = load_config(_config(tmp_path, legacy.url))
        with LoopbackServer(AuthSwitch(config), name="authswitch") as server:
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as paused:
                paused.sendall(
                    b"POST /upload HTTP/1.1\r\nhost: legacy\r\ncontent-length: 1000\r\n\r\n"
                    b"the first bytes, then nothing"
                )
                answer = _answer(paused)  # until authswitch closes it
            fields = urlencode({"code": "after-the-pause", "state": "s"})
            callback = httpx.post(
                f"{server.url}/oidc/piedpiper/callback", content=fields, headers=FORM, timeout=10
            )
        for _ in range(100):  # the upstream sees its connection dropped mid-body
            if legacy.open == 0:
                break
            time.sleep(0.01)
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"connection: close" in head
    assert b'"error":"body_timeout"' in answer
    assert b"the first bytes" not in legacy.bodies, "the partial body was never completed"
    assert callback.status_code == 200, "the only upstream slot was freed"
    assert legacy.bodies.count(fields.encode()) == 1
    assert _passthrough_count("client_timeout") == before + 1


async def _big_page(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    if scope["path"] != "/big":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"small"})
        return
    headers = [(b"content-length", str(_BIG).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    chunk = b"x" * 65536
    for _ in range(_BIG // len(chunk)):
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def test_an_answer_left_unread_is_aborted_and_frees_its_upstream_slot(tmp_path: Path) -> None:
    before = _passthrough_count("client_timeout")
    with LoopbackServer(_big_page, name="legacy") as legacy:
        config = load_config(_config(tmp_path, legacy.url))
        with LoopbackServer(AuthSwitch(config), name="authswitch") as server:
            reader = socket.socket()
            reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            reader.connect(("127.0.0.1", server.port))
            reader.sendall(b"GET /big HTTP/1.1\r\nhost: legacy\r\n\r\n")
            time.sleep(_IDLE * 4)  # reads nothing meanwhile

            async def next_request() -> httpx.Response:
                async with httpx.AsyncClient(timeout=10) as client:
                    return await client.get(f"{server.url}/small")

            following = asyncio.run(next_request())
            reader.settimeout(10)
            received = _answer(reader)
            reader.close()
    assert following.status_code == 200, "the only upstream slot was freed"
    assert following.text == "small"
    assert received.startswith(b"HTTP/1.1 200")
    assert len(received) < _BIG, "aborted, never passed off as whole"
    assert _passthrough_count("client_timeout") == before + 1


_PERIOD = 0.05


def test_the_watch_cuts_one_wait_that_lasts_a_whole_period() -> None:
    async def stalled() -> None:
        with ClientIdleWatch(_PERIOD) as idle:
            idle.waiting()
            await asyncio.sleep(_PERIOD * 20)  # a client that reads nothing

    with pytest.raises(TimeoutError):
        asyncio.run(stalled())


def test_the_watch_never_cuts_short_waits_or_waits_on_the_upstream() -> None:
    period = 0.2  # long beside the waits: a loaded machine's late timers don't matter

    async def busy() -> int:
        steps = 0
        with ClientIdleWatch(period) as idle:
            for _ in range(12):  # many periods in all, each wait on the client a short one
                idle.waiting()
                await asyncio.sleep(period * 0.1)
                idle.done()
                await asyncio.sleep(period * 0.5)
                steps += 1
            await asyncio.sleep(period * 4)  # a slow upstream is not the client's idleness
        return steps

    assert asyncio.run(busy()) == 12


def test_the_watch_leaves_an_outside_cancellation_a_cancellation() -> None:
    async def cancelled() -> None:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().call_later(_PERIOD / 5, task.cancel)
        with ClientIdleWatch(_PERIOD) as idle:
            idle.waiting()
            await asyncio.sleep(_PERIOD * 20)

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(cancelled())
