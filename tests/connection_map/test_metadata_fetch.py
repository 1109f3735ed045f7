"""Fetching metadata over real loopback HTTP: https only, a deadline and a size cap."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connection_map import MetadataFetchError, fetch_metadata
from proxy.demo.loopback_server import LoopbackServer
from tests.conftest import answer_lifespan

BODY = (
    b'<?xml version="1.0"?><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"/>'
)
CAP = 4096


class MetadataHost:
    """An ASGI app that serves metadata well and badly, and counts what it was asked."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        path = scope["path"]
        self.paths.append(path)
        if path == "/md":
            await self._send(send, 200, [BODY])
        elif path == "/redirect":
            await self._send(send, 302, [b""], [(b"location", b"/md")])
        elif path == "/big":  # no Content-Length: only counting the stream stops it
            await self._send(send, 200, [b"x" * 1024] * 8)
        elif path == "/big-declared":
            await self._send(
                send, 200, [b"x" * (CAP + 1)], [(b"content-length", b"%d" % (CAP + 1))]
            )
        elif path == "/slow":  # a byte every 50 ms: never idle long enough for a read timeout
            await self._send(send, 200, [b"x"] * 16, delay=0.05)
        else:
            await self._send(send, 404, [b"not found"])

    async def _send(
        self,
        send: Any,
        status: int,
        chunks: list[bytes],
        headers: list[tuple[bytes, bytes]] | None = None,
        delay: float = 0.0,
    ) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers or []})
        for chunk in chunks:
            if delay:
                await asyncio.sleep(delay)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture(scope="module")
def host() -> Iterator[tuple[LoopbackServer, MetadataHost]]:
    app = MetadataHost()
    with LoopbackServer(app, name="metadata-host") as server:
        yield server, app


def test_metadata_is_fetched_over_http_when_allowed(
    host: tuple[LoopbackServer, MetadataHost],
) -> None:
    server, _ = host
    assert fetch_metadata(f"{server.url}/md", allow_http=True, max_bytes=CAP) == BODY
    assert fetch_metadata(f"{server.url}/redirect", allow_http=True, max_bytes=CAP) == BODY


def test_plain_http_is_refused_before_any_request(
    host: tuple[LoopbackServer, MetadataHost],
) -> None:
    server, app = host
    before = len(app.paths)
    with pytest.raises(MetadataFetchError, match=r"/md: not https \(use --allow-http"):
        fetch_metadata(f"{server.url}/md")
    assert len(app.paths) == before


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://idp.example/md.xml"])
def test_other_schemes_are_refused(url: str) -> None:
    with pytest.raises(MetadataFetchError, match="only https URLs can be fetched"):
        fetch_metadata(url, allow_http=True)


@pytest.mark.parametrize("path", ["/big", "/big-declared"])
def test_a_body_over_the_cap_is_refused(
    host: tuple[LoopbackServer, MetadataHost], path: str
) -> None:
    server, _ = host
    with pytest.raises(MetadataFetchError, match=f"{path}: larger than {CAP} bytes"):
        fetch_metadata(f"{server.url}{path}", allow_http=True, max_bytes=CAP)


def test_a_dripping_server_meets_the_total_deadline(
    host: tuple[LoopbackServer, MetadataHost],
) -> None:
    server, _ = host
    with pytest.raises(MetadataFetchError, match=r"/slow: not received within 0.5 s"):
        fetch_metadata(f"{server.url}/slow", allow_http=True, timeout=0.5)


def test_an_error_status_is_refused_without_echoing_the_query(
    host: tuple[LoopbackServer, MetadataHost],
) -> None:
    server, _ = host
    url = server.url.replace("http://", "http://admin:hunter2@") + "/gone?token=s3cr3t"
    with pytest.raises(MetadataFetchError) as caught:
        fetch_metadata(url, allow_http=True)
    assert str(caught.value) == f"http://127.0.0.1:{server.port}/gone?...: HTTP 404"


def test_nothing_listening_is_a_clear_error() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago, now closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(MetadataFetchError, match=f"127.0.0.1:{port}/md: ConnectError"):
        fetch_metadata(f"http://127.0.0.1:{port}/md", allow_http=True, timeout=2)


def test_a_redirect_to_plain_http_is_refused() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"Location": "http://idp.example/md"})

    with pytest.raises(MetadataFetchError, match=r"http://idp.example/md: not https"):
        fetch_metadata("https://idp.example/md", transport=httpx.MockTransport(answer))
    assert seen == ["https://idp.example/md"], "the downgraded request is never sent"
