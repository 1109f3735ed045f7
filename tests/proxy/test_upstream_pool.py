"""The upstream pool is bounded and queues: never more than `limits.upstream_pool_size`
upstream connections, every request completes, and a request that waited too long is answered
503 without ever having been sent (so a client retry can't send an artifact twice)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import urlencode

import httpx
import pytest

from flags import RolloutState, write_rollout_state
from proxy.app import AuthSwitch
from proxy.config import ConfigError, load_config
from proxy.demo.loopback_server import LoopbackServer
from proxy.ops import metrics
from tests.conftest import write_proxy_files
from tests.proxy.test_shutdown_connections import _one_answer

FORM = {"content-type": "application/x-www-form-urlencoded"}


class CountingUpstream:
    """A keep-alive HTTP/1.1 server on a loop of its own that answers every request after
    `delay` seconds and records how many connections were open at most, and each body."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.open = 0
        self.most_open = 0
        self.bodies: list[bytes] = []
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.url = ""

    def __enter__(self) -> CountingUpstream:
        self._thread.start()
        start = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop
        )
        self._server = start.result(timeout=5)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        # Kept-alive connections leave handlers waiting for a next request: cancel and await
        # them before the loop stops, or their coroutines are collected unfinished later, in
        # whichever test happens to run then.
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        handlers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                self.bodies.append(await reader.readexactly(length))
                await asyncio.sleep(self.delay)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            writer.close()


def _passthrough_count(outcome: str) -> float:
    for family in metrics.PASSTHROUGH.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels["outcome"] == outcome:
                return sample.value
    return 0.0


def _busy_callbacks(destination: str) -> float:
    total = 0.0
    for family in metrics.CALLBACKS.collect():
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name.endswith("_total")
                and labels["outcome"] == "upstream_busy"
                and labels["destination"] == destination
            ):
                total += sample.value
    return total


