"""authswitch sits in front of the whole legacy host: everything else passes through as is."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from proxy.app import AuthSwitch
from proxy.config import load_config
from proxy.demo.loopback_server import LoopbackServer
from tests.conftest import ProxyEnv, sha256, write_proxy_files
from tests.proxy.test_upstream_pool import _passthrough_count

T = TypeVar("T")


def test_ordinary_page_keeps_method_path_query_and_headers(proxy_env: ProxyEnv) -> None:
    response = httpx.get(
        f"{proxy_env.url}/account/settings%20page?tab=security&x=%2F",
        headers={"x-custom": "kept", "cookie": "legacy_sid=abc"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json() == {"landed": "legacy", "path": "/account/settings page"}
    seen = proxy_env.received("legacy")[-1]
    assert seen["query_string"] == "tab=security&x=%2F"
    headers = dict(seen["headers"])
    assert headers["x-custom"] == "kept"
    assert headers["cookie"] == "legacy_sid=abc", "the legacy host's own cookies still reach it"
    assert headers["host"] == proxy_env.url.removeprefix("http://"), "Host is preserved"
    assert headers["x-forwarded-proto"] == "http"


def test_redirects_and_set_cookie_pass_back_unfollowed(proxy_env: ProxyEnv) -> None:
    response = httpx.get(f"{proxy_env.url}/redirect-test", timeout=10, follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == "/somewhere"
    assert "legacy_redirect=" in response.headers["set-cookie"]


def test_large_bodies_stream_both_ways(proxy_env: ProxyEnv) -> None:
    big = httpx.get(f"{proxy_env.url}/big", timeout=10)
    assert big.status_code == 200
    assert len(big.content) == 1024 * 1024

    upload = os.urandom(3 * 1024 * 1024)  # larger than the callback cap: not a callback path
    response = httpx.post(
        f"{proxy_env.url}/api/upload",
        content=upload,
        headers={"content-type": "application/octet-stream"},
        timeout=10,
    )
    assert response.status_code == 200
    assert proxy_env.received("legacy")[-1]["body_sha256"] == hashlib.sha256(upload).hexdigest()


def test_chunked_request_body_passes_through(proxy_env: ProxyEnv) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield b"part-one;"
        yield b"part-two"

    response = httpx.put(f"{proxy_env.url}/api/chunked", content=chunks(), timeout=10)
    assert response.status_code == 200
    assert proxy_env.received("legacy")[-1]["body_sha256"] == sha256(b"part-one;part-two")
    assert proxy_env.received("legacy")[-1]["method"] == "PUT"


@pytest.mark.parametrize(
    "path", ["/some/page?code=leaky-code-value", "/login/callback?code=leaky-code-value"]
)
def test_legacy_down_answers_502_without_secrets(
    tmp_path_factory: pytest.TempPathFactory,
    providers: dict[str, LoopbackServer],
    path: str,
) -> None:
    directory = tmp_path_factory.mktemp("legacy-down")
    closed = LoopbackServer(name="closed")
    closed.stop()
    config = load_config(write_proxy_files(directory, closed.url, providers["new"].url))
    with LoopbackServer(AuthSwitch(config), name="authswitch") as server:
        response = httpx.post(
            server.url + path,
            content=b"RelayState=leaky-relay",
            headers={"content-type": "application/x-www-form-urlencoded"},
            timeout=10,
        )
    assert response.status_code == 502
    assert response.json()["error"] == "legacy_unavailable"
    assert "leaky" not in response.text
    assert response.headers["x-request-id"] == response.json()["request_id"]


def test_legacy_too_slow_is_cut_off_by_the_read_timeout(
    tmp_path_factory: pytest.TempPathFactory, providers: dict[str, LoopbackServer]
) -> None:

    answered = threading.Event()

    async def slow_app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        # Never answers while the proxy waits; lets go once the test has its 502, so stopping
        # the server does not wait out a long sleep.
        await asyncio.to_thread(answered.wait, 10)

    directory = tmp_path_factory.mktemp("legacy-slow")
    with LoopbackServer(slow_app, name="slow") as slow:
        path = write_proxy_files(
            directory,
            slow.url,
            providers["new"].url,
            timeouts={"connect_seconds": 1, "read_seconds": 0.5},
        )
        with LoopbackServer(AuthSwitch(load_config(path)), name="authswitch") as server:
            response = httpx.get(server.url + "/anything", timeout=10)
            answered.set()
    assert response.status_code == 502
    assert response.json()["error"] == "upstream_timeout"


def test_an_upstream_that_breaks_off_mid_body_aborts_the_client_connection(
    tmp_path_factory: pytest.TempPathFactory, providers: dict[str, LoopbackServer]
) -> None:

    async def serve_truncated(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        # Chunked, so only an aborted connection can tell the client the body is incomplete.
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n" + b"x" * 10)
        await writer.drain()
        writer.close()

    async def scenario() -> type[BaseException] | int:
        upstream = await asyncio.start_server(serve_truncated, "127.0.0.1", 0)
        port = upstream.sockets[0].getsockname()[1]
        directory = tmp_path_factory.mktemp("truncated")
        path = write_proxy_files(directory, f"http://127.0.0.1:{port}", providers["new"].url)
        server = LoopbackServer(AuthSwitch(load_config(path)), name="authswitch").start()
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                try:
                    response = await client.get(server.url + "/download")
                except httpx.HTTPError as exc:
                    return type(exc)
                return len(response.content)
        finally:
            server.stop()
            upstream.close()

    before = _passthrough_count("upstream_truncated")
    outcome = asyncio.run(scenario())
    assert outcome is httpx.RemoteProtocolError, f"a short body was passed off as whole: {outcome}"
    assert _passthrough_count("upstream_truncated") == before + 1, "and counted"


async def _record_head(
    heads: list[bytes], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    heads.append(await reader.readuntil(b"\r\n\r\n"))
    writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
    await writer.drain()
    writer.close()


def _through_raw_legacy(
    directory: Path,
    providers: dict[str, LoopbackServer],
    client: Callable[[str], Awaitable[T]],
) -> tuple[T, list[bytes]]:
    """Run `client(proxy_url)` against authswitch in front of a raw-socket legacy that records
    each request head as the bytes it received."""
    heads: list[bytes] = []

    async def scenario() -> T:
        upstream = await asyncio.start_server(
            functools.partial(_record_head, heads), "127.0.0.1", 0
        )
        port = upstream.sockets[0].getsockname()[1]
        path = write_proxy_files(directory, f"http://127.0.0.1:{port}", providers["new"].url)
        server = LoopbackServer(AuthSwitch(load_config(path)), name="authswitch").start()
        try:
            return await client(server.url)
        finally:
            server.stop()
            upstream.close()

    return asyncio.run(scenario()), heads


def test_a_get_without_a_body_reaches_legacy_without_body_headers(
    tmp_path_factory: pytest.TempPathFactory, providers: dict[str, LoopbackServer]
) -> None:
    """Transparency at the byte level: no Content-Length or Transfer-Encoding is invented."""

    async def client(url: str) -> tuple[int, int]:
        async with httpx.AsyncClient(timeout=10) as http:
            plain = await http.get(url + "/account?tab=1")
            with_body = await http.post(url + "/account", content=b"a=1")
        return plain.status_code, with_body.status_code

    statuses, heads = _through_raw_legacy(tmp_path_factory.mktemp("raw-legacy"), providers, client)

    assert statuses == (204, 204)
    plain_head, post_head = (head.lower() for head in heads)
    assert plain_head.startswith(b"get /account?tab=1 http/1.1\r\n")
    assert b"\r\ncontent-length:" not in plain_head, plain_head
    assert b"\r\ntransfer-encoding:" not in plain_head, plain_head
    # The same upstream does see a body's framing when there is one.
    assert b"\r\ncontent-length: 3\r\n" in post_head or b"transfer-encoding" in post_head


def test_header_bytes_beyond_ascii_reach_legacy_unchanged(
    tmp_path_factory: pytest.TempPathFactory, providers: dict[str, LoopbackServer]
) -> None:
    """A browser's raw UTF-8 cookie value must arrive as the same bytes, not re-encoded."""

    async def client(url: str) -> bytes:
        host, _, port_text = url.removeprefix("http://").partition(":")
        reader, writer = await asyncio.open_connection(host, int(port_text))
        writer.write(
            b"GET /account HTTP/1.1\r\nHost: a\r\nCookie: name=Jos\xc3\xa9\r\n"
            b"X-Note: caf\xc3\xa9 \xe2\x82\xac\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()
        answer = await reader.read()
        writer.close()
        return answer

    answer, heads = _through_raw_legacy(tmp_path_factory.mktemp("raw-utf8"), providers, client)

    assert answer.startswith(b"HTTP/1.1 204")
    assert b"\r\ncookie: name=Jos\xc3\xa9\r\n" in heads[0]
    assert b"\r\nx-note: caf\xc3\xa9 \xe2\x82\xac\r\n" in heads[0]


def test_legacy_receives_the_client_headers_in_order_and_nothing_of_the_http_client(
    tmp_path_factory: pytest.TempPathFactory, providers: dict[str, LoopbackServer]
) -> None:
    """No User-Agent, Accept, Accept-Encoding or Content-Type of aiohttp's own; the client's
    headers in the client's order (Host first, as aiohttp writes it), then the X-Forwarded-*
    authswitch sets."""

    async def client(url: str) -> list[bytes]:
        host, _, port_text = url.removeprefix("http://").partition(":")
        answers = []
        for request in (
            b"POST /account/save HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nX-B: 2\r\n"
            b"Connection: close\r\n\r\na=1",
            b"GET /account HTTP/1.1\r\nX-A: 1\r\nHost: a\r\nConnection: close\r\n\r\n",
        ):
            reader, writer = await asyncio.open_connection(host, int(port_text))
            writer.write(request)
            await writer.drain()
            answers.append(await reader.read())
            writer.close()
        return answers

    answers, heads = _through_raw_legacy(tmp_path_factory.mktemp("raw-order"), providers, client)

    assert all(answer.startswith(b"HTTP/1.1 204") for answer in answers)
    names = [
        [line.partition(b":")[0].lower() for line in head.split(b"\r\n")[1:] if line]
        for head in heads
    ]
    forwarded = [b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"]
    assert names == [
        [b"host", b"content-length", b"x-b", *forwarded],
        [b"host", b"x-a", *forwarded],
    ]
