"""SIGTERM while callbacks are in flight: every accepted request still gets its answer."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from proxy.demo.loopback_server import LoopbackServer
from tests.conftest import free_port, write_proxy_files
from tests.proxy.test_serve_command import _wait_ready


async def _slow_legacy(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await asyncio.sleep(1.0)  # a legacy handler still working when SIGTERM arrives
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"done"})


async def _load(url: str, count: int) -> list[int | str]:
    async with httpx.AsyncClient(timeout=20) as client:

        async def one(i: int) -> int | str:
            try:
                body = f"RelayState=r{i}".encode()
                response = await client.post(
                    url, content=body, headers={"content-type": "application/x-www-form-urlencoded"}
                )
                return response.status_code
            except httpx.HTTPError as exc:
                return type(exc).__name__

        return await asyncio.gather(*(one(i) for i in range(count)))


def test_sigterm_during_load_loses_no_accepted_request(
    tmp_path: Path, providers: dict[str, LoopbackServer]
) -> None:
    with LoopbackServer(_slow_legacy, name="slow-legacy") as legacy:
        port, ops_port = free_port(), free_port()
        config = write_proxy_files(
            tmp_path,
            legacy.url,
            providers["new"].url,
            listen={"host": "127.0.0.1", "port": port},
            ops={"port": ops_port},
        )
        log = tmp_path / "serve.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "proxy", "serve", "--config", str(config)],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(f"http://127.0.0.1:{ops_port}", process, log)

            async def scenario() -> list[int | str]:
                load = asyncio.create_task(_load(url + "/login/callback", 20))
                await asyncio.sleep(0.4)  # all 20 accepted and waiting on legacy
                process.send_signal(signal.SIGTERM)
                return await load

            started = time.monotonic()
            results = asyncio.run(scenario())
            elapsed = time.monotonic() - started
            exit_code = process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    assert results == [200] * 20, results
    assert elapsed < 10
    assert exit_code in (0, -signal.SIGTERM)
    assert "Shutting down" in log.read_text()


async def _one_callback(port: int, i: int) -> str:
    """'ok', 'refused' (before anything was sent: safe to retry elsewhere) or 'lost'."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return "refused"
    body = f"RelayState=r{i}".encode()
    writer.write(
        b"POST /login/callback HTTP/1.1\r\nhost: authswitch\r\nconnection: close\r\n"
        b"content-type: application/x-www-form-urlencoded\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(body), body)
    )
    try:
        answer = await asyncio.wait_for(reader.read(), 30)
    except (ConnectionError, TimeoutError):
        return "lost"
    finally:
        writer.close()
    return "ok" if answer.startswith(b"HTTP/1.1 200") else "lost"


@pytest.mark.parametrize("workers", [1, 3])
def test_sigterm_under_a_stream_of_new_connections_refuses_new_ones_and_loses_none(
    tmp_path: Path, providers: dict[str, LoopbackServer], workers: int
) -> None:
    """A rolling restart: callbacks keep arriving on new connections while SIGTERM lands.
    Each is either answered or refused before it was sent; none is reset after sending."""
    with LoopbackServer(_slow_legacy, name="slow-legacy") as legacy:
        port, ops_port = free_port(), free_port()
        config = write_proxy_files(
            tmp_path,
            legacy.url,
            providers["new"].url,
            listen={"host": "127.0.0.1", "port": port},
            ops={"port": ops_port},
        )
        log = tmp_path / "serve.log"
        options = ["--workers", str(workers), "--graceful-seconds", "20"]
        process = subprocess.Popen(
            [sys.executable, "-m", "proxy", "serve", "--config", str(config), *options],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_ready(f"http://127.0.0.1:{ops_port}", process, log)

            async def stream() -> list[str]:
                calls = []
                for i in range(150):
                    calls.append(asyncio.create_task(_one_callback(port, i)))
                    if i == 50:
                        process.send_signal(signal.SIGTERM)
                    await asyncio.sleep(0.02)
                return await asyncio.gather(*calls)

            results = asyncio.run(stream())
            exit_code = process.wait(timeout=40)
        finally:
            if process.poll() is None:
                process.kill()
    assert results.count("lost") == 0, results
    assert results[:50] == ["ok"] * 50
    assert results[-1] == "refused", "new connections are refused once shutdown begins"
    assert exit_code in (0, -signal.SIGTERM)