async def _burst(base: str, count: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        requests = []
        for index in range(count):
            if index % 2:
                fields = urlencode({"code": f"code-{index}", "state": f"state-{index}"})
                url = f"{base}/oidc/piedpiper/callback"
                requests.append(client.post(url, content=fields, headers=FORM))
            else:
                requests.append(client.get(f"{base}/account/{index}"))
        return list(await asyncio.gather(*requests))


def test_a_burst_larger_than_the_pool_queues_and_every_request_completes(
    tmp_path: Path,
) -> None:
    with CountingUpstream(delay=0.05) as legacy:
        config = load_config(
            write_proxy_files(tmp_path, legacy.url, legacy.url, limits={"upstream_pool_size": 4})
        )
        with LoopbackServer(AuthSwitch(config), name="authswitch") as server:
            responses = asyncio.run(_burst(server.url, 60))

    assert [r.status_code for r in responses] == [200] * 60
    assert 1 <= legacy.most_open <= 4, f"{legacy.most_open} upstream connections were open"
    codes = [body for body in legacy.bodies if body.startswith(b"code=")]
    assert len(codes) == 30
    assert len(set(codes)) == 30, "each callback's code reached the upstream exactly once"


@pytest.mark.parametrize("destination", ["legacy", "new"])
def test_a_request_that_waits_past_the_queue_bound_gets_503_and_is_never_sent(
    tmp_path: Path, destination: str
) -> None:
    """On the new provider's side too: a full pool is authswitch's own state, so the callback
    neither falls back to legacy nor counts as the new provider failing."""
    with CountingUpstream(delay=1.0) as legacy:
        config = load_config(
            write_proxy_files(
                tmp_path,
                legacy.url,
                legacy.url,
                limits={"upstream_pool_size": 1},
                timeouts={
                    "connect_seconds": 1,
                    "read_seconds": 5,
                    "upstream_pool_wait_seconds": 0.2,
                },
            )
        )
        if destination == "new":
            write_rollout_state(
                tmp_path / "flags.yaml", RolloutState(version=1, overrides={"piedpiper": "on"})
            )
        before = _passthrough_count("upstream_busy"), _busy_callbacks(destination)
        with LoopbackServer(AuthSwitch(config), name="authswitch") as server:

            async def two() -> list[httpx.Response]:
                async with httpx.AsyncClient(timeout=10) as client:
                    slow = asyncio.create_task(client.get(f"{server.url}/account/first"))
                    await asyncio.sleep(0.1)  # the first one holds the only connection
                    fields = urlencode({"code": "secret-code-busy", "state": "secret-state"})
                    queued = asyncio.create_task(
                        client.post(
                            f"{server.url}/oidc/piedpiper/callback", content=fields, headers=FORM
                        )
                    )
                    return [await slow, await queued]

            first, second = asyncio.run(two())

    assert first.status_code == 200
    assert second.status_code == 503
    answer = second.json()
    assert answer["error"] == "upstream_busy"
    assert "limits.upstream_pool_size" in answer["message"]
    assert "secret" not in second.text
    assert not any(b"secret-code-busy" in body for body in legacy.bodies), "never sent"
    assert legacy.most_open == 1
    after = _passthrough_count("upstream_busy"), _busy_callbacks(destination)
    assert after == (before[0], before[1] + 1)


@pytest.mark.parametrize("size", [0, 100_001])
def test_pool_size_out_of_range_is_refused_naming_the_key(tmp_path: Path, size: int) -> None:
    path = write_proxy_files(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9")
    text = path.read_text() + f"limits:\n  upstream_pool_size: {size}\n"
    path.write_text(text)
    with pytest.raises(Exception, match="upstream_pool_size"):
        load_config(path)


def _slow_upload(port: int, index: int) -> socket.socket:
    """A pass-through POST whose body comes a few bytes at a time: its first bytes are sent,
    the rest never (a slow client of the legacy host)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        b"POST /upload/%d HTTP/1.1\r\nhost: legacy\r\ncontent-type: application/octet-stream\r\n"
        b"content-length: 100000\r\n\r\nfirst bytes" % index
    )
    return sock


def test_slow_pass_through_uploads_cannot_take_the_slots_reserved_for_callbacks(
    tmp_path: Path,
) -> None:
    """Pool of 4, a quarter reserved: three slow uploads hold three upstream connections, a
    fourth queues and gets 503, and a callback still goes through at once."""
    with CountingUpstream(delay=0) as legacy:
        config = load_config(
            write_proxy_files(
                tmp_path,
                legacy.url,
                legacy.url,
                limits={"upstream_pool_size": 4},
                timeouts={
                    "connect_seconds": 1,
                    "read_seconds": 5,
                    "upstream_pool_wait_seconds": 0.5,
                },
            )
        )
        assert config.limits.callback_reserve == 1
        with LoopbackServer(AuthSwitch(config), name="authswitch") as server:
            port = int(server.url.rsplit(":", 1)[1])
            uploads = [_slow_upload(port, i) for i in range(3)]
            for _ in range(500):
                if legacy.open == 3:
                    break
                time.sleep(0.01)
            assert legacy.open == 3, "each slow upload holds an upstream connection"
            fourth = _slow_upload(port, 3)
            fourth.settimeout(10)
            busy = _one_answer(fourth)  # head and body may come apart
            fields = urlencode({"code": "reserved-code", "state": "reserved-state"})
            callback = httpx.post(
                f"{server.url}/oidc/piedpiper/callback", content=fields, headers=FORM, timeout=10
            )
            for sock in [*uploads, fourth]:
                sock.close()
    assert busy.startswith(b"HTTP/1.1 503"), busy[:100]
    assert b"upstream_busy" in busy
    assert callback.status_code == 200
    assert legacy.bodies.count(fields.encode()) == 1


@pytest.mark.parametrize("reserve", [4, 5])
def test_a_reserve_that_leaves_pass_through_nothing_is_refused(
    tmp_path: Path, reserve: int
) -> None:
    path = write_proxy_files(
        tmp_path,
        "http://127.0.0.1:9",
        "http://127.0.0.1:9",
        limits={"upstream_pool_size": 4, "upstream_pool_callback_reserve": reserve},
    )
    with pytest.raises(ConfigError, match=rf"upstream_pool_callback_reserve \({reserve}\)"):
        load_config(path)
