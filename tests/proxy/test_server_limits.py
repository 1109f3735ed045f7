"""Hostile clients on real sockets: oversized or endless request heads, slowloris, idle and
surplus connections are refused or closed, and normal callbacks keep working meanwhile."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from proxy.app import AuthSwitch
from proxy.config import Config, load_config
from proxy.demo.loopback_server import LoopbackServer
from proxy.ops.server import uvicorn_config
from tests.conftest import write_proxy_files


class ServedAuthSwitch:
    """authswitch served exactly as `authswitch serve` serves it, on a loopback port."""

    def __init__(self, config: Config) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(
            uvicorn_config(config, AuthSwitch(config), workers=1, graceful_seconds=2)
        )
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._server.serve([self._listener]),), daemon=True
        )

    def __enter__(self) -> ServedAuthSwitch:
        self._thread.start()
        while not self._server.started:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._listener.close()

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        return sock


@pytest.fixture
def serve(tmp_path: Path, providers: dict[str, LoopbackServer]) -> Iterator[Any]:
    """Starts authswitch with `server:` settings; yields a factory."""
    running: list[ServedAuthSwitch] = []

    def start(**server: Any) -> ServedAuthSwitch:
        path = write_proxy_files(
            tmp_path, providers["legacy"].url, providers["new"].url, server=server
        )
        instance = ServedAuthSwitch(load_config(path)).__enter__()
        running.append(instance)
        return instance

    yield start
    for instance in running:
        instance.__exit__()


def _answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (or 10 s pass)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return data


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def _callback_works(url: str) -> bool:
    response = httpx.post(
        f"{url}/login/callback",
        content=b"RelayState=r1",
        headers={"content-type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    return response.status_code == 200 and response.json()["landed"] == "legacy"


def test_oversized_header_gets_431_and_never_reaches_legacy(
    serve: Any, providers: dict[str, LoopbackServer], captured_logs: pytest.LogCaptureFixture
) -> None:
    server = serve()
    before = len(providers["legacy"].app.state.received)  # type: ignore[union-attr]
    cookie = b"cookie: sid=secret-cookie-value; pad=" + b"a" * 40_000
    with server.connect() as sock:
        sock.sendall(b"GET /account?code=leaky-code HTTP/1.1\r\nhost: x\r\n" + cookie + b"\r\n\r\n")
        answer = _answer(sock)
    assert _status(answer) == 431
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"] == "header_too_large"
    assert len(providers["legacy"].app.state.received) == before  # type: ignore[union-attr]
    assert b"secret-cookie-value" not in answer and b"leaky" not in answer
    refusals = [
        r for r in captured_logs.records if r.getMessage() == "request refused before routing"
    ]
    assert [r.fields["reason"] for r in refusals] == ["header_too_large"]
    assert not any("secret-cookie-value" in str(r.__dict__) for r in captured_logs.records)


def test_endless_header_line_is_refused_before_it_is_all_sent(serve: Any) -> None:
    """A 16 MiB header: refused once the limit is passed, not buffered whole."""
    server = serve()
    with server.connect() as sock:
        sock.sendall(b"POST /login/callback HTTP/1.1\r\nhost: x\r\nx-big: ")
        sent = 0
        try:
            while sent < 16 * 1024 * 1024:
                sock.sendall(b"a" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = _answer(sock)
    assert sent < 16 * 1024 * 1024, "the server kept reading an endless header"
    assert answer == b"" or _status(answer) == 431


def test_too_many_header_lines_get_431(serve: Any) -> None:
    server = serve(max_headers=50)
    lines = b"".join(b"x-h%d: v\r\n" % i for i in range(51))
    with server.connect() as sock:
        sock.sendall(b"GET /account HTTP/1.1\r\nhost: x\r\n" + lines + b"\r\n")
        answer = _answer(sock)
    assert _status(answer) == 431
    assert b"too_many_headers" in answer
    lines = b"".join(b"x-h%d: v\r\n" % i for i in range(48))
    with server.connect() as sock:  # 50 lines in all pass
        sock.sendall(b"GET /account HTTP/1.1\r\nhost: x\r\n" + lines + b"connection: close\r\n\r\n")
        assert _status(_answer(sock)) == 200


def test_slowloris_is_answered_408_and_closed_at_the_head_deadline(serve: Any) -> None:
    server = serve(header_seconds=1)
    with server.connect() as sock:
        sock.settimeout(0.2)
        head = b"GET /account HTTP/1.1\r\nhost: x\r\nx-slow: " + b"a" * 100
        answer = b""
        for byte in head:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                answer += sock.recv(65536)
            except TimeoutError:
                continue
            if answer:
                break
        assert answer, "the slow client was never cut off"
        assert _status(answer) == 408
    assert _callback_works(server.url)


def test_silent_connection_is_closed_at_the_head_deadline(serve: Any) -> None:
    server = serve(header_seconds=1)
    with server.connect() as sock:
        sock.settimeout(5)  # recv raises TimeoutError if the connection stays open
        assert sock.recv(1) == b"", "closed without an answer: it asked nothing"


def test_connections_beyond_the_cap_are_closed_and_normal_ones_resume(serve: Any) -> None:
    server = serve(max_connections=20)
    held = [server.connect() for _ in range(20)]
    try:
        time.sleep(0.2)  # all accepted
        with server.connect() as extra:
            extra.sendall(b"GET /account HTTP/1.1\r\nhost: x\r\n\r\n")
            assert _answer(extra) == b"", "a connection over the cap is closed at once"
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    assert _callback_works(server.url)


def test_connection_idle_longer_than_five_seconds_still_serves_a_post(serve: Any) -> None:
    """Load balancers keep idle connections 60 s; authswitch's default idle timeout outlasts
    them, so a POST sent after a pause lands on an open connection."""
    server = serve()
    body = b"RelayState=r1"
    request = (
        b"POST /login/callback HTTP/1.1\r\nhost: x\r\n"
        b"content-type: application/x-www-form-urlencoded\r\ncontent-length: %d\r\n\r\n%s"
        % (len(body), body)
    )
    with server.connect() as sock, sock.makefile("rb") as reader:
        for pause in (0.0, 6.0):
            time.sleep(pause)
            sock.sendall(request)
            status_line = reader.readline()
            assert status_line.startswith(b"HTTP/1.1 200"), status_line
            length = 0
            while (line := reader.readline()) != b"\r\n":
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            assert json.loads(reader.read(length))["landed"] == "legacy"


def test_many_slow_clients_do_not_stop_normal_callbacks(serve: Any) -> None:
    server = serve(header_seconds=30)
    slow = []
    try:
        for _ in range(300):
            sock = server.connect()
            sock.sendall(b"POST /login/callback HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 20_000)
            slow.append(sock)
        assert all(_callback_works(server.url) for _ in range(5))
    finally:
        for sock in slow:
            sock.close()


# -- chunked trailers ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/account/page", "/oidc/hooli/callback"])
def test_trailer_fields_never_become_forwarded_request_headers(
    serve: Any, providers: dict[str, LoopbackServer], path: str
) -> None:
    """A trailer `Host`, `Authorization` or `X-Forwarded-For` must not reach legacy as a
    header: trailers are not part of the request head, for pass-through and callbacks alike."""
    server = serve()
    body = b"a=1"
    request = (
        b"POST " + path.encode() + b" HTTP/1.1\r\nHost: login.legacy.example\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        + b"%x\r\n%s\r\n0\r\n"
        % (len(body), body)
        + b"Host: evil.example\r\nAuthorization: Bearer trailer-token\r\n"
        b"X-Forwarded-For: 198.51.100.66\r\n\r\n"
    )
    before = len(providers["legacy"].app.state.received)  # type: ignore[union-attr]
    with server.connect() as sock:
        sock.sendall(request)
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    received = providers["legacy"].app.state.received[before:]  # type: ignore[union-attr]
    assert len(received) == 1
    headers = [(name.lower(), value) for name, value in received[0]["headers"]]
    assert ("authorization", "Bearer trailer-token") not in headers
    assert not [v for n, v in headers if n == "host" and "evil" in v]
    assert not [v for n, v in headers if n == "x-forwarded-for" and "198.51.100.66" in v]


@pytest.mark.parametrize("path", ["/account/page", "/oidc/hooli/callback"])
def test_a_trailer_line_that_never_ends_closes_the_connection_before_it_is_buffered(
    serve: Any, path: str
) -> None:
    """httptools buffers a trailer line, like a header line, until it ends: one that never
    ends is cut at max_header_bytes (the connection closed), not held in memory until the
    client stops; other clients are served meanwhile."""
    server = serve(max_header_bytes=4096)
    head = (
        b"POST " + path.encode() + b" HTTP/1.1\r\nHost: login.legacy.example\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n3\r\na=1\r\n0\r\nX-Endless: "
    )
    sent = 0
    with server.connect() as sock:
        sock.sendall(head)
        piece = b"a" * 65536
        try:
            while sent < 256 * 1024 * 1024:
                sock.sendall(piece)
                sent += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass
    assert sent < 64 * 1024 * 1024, f"{sent} bytes of one trailer line were taken in"
    assert all(_callback_works(server.url) for _ in range(3))


def test_a_request_with_two_host_headers_is_refused_not_forwarded(
    serve: Any, providers: dict[str, LoopbackServer]
) -> None:
    """Which Host would the upstream believe? Legacy took the last, X-Forwarded-Host the first."""
    server = serve()
    before = len(providers["legacy"].app.state.received)  # type: ignore[union-attr]
    with server.connect() as sock:
        sock.sendall(b"GET /account HTTP/1.1\r\nHost: a.example\r\nHost: evil.example\r\n\r\n")
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:100]
    assert b"duplicate_host" in answer
    assert len(providers["legacy"].app.state.received) == before  # type: ignore[union-attr]
