"""The forwarder's own HTTP/1.1 client against upstreams that send exactly the bytes a test
scripts: keep-alive reuse, the at-most-once rule when a pooled connection dies, every way an
answer can be framed, truncation and limits, timeouts, request bodies, backpressure, the pool
bound and TLS. Each scenario runs on asyncio's loop and on uvloop (what `serve` runs on)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import socket
import ssl
import struct
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

import pytest
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from proxy.http import upstream_pool
from proxy.http.asgi_types import Message, RawHeaders
from proxy.http.forwarder import (
    HttpForwarder,
    ResponseTruncated,
    UpstreamFailed,
    UpstreamUnavailable,
)
from proxy.http.upstream_connection import UpstreamConnection
from tests.conftest import free_port

Run = Callable[[Coroutine[Any, Any, None]], None]
SECRET = b"sid=upstream-secret-cookie"


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Run:
    """Runs a scenario to its end on a fresh loop of the parameter's kind, bounded in time."""
    factory = uvloop.new_event_loop if request.param == "uvloop" else asyncio.new_event_loop

    def run(scenario: Coroutine[Any, Any, None]) -> None:
        async def bounded() -> None:
            async with asyncio.timeout(15):
                await scenario

        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(bounded())

    return run


# The upstream side: raw bytes, scripted per connection


@dataclass
class Request:
    """A request as the upstream read it: the head's lines and the decoded body."""

    head: bytes
    body: bytes
    chunked_body: bool = False

    @property
    def line(self) -> bytes:
        return self.head.split(b"\r\n", 1)[0]

    @property
    def headers(self) -> RawHeaders:
        pairs = []
        for line in self.head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            pairs.append((name, value.strip(b" \t")))
        return pairs

    def values(self, name: bytes) -> list[bytes]:
        return [v for n, v in self.headers if n.lower() == name]


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """The next request on a connection, body included; None when the client closed it."""
    try:
        head = (await reader.readuntil(b"\r\n\r\n"))[:-4]
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    request = Request(head, b"")
    if b"chunked" in request.values(b"transfer-encoding"):
        request.chunked_body = True
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":
                    pass  # trailer fields
                break
            request.body += await reader.readexactly(size)
            assert await reader.readexactly(2) == b"\r\n"
    elif lengths := request.values(b"content-length"):
        request.body = await reader.readexactly(int(lengths[0]))
    return request


class Peer:
    """One connection an upstream accepted, as its script sees it."""

    def __init__(
        self, upstream: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.upstream = upstream
        self.reader = reader
        self.writer = writer
        self.index = upstream.accepted  # 0 for the first connection the upstream accepted

    async def request(self) -> Request | None:
        request = await read_request(self.reader)
        if request is not None:
            self.upstream.requests.append((self.index, request))
        return request

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def until_closed(self) -> None:
        """Read and discard until the client closes the connection."""
        with contextlib.suppress(ConnectionError):
            while await self.reader.read(65536):
                pass

    def reset(self) -> None:
        """Close with a TCP RST instead of a FIN."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    def open(self) -> bool:
        """Whether the client still holds the connection (it has not closed its end)."""
        if self.writer.is_closing():
            return False
        fileno = self.writer.get_extra_info("socket").fileno()
        with socket.fromfd(fileno, socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                return probe.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
            except BlockingIOError:
                return True
            except OSError:
                return False


Script = Callable[[Peer], Awaitable[None]]


class Upstream:
    """A loopback server on the test's loop that runs `script` for each connection it accepts
    and records what it received. A script's own mistakes fail the test at exit."""

    def __init__(self, script: Script, tls: ssl.SSLContext | None = None) -> None:
        self._script = script
        self._tls = tls
        self._server: asyncio.Server | None = None
        self.accepted = 0
        self.peers: list[Peer] = []
        self.requests: list[tuple[int, Request]] = []  # (connection index, request)
        self.errors: list[BaseException] = []
        self.url = ""
        self._handlers: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Upstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._tls)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"{'https' if self._tls else 'http'}://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        for handler in self._handlers:
            handler.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self.errors and exc is None:
            raise self.errors[0]

    def open(self) -> int:
        return sum(peer.open() for peer in self.peers)

    @property
    def bodies(self) -> list[bytes]:
        return [request.body for _, request in self.requests]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = Peer(self, reader, writer)
        self.accepted += 1
        self.peers.append(peer)
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        try:
            await self._script(peer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # the test is over; Python 3.11's start_server logs a handler ending cancelled
        except Exception as exc:
            self.errors.append(exc)
        finally:
            writer.close()


def answering(*answers: bytes, then: str = "keep") -> Script:
    """A script that reads requests and answers them with `answers` in turn (the last one
    repeated); `then` = "close" closes the connection after the last answer."""

    async def script(peer: Peer) -> None:
        sent = 0
        while await peer.request() is not None:
            await peer.send(answers[min(sent, len(answers) - 1)])
            sent += 1
            if then == "close" and sent >= len(answers):
                return

    return script


def ok(body: bytes, *headers: bytes) -> bytes:
    """A keep-alive 200 with a Content-Length."""
    extra = b"".join(header + b"\r\n" for header in headers)
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%b\r\n%b" % (len(body), extra, body)


# The client side


class Relay:
    """A recording ASGI `send`: what the client would have received. With `pause_every`, it
    sleeps `pause` seconds every that many messages (at most `pauses` times), as a slow
    client does."""

    def __init__(self, pause_every: int = 0, pause: float = 0.0, pauses: int = 1 << 30) -> None:
        self.messages: list[Message] = []
        self._pause_every = pause_every
        self._pause = pause
        self._pauses = pauses

    async def __call__(self, message: Message) -> None:
        self.messages.append(message)
        if self._pause_every and len(self.messages) % self._pause_every == 0 and self._pauses:
            self._pauses -= 1
            await asyncio.sleep(self._pause)

    @property
    def status(self) -> int:
        assert self.messages[0]["type"] == "http.response.start"
        return int(self.messages[0]["status"])

    @property
    def headers(self) -> RawHeaders:
        return list(self.messages[0]["headers"])

    def header(self, name: bytes) -> list[bytes]:
        return [v for n, v in self.headers if n.lower() == name]

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages[1:])

    @property
    def complete(self) -> bool:
        """Whether the answer was relayed to its end (a last body message was sent)."""
        last = self.messages[-1] if self.messages else {}
        return last.get("type") == "http.response.body" and not last.get("more_body", False)


@contextlib.asynccontextmanager
async def started(**settings: Any) -> AsyncIterator[HttpForwarder]:
    options: dict[str, Any] = {
        "connect_seconds": 2.0,
        "read_seconds": 5.0,
        "keepalive_seconds": 5.0,
        **settings,
    }
    forwarder = HttpForwarder(**options)
    await forwarder.start()
    try:
        yield forwarder
    finally:
        await forwarder.close()


async def exchange(
    forwarder: HttpForwarder,
    url: str,
    *,
    method: str = "GET",
    headers: Iterable[tuple[bytes, bytes]] = (),
    body: bytes | AsyncIterator[bytes] | None = None,
    pass_through: bool = False,
    relay: Relay | None = None,
) -> Relay:
    relay = relay if relay is not None else Relay()
    status = await forwarder.forward(
        relay, method=method, url=url, headers=list(headers), body=body, pass_through=pass_through
    )
    assert status == relay.status
    return relay


async def stream(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        await asyncio.sleep(0)
        yield chunk


def exception_text(exc: BaseException) -> str:
    """Everything an exception could put in a log: its traceback and every chained one."""
    texts = ["".join(traceback.format_exception(exc))]
    seen: BaseException | None = exc
    while seen is not None:
        texts.append(repr(seen) + str(seen) + repr(vars(seen)))
        seen = seen.__cause__ or seen.__context__
    return "\n".join(texts)


# 1. keep-alive


def test_twenty_sequential_requests_share_one_connection_and_arrive_intact(run: Run) -> None:
    async def script(peer: Peer) -> None:
        while (request := await peer.request()) is not None:
            number = int(request.line.split(b" ")[1].rsplit(b"/", 1)[1])
            await peer.send(ok(bytes([number]) * (number * 1000 + 1), b"X-Number: %d" % number))

    async def scenario() -> None:
        async with Upstream(script) as upstream, started() as forwarder:
            for number in range(20):
                relay = await exchange(forwarder, f"{upstream.url}/item/{number}")
                assert relay.status == 200
                assert relay.header(b"x-number") == [b"%d" % number]
                assert relay.body == bytes([number]) * (number * 1000 + 1)
                assert relay.complete
            assert upstream.accepted == 1
            assert [r.line for _, r in upstream.requests] == [
                b"GET /item/%d HTTP/1.1" % n for n in range(20)
            ]

    run(scenario())


# 2. and 3. a pooled connection the upstream closes


def test_a_callback_after_the_upstream_closed_an_idle_connection_goes_once_on_a_new_one(
    run: Run,
) -> None:
    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(ok(b"first"))
        await asyncio.sleep(0.05)  # a moment later, its idle timeout

    async def scenario() -> None:
        async with Upstream(script) as upstream, started() as forwarder:
            assert (await exchange(forwarder, upstream.url + "/")).body == b"first"
            await asyncio.sleep(0.3)
            relay = await exchange(
                forwarder, upstream.url + "/callback", method="POST", body=b"code=single-use"
            )
            assert relay.status == 200
            assert upstream.accepted == 2
            assert upstream.bodies.count(b"code=single-use") == 1

    run(scenario())


def race_script(how: str) -> Script:
    """The first connection answers its first request, then reads the next one whole and
    closes (FIN) or resets (RST) without answering; later connections answer everything."""

    async def script(peer: Peer) -> None:
        if peer.index == 0:
            await peer.request()
            await peer.send(ok(b"warm"))
            await peer.request()
            if how == "reset":
                peer.reset()
            return
        while await peer.request() is not None:
            await peer.send(ok(b"second connection"))

    return script


@pytest.mark.parametrize("how", ["close", "reset"])
@pytest.mark.parametrize(
    ("method", "body", "pass_through"),
    [
        ("POST", "bytes", False),
        ("GET", "none", False),
        ("POST", "bytes", True),
        ("GET", "stream", True),
    ],
)
def test_a_request_the_upstream_read_and_dropped_is_not_sent_again(
    run: Run, how: str, method: str, body: str, pass_through: bool
) -> None:
    """A callback (pass_through=False), a non-idempotent request, or one whose body was a stream
    that can't be replayed: the upstream may have acted on it, so it is never resent."""
    payload = b"code=once-only"

    async def scenario() -> None:
        async with Upstream(race_script(how)) as upstream, started() as forwarder:
            await exchange(forwarder, upstream.url + "/warm")
            content = {"bytes": payload, "none": None, "stream": stream(payload)}[body]
            with pytest.raises(UpstreamFailed) as failed:
                await exchange(
                    forwarder,
                    upstream.url + "/cb",
                    method=method,
                    body=content,
                    pass_through=pass_through,
                )
            assert failed.value.reason == "upstream_disconnected"
            assert upstream.accepted == 1, "no second connection: not resent"
            assert [r.line for _, r in upstream.requests].count(
                f"{method} /cb HTTP/1.1".encode()
            ) == 1
            if body != "none":
                assert upstream.bodies.count(payload) == 1

    run(scenario())


@pytest.mark.parametrize("how", ["close", "reset"])
def test_a_pass_through_get_dropped_on_a_reused_connection_is_resent_once(
    run: Run, how: str
) -> None:
    async def scenario() -> None:
        async with Upstream(race_script(how)) as upstream, started() as forwarder:
            await exchange(forwarder, upstream.url + "/warm")
            relay = await exchange(forwarder, upstream.url + "/page", pass_through=True)
            assert relay.status == 200
            assert relay.body == b"second connection"
            assert upstream.accepted == 2
            assert [(i, r.line) for i, r in upstream.requests] == [
                (0, b"GET /warm HTTP/1.1"),
                (0, b"GET /page HTTP/1.1"),
                (1, b"GET /page HTTP/1.1"),
            ]

    run(scenario())


def test_a_pass_through_get_is_resent_only_once(run: Run) -> None:
    async def script(peer: Peer) -> None:
        await peer.request()  # every connection: read the request, close without answering

    async def scenario() -> None:
        async with Upstream(script) as upstream, started() as forwarder:
            with pytest.raises(UpstreamFailed) as failed:
                await exchange(forwarder, upstream.url + "/page", pass_through=True)
            assert failed.value.reason == "upstream_disconnected"
            assert upstream.accepted == 2
            assert len(upstream.requests) == 2

    run(scenario())


# 4. framing


BINARY = bytes(range(256)) * 64 + b"\r\n\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n"

FRAMED: dict[str, tuple[bytes, int, RawHeaders, bytes]] = {
    # name: (answer, status, headers the client gets, body the client gets)
    "content-length": (
        ok(BINARY, b"Content-Type: application/octet-stream", b"Set-Cookie: a=1"),
        200,
        [
            (b"Content-Length", b"%d" % len(BINARY)),
            (b"Content-Type", b"application/octet-stream"),
            (b"Set-Cookie", b"a=1"),
        ],
        BINARY,
    ),
    "chunked": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n"
        b"X-Kept: yes\r\n\r\n"
        b"5;ext=1\r\nhello\r\n"
        b'1;name="quoted value";other\r\n \r\n'
        b"d\r\nworld!\r\n0\r\n\r\n\r\n"
        b"0\r\nX-Sum: abc\r\nX-Other: def\r\n\r\n",
        200,
        [(b"X-Kept", b"yes")],
        b"hello world!\r\n0\r\n\r\n",
    ),
    "no-content": (
        b"HTTP/1.1 204 No Content\r\nX-Kept: yes\r\n\r\n",
        204,
        [(b"X-Kept", b"yes")],
        b"",
    ),
    "not-modified": (
        b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 1234\r\n\r\n',
        304,
        [(b"ETag", b'"v1"'), (b"Content-Length", b"1234")],
        b"",
    ),
    "interim": (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-Final: yes\r\n\r\nbody",
        200,
        [(b"Content-Length", b"4"), (b"X-Final", b"yes")],
        b"body",
    ),
}


@pytest.mark.parametrize("dribble", [False, True], ids=["whole", "byte-by-byte"])
@pytest.mark.parametrize("name", list(FRAMED))
def test_answers_are_relayed_byte_exact_and_the_connection_reused(
    run: Run, name: str, dribble: bool
) -> None:
    answer, status, headers, body = FRAMED[name]

    async def script(peer: Peer) -> None:
        while await peer.request() is not None:
            if dribble:  # one byte per loop turn: the client reads them one by one
                for at in range(len(answer[:2000])):
                    await peer.send(answer[at : at + 1])
                    await asyncio.sleep(0)
                    await asyncio.sleep(0)
                await peer.send(answer[2000:])
            else:
                await peer.send(answer)

    async def scenario() -> None:
        async with Upstream(script) as upstream, started() as forwarder:
            for _ in range(2):
                relay = await exchange(forwarder, upstream.url + "/")
                assert (relay.status, relay.headers, relay.body) == (status, headers, body)
                assert relay.complete
            assert upstream.accepted == 1, "a cleanly ended answer leaves the connection reusable"

    run(scenario())


def test_an_answer_delimited_by_the_close_is_relayed_whole_and_not_reused(run: Run) -> None:
    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
        for _ in range(8):
            await peer.send(BINARY)
            await asyncio.sleep(0.005)

    async def scenario() -> None:
        async with Upstream(script) as upstream, started() as forwarder:
            for _ in range(2):
                relay = await exchange(forwarder, upstream.url + "/")
                assert relay.status == 200
                assert relay.headers == [(b"Content-Type", b"text/plain")]
                assert relay.body == BINARY * 8
                assert relay.complete
            assert upstream.accepted == 2

    run(scenario())


async def head_script(peer: Peer) -> None:
    while (request := await peer.request()) is not None:
        if request.line.startswith(b"HEAD "):
            await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nETag: x\r\n\r\n")
        else:
            await peer.send(ok(b"after"))


def test_an_answer_delimited_by_the_close_but_cut_by_a_reset_is_a_truncation(run: Run) -> None:
    """RFC 9112 8: a close-delimited answer is whole only if the connection closed cleanly."""

    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart of it")
        await asyncio.sleep(0.05)
        peer.reset()

    async def scenario() -> None:
        async with Upstream(script) as upstream, started() as forwarder:
            relay = Relay()
            with pytest.raises(ResponseTruncated):
                await exchange(forwarder, upstream.url + "/", relay=relay)
            assert not relay.complete

    run(scenario())


def test_an_answer_whose_last_coding_is_not_chunked_is_delimited_by_the_close(run: Run) -> None:
    """RFC 9112 6.3: Transfer-Encoding without chunked last means the close ends the body."""

    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n")
        await peer.send(b"compressed bytes")

    async def scenario() -> None:
        async with Upstream(script) as upstream, started() as forwarder:
            relay = await exchange(forwarder, upstream.url + "/")
            assert (relay.status, relay.body) == (200, b"compressed bytes")
            assert relay.complete

    run(scenario())


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi",
    ],
    ids=["connection-close", "http-1.0"],
)
def test_an_answer_that_does_not_keep_the_connection_alive_is_not_reused(
    run: Run, answer: bytes
) -> None:
    """Even when the upstream leaves the socket open: it said it would not take another."""

    async def scenario() -> None:
        async with Upstream(answering(answer)) as upstream, started() as forwarder:
            for _ in range(2):
                relay = await exchange(forwarder, upstream.url + "/", method="POST", body=b"x")
                assert (relay.status, relay.body) == (200, b"hi")
                assert relay.header(b"connection") == []
            assert upstream.accepted == 2

    run(scenario())


@pytest.mark.parametrize("when", ["with-the-answer", "while-idle"])
def test_bytes_the_upstream_sends_beyond_its_answer_never_answer_another_request(
    run: Run, when: str
) -> None:
    """A second answer to one request puts the connection out of step: it is dropped, and the
    next request gets its own answer, never the stray one."""
    stray = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray"

    async def script(peer: Peer) -> None:
        while (request := await peer.request()) is not None:
            answer = ok(request.line.split(b" ")[1])
            if peer.index > 0:
                await peer.send(answer)
            elif when == "with-the-answer":
                await peer.send(answer + stray)
            else:
                await peer.send(answer)
                await asyncio.sleep(0.05)
                await peer.send(stray)

    async def scenario() -> None:
        async with Upstream(script) as upstream, started() as forwarder:
            assert (await exchange(forwarder, upstream.url + "/first")).body == b"/first"
            await asyncio.sleep(0.1)
            assert (await exchange(forwarder, upstream.url + "/second")).body == b"/second"
            assert upstream.accepted == 2

    run(scenario())


def test_a_head_answer_announcing_a_length_ends_at_its_head(run: Run) -> None:
    async def scenario() -> None:
        async with Upstream(head_script) as upstream, started() as forwarder:
            relay = await exchange(forwarder, upstream.url + "/", method="HEAD")
            assert relay.status == 200
            assert relay.headers == [(b"Content-Length", b"1234"), (b"ETag", b"x")]
            assert relay.body == b""
            assert relay.complete
            after = await exchange(forwarder, upstream.url + "/next")
            assert after.body == b"after"
            assert [r.line for _, r in upstream.requests] == [
                b"HEAD / HTTP/1.1",
                b"GET /next HTTP/1.1",
            ]

    run(scenario())


def test_a_switching_protocols_answer_is_refused(run: Run) -> None:
    async def scenario() -> None:
        answer = (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        )
        async with Upstream(answering(answer)) as upstream, started() as forwarder:
            relay = Relay()
            with pytest.raises(UpstreamFailed) as failed:
                await exchange(forwarder, upstream.url + "/", relay=relay)
            assert failed.value.reason == "upstream_bad_answer"
            assert relay.messages == []

    run(scenario())


def test_an_endless_run_of_interim_answers_is_refused_not_waited_on(run: Run) -> None:
    """Each 103 is a byte from the upstream, so the read timeout alone would never end it."""

    async def script(peer: Peer) -> None:
        await peer.request()
        for _ in range(200):
            await peer.send(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
            await asyncio.sleep(0.001)

    async def scenario() -> None:
        async with Upstream(script) as upstream, started() as forwarder:
            relay = Relay()
            with pytest.raises(UpstreamFailed) as failed:
                await exchange(forwarder, upstream.url + "/", relay=relay)
            assert failed.value.reason == "upstream_bad_answer"
            assert relay.messages == []

    run(scenario())


# 5. truncation and refused heads


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\na\r\nworl",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    ],
    ids=["content-length", "mid-chunk", "between-chunks"],
)
@pytest.mark.parametrize("how", ["close", "reset"])
def test_an_answer_cut_short_is_a_truncation_after_its_head(
    run: Run, answer: bytes, how: str
) -> None:
    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(answer)
        await asyncio.sleep(0.05)
        if how == "reset":
            peer.reset()

    async def scenario() -> None:
        async with Upstream(script) as upstream, started() as forwarder:
            relay = Relay()
            with pytest.raises(ResponseTruncated):
                await exchange(forwarder, upstream.url + "/", relay=relay)
            assert relay.status == 200
            assert not relay.complete, "the client must never see a cut answer as whole"

    run(scenario())


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (b"HTTP/1.1 2x0 OK\r\nSet-Cookie: %b\r\n\r\n" % SECRET, "upstream_bad_answer"),
        (b"SSH-2.0-OpenSSH_9.6 %b\r\n\r\n" % SECRET, "upstream_bad_answer"),
        (
            b"HTTP/1.1 200 OK\r\nSet-Cookie: %b\r\nBad Name: x\r\n\r\n" % SECRET,
            "upstream_bad_answer",
        ),
        (
            b"HTTP/1.1 200 OK\r\nSet-Cookie: %b\r\nContent-Length: 5\r\n" % SECRET
            + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "upstream_bad_answer",
        ),
        (
            b"HTTP/1.1 200 OK\r\nSet-Cookie: %b\r\nContent-Length: 5\r\n" % SECRET
            + b"Content-Length: 6\r\n\r\nabcdef",
            "upstream_bad_answer",
        ),
        (
            b"HTTP/1.1 200 OK\r\nSet-Cookie: %b\r\n" % SECRET
            + b"".join(b"X-%d: v\r\n" % i for i in range(20))
            + b"\r\n",
            "upstream_too_many_headers",
        ),
        (
            b"HTTP/1.1 200 OK\r\nSet-Cookie: %b" % SECRET + b"a" * 2000 + b"\r\n\r\n",
            "upstream_header_too_large",
        ),
        (b"HTTP/1.1 200 " + SECRET + b"a" * 2000 + b"\r\n\r\n", "upstream_header_too_large"),
    ],
    ids=[
        "status",
        "not-http",
        "header-name",
        "length-and-chunked",
        "two-lengths",
        "too-many",
        "line-too-long",
        "reason-too-long",
    ],
)
def test_a_refused_head_names_the_limit_and_quotes_nothing(
    run: Run, answer: bytes, reason: str
) -> None:
    async def scenario() -> None:
        async with (
            Upstream(answering(answer)) as upstream,
            started(max_headers=16, max_header_bytes=1024) as forwarder,
        ):
            relay = Relay()
            with pytest.raises(UpstreamFailed) as failed:
                await exchange(forwarder, upstream.url + "/", relay=relay)
            assert failed.value.reason == reason
            assert relay.messages == []
            text = exception_text(failed.value)
            assert "upstream-secret" not in text
            assert "aaaa" not in text

    run(scenario())


ENDLESS_LINE_STARTS = {
    "header": b"HTTP/1.1 200 OK\r\nX-Endless: ",
    "trailer": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
    b"0\r\nX-Endless: ",
}


@pytest.mark.parametrize("where", list(ENDLESS_LINE_STARTS))
def test_a_line_that_never_ends_is_refused_before_it_is_buffered(run: Run, where: str) -> None:
    """An upstream that streams one endless header line, or chunked trailer line (the parser
    buffers both until they end): refused once the line passes max_header_bytes, not buffered
    until the upstream stops. A trailer comes after the head the client already has: that
    answer is cut, never relayed as whole."""
    sent = 0

    async def script(peer: Peer) -> None:
        nonlocal sent
        await peer.request()
        await peer.send(ENDLESS_LINE_STARTS[where])
        piece = b"a" * 16384
        while sent < 64 * 1024 * 1024:
            await peer.send(piece)
            sent += len(piece)

    async def scenario() -> None:
        async with Upstream(script) as upstream, started(max_header_bytes=1024) as forwarder:
            relay = Relay()
            if where == "header":
                with pytest.raises(UpstreamFailed) as failed:
                    await exchange(forwarder, upstream.url + "/", relay=relay)
                assert failed.value.reason == "upstream_header_too_large"
            else:
                with pytest.raises(ResponseTruncated):
                    await exchange(forwarder, upstream.url + "/", relay=relay)
                assert (relay.status, relay.body, relay.complete) == (200, b"hello", False)
            assert sent < 32 * 1024 * 1024

    run(scenario())


@pytest.mark.parametrize("pieces", [1, 8])
def test_chunk_data_read_apart_from_its_size_line_is_not_taken_for_a_trailer(
    run: Run, pieces: int
) -> None:
    """A chunk larger than max_header_bytes, without a newline, arriving after its size line
    (in one read or several): body, never held to the trailer line limit."""
    data = b"x" * 8000
    size = len(data) // pieces

    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        await peer.send(b"%x\r\n" % len(data))
        for start in range(0, len(data), size):
            await asyncio.sleep(0.01)  # the size line, then each piece, in reads of their own
            await peer.send(data[start : start + size])
        await peer.send(b"\r\n0\r\nX-Checked: yes\r\n\r\n")

    async def scenario() -> None:
        async with Upstream(script) as upstream, started(max_header_bytes=1024) as forwarder:
            relay = Relay()
            await exchange(forwarder, upstream.url + "/", relay=relay)
            assert (relay.status, relay.body, relay.complete) == (200, data, True)

    run(scenario())


# 6. timeouts and unreachable upstreams


def test_an_upstream_that_never_answers_times_out_after_read_seconds(run: Run) -> None:
    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.until_closed()

    async def scenario() -> None:
        async with Upstream(script) as upstream, started(read_seconds=0.3) as forwarder:
            began = time.monotonic()
            with pytest.raises(UpstreamFailed) as failed:
                await exchange(forwarder, upstream.url + "/", method="POST", body=b"x")
            elapsed = time.monotonic() - began
            assert failed.value.reason == "upstream_timeout"
            assert 0.25 <= elapsed < 2.0

    run(scenario())


def test_an_upstream_that_stalls_after_its_head_is_a_truncation(run: Run) -> None:
    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
        await peer.until_closed()

    async def scenario() -> None:
        async with Upstream(script) as upstream, started(read_seconds=0.3) as forwarder:
            relay = Relay()
            began = time.monotonic()
            with pytest.raises(ResponseTruncated):
                await exchange(forwarder, upstream.url + "/", relay=relay)
            assert 0.25 <= time.monotonic() - began < 2.0
            assert relay.status == 200
            assert relay.body == b"0123456789"
            assert not relay.complete

    run(scenario())


def test_a_client_slower_than_read_seconds_is_not_taken_for_a_stalled_upstream(run: Run) -> None:
    total = 4 * 1024 * 1024

    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total)
        await peer.send(b"z" * total)

    async def scenario() -> None:
        async with Upstream(script) as upstream, started(read_seconds=0.2) as forwarder:
            relay = Relay(pause_every=2, pause=0.45, pauses=2)  # each outlasts read_seconds
            await exchange(forwarder, upstream.url + "/", relay=relay)
            assert relay.complete
            assert relay.body == b"z" * total

    run(scenario())


@pytest.mark.parametrize("upstream_then", ["answers", "stays-silent"])
def test_a_slow_upload_counts_the_read_timeout_from_its_end(run: Run, upstream_then: str) -> None:
    """A client streaming its body for longer than read_seconds is the client being slow, not
    the upstream being silent (as aiohttp, which started the read clock once the request was
    written). The upstream's silence after the body still times out."""

    async def script(peer: Peer) -> None:
        while (request := await peer.request()) is not None:
            if upstream_then == "stays-silent":
                await peer.until_closed()
                return
            await peer.send(ok(b"got %d bytes" % len(request.body)))

    async def slow_body() -> AsyncIterator[bytes]:
        for _ in range(6):
            await asyncio.sleep(0.1)
            yield b"y" * 1000

    async def scenario() -> None:
        async with Upstream(script) as upstream, started(read_seconds=0.3) as forwarder:
            began = time.monotonic()
            if upstream_then == "answers":
                relay = await exchange(
                    forwarder, upstream.url + "/upload", method="PUT", body=slow_body()
                )
                assert (relay.status, relay.body) == (200, b"got 6000 bytes")
                return
            with pytest.raises(UpstreamFailed) as failed:
                await exchange(forwarder, upstream.url + "/upload", method="PUT", body=slow_body())
            assert failed.value.reason == "upstream_timeout"
            assert 0.8 <= time.monotonic() - began < 3.0

    run(scenario())


class ClientGone(Exception):
    pass


def test_a_client_gone_mid_answer_leaves_no_half_read_connection_in_the_pool(run: Run) -> None:
    async def script(peer: Peer) -> None:
        while (request := await peer.request()) is not None:
            await peer.send(ok(request.line.split(b" ")[1] * 100_000))

    async def scenario() -> None:
        async with Upstream(script) as upstream, started(pool_size=1) as forwarder:
            sent: list[Message] = []

            async def gone(message: Message) -> None:
                sent.append(message)
                if len(sent) == 2:
                    raise ClientGone

            with pytest.raises(ClientGone):
                await forwarder.forward(
                    gone, method="GET", url=upstream.url + "/a", headers=[], body=None
                )
            relay = await exchange(forwarder, upstream.url + "/b")
            assert relay.body == b"/b" * 100_000
            assert upstream.accepted == 2

    run(scenario())


def test_a_cancelled_forward_gives_back_its_slot_and_its_connection(run: Run) -> None:
    async def script(peer: Peer) -> None:
        while (request := await peer.request()) is not None:
            if request.line.startswith(b"GET /slow "):
                await asyncio.sleep(5)
            await peer.send(ok(b"done"))

    async def scenario() -> None:
        async with (
            Upstream(script) as upstream,
            started(pool_size=1, pool_wait_seconds=0.5) as forwarder,
        ):
            slow = asyncio.create_task(exchange(forwarder, upstream.url + "/slow"))
            await asyncio.sleep(0.1)
            slow.cancel()
            with pytest.raises(asyncio.CancelledError):
                await slow
            assert (await exchange(forwarder, upstream.url + "/next")).body == b"done"
            assert upstream.accepted == 2

    run(scenario())


def test_a_closed_port_is_unavailable(run: Run) -> None:
    async def scenario() -> None:
        async with started() as forwarder:
            with pytest.raises(UpstreamUnavailable):
                await exchange(forwarder, f"http://127.0.0.1:{free_port()}/", method="POST")

    run(scenario())


# 7. request bodies and heads


def test_a_whole_body_gets_one_content_length_of_its_own_size(run: Run) -> None:
    async def scenario() -> None:
        async with Upstream(answering(ok(b""))) as upstream, started() as forwarder:
            headers = [(b"content-length", b"3"), (b"x-after", b"1"), (b"content-length", b"3")]
            await exchange(
                forwarder, upstream.url + "/", method="POST", headers=headers, body=b"a=12345"
            )
            matching = [(b"content-length", b"7"), (b"x-after", b"1")]
            await exchange(
                forwarder, upstream.url + "/", method="PUT", headers=matching, body=b"a=12345"
            )
            (_, mismatched), (_, kept) = upstream.requests
            assert mismatched.values(b"content-length") == [b"7"]
            assert mismatched.body == b"a=12345"
            assert [n.lower() for n, _ in kept.headers] == [b"host", b"content-length", b"x-after"]
            assert kept.values(b"content-length") == [b"7"]

    run(scenario())


def test_a_streamed_body_keeps_its_content_length_or_goes_chunked(run: Run) -> None:
    pieces = [b"first,", b"", b"second,", BINARY, b"", b"last"]
    whole = b"".join(pieces)

    async def scenario() -> None:
        async with Upstream(answering(ok(b"done"))) as upstream, started() as forwarder:
            length = [(b"content-length", b"%d" % len(whole))]
            await exchange(
                forwarder, upstream.url + "/a", method="POST", headers=length, body=stream(*pieces)
            )
            await exchange(forwarder, upstream.url + "/b", method="POST", body=stream(*pieces))
            (_, sized), (_, chunked) = upstream.requests
            assert sized.values(b"content-length") == [b"%d" % len(whole)]
            assert sized.values(b"transfer-encoding") == []
            assert not sized.chunked_body
            assert sized.body == whole
            assert chunked.values(b"transfer-encoding") == [b"chunked"]
            assert chunked.values(b"content-length") == []
            assert chunked.body == whole
            assert upstream.accepted == 1

    run(scenario())


def test_a_request_without_a_body_says_so_as_its_method_expects(run: Run) -> None:
    async def scenario() -> None:
        async with Upstream(answering(ok(b""))) as upstream, started() as forwarder:
            for method in ("GET", "POST", "DELETE"):
                await exchange(forwarder, upstream.url + "/", method=method)
            get, post, delete = (request for _, request in upstream.requests)
            assert get.values(b"content-length") == []
            assert get.values(b"transfer-encoding") == []
            assert post.values(b"content-length") == [b"0"]
            assert delete.values(b"content-length") == [b"0"]

    run(scenario())


def test_headers_reach_the_upstream_in_order_host_first_and_bytes_unchanged(run: Run) -> None:
    async def scenario() -> None:
        async with Upstream(answering(ok(b""))) as upstream, started() as forwarder:
            headers = [
                (b"x-first", b"caf\xc3\xa9"),
                (b"cookie", b"a=1"),
                (b"host", b"legacy.example:8443"),
                (b"x-raw", b"\xff\xfe latin-1 \xe9"),
                (b"x-first", b"again"),
            ]
            await exchange(forwarder, upstream.url + "/p%20q?x=%2F&y", headers=headers)
            await exchange(forwarder, upstream.url + "?only=query")
            (_, request), (_, query_only) = upstream.requests
            assert request.line == b"GET /p%20q?x=%2F&y HTTP/1.1"
            assert request.headers == [(b"Host", b"legacy.example:8443")] + [
                h for h in headers if h[0] != b"host"
            ]
            assert query_only.line == b"GET /?only=query HTTP/1.1"
            assert query_only.headers == [(b"Host", upstream.url.removeprefix("http://").encode())]

    run(scenario())


@pytest.mark.parametrize("target", ["/a b", "/a\r\nX-Injected: 1", "/a\nb", "/a\tb"])
def test_a_request_target_that_would_break_the_request_line_is_never_sent(
    run: Run, target: str
) -> None:
    async def scenario() -> None:
        async with Upstream(answering(ok(b""))) as upstream, started() as forwarder:
            with pytest.raises(UpstreamFailed) as failed:
                await exchange(forwarder, upstream.url + target, method="POST", body=b"code=x")
            assert failed.value.reason == "upstream_bad_request"
            await asyncio.sleep(0.05)
            assert upstream.accepted == 0

    run(scenario())


class WatchedConnection(UpstreamConnection):
    """Records, for every upstream connection, the most answer bytes it held, whether it
    paused reading, and when its socket was closed."""

    most_buffered = 0
    paused = False
    closed: ClassVar[list[WatchedConnection]] = []

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        cls = WatchedConnection
        cls.most_buffered = max(cls.most_buffered, self._buffered)
        cls.paused = cls.paused or self._reading_paused

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        WatchedConnection.closed.append(self)


@pytest.fixture
def watched(monkeypatch: pytest.MonkeyPatch) -> type[WatchedConnection]:
    """The pool makes WatchedConnections, with fresh records."""
    monkeypatch.setattr(upstream_pool, "UpstreamConnection", WatchedConnection)
    monkeypatch.setattr(WatchedConnection, "most_buffered", 0)
    monkeypatch.setattr(WatchedConnection, "paused", False)
    monkeypatch.setattr(WatchedConnection, "closed", [])
    return WatchedConnection


# 8. an answer before the request's end


@pytest.mark.parametrize("then", ["discards", "stalls", "answers-between-chunks"])
def test_an_early_413_is_relayed_and_the_connection_dropped(
    run: Run, watched: type[WatchedConnection], then: str
) -> None:
    """nginx answers 413 at once and discards what follows; another upstream stops reading the
    body and answers later, while the client is blocked writing or while it waits for its next
    body chunk. Every way the client gets the 413 promptly, and the half-sent request's
    connection is closed, not reused, and not held open by its unsent bytes."""
    answer = b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\n\r\ntoo big!"

    async def script(peer: Peer) -> None:
        if peer.index == 0:
            await peer.reader.readuntil(b"\r\n\r\n")
            if then == "discards":
                await peer.send(answer)
                await peer.until_closed()
                return
            if then == "stalls":
                await asyncio.sleep(0.5)  # not reading: the client's writes fill the buffers
            else:
                await peer.reader.readexactly(65536)  # the first chunk, then no more
            await peer.send(answer)
            await asyncio.sleep(10)
            return
        while await peer.request() is not None:
            await peer.send(ok(b"fresh"))

    async def body() -> AsyncIterator[bytes]:
        if then == "answers-between-chunks":
            yield b"x" * 65536
            await asyncio.sleep(0.3)  # the 413 arrives meanwhile
            yield b"x" * (32 * 1024 * 1024)  # more than the sockets' buffers hold
            return
        piece = b"x" * 65536
        for _ in range(1024):  # 64 MiB: more than the sockets' buffers hold
            await asyncio.sleep(0)
            yield piece

    async def scenario() -> None:
        async with Upstream(script) as upstream, started(read_seconds=3) as forwarder:
            began = time.monotonic()
            relay = await exchange(forwarder, upstream.url + "/upload", method="POST", body=body())
            assert time.monotonic() - began < 2.0
            assert (relay.status, relay.body) == (413, b"too big!")
            await asyncio.sleep(0.1)
            assert len(watched.closed) == 1, "the socket is closed though the upstream won't read"
            assert (await exchange(forwarder, upstream.url + "/next")).body == b"fresh"
            assert upstream.accepted == 2

    run(scenario())


# 9. backpressure


def test_a_large_answer_to_a_slow_client_is_relayed_with_bounded_buffering(
    run: Run, watched: type[WatchedConnection]
) -> None:
    piece = bytes(range(256)) * 256  # 64 KiB
    total = 20 * 1024 * 1024

    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total)
        for _ in range(total // len(piece)):
            await peer.send(piece)

    async def scenario() -> None:
        async with Upstream(script) as upstream, started(read_seconds=2) as forwarder:
            relay = Relay(pause_every=4, pause=0.002)
            await exchange(forwarder, upstream.url + "/big", relay=relay)
            assert relay.complete
            assert relay.body == piece * (total // len(piece))
            assert watched.paused, "reading paused while the client was slow"
            assert watched.most_buffered < 1024 * 1024

    run(scenario())


# 10. the pool


def test_the_pool_never_holds_more_than_pool_size_connections(run: Run) -> None:
    upstreams: list[Upstream] = []
    most_open = 0

    async def script(peer: Peer) -> None:
        nonlocal most_open
        most_open = max(most_open, sum(u.open() for u in upstreams))
        while await peer.request() is not None:
            await peer.send(ok(b"from %d" % upstreams.index(peer.upstream)))

    async def scenario() -> None:
        nonlocal most_open
        async with (
            Upstream(script) as a,
            Upstream(script) as b,
            Upstream(script) as c,
            started(pool_size=2) as forwarder,
        ):
            upstreams.extend([a, b, c])
            for turn in range(9):
                relay = await exchange(forwarder, upstreams[turn % 3].url + "/")
                assert relay.body == b"from %d" % (turn % 3)
                most_open = max(most_open, sum(u.open() for u in upstreams))
            assert most_open == 2, "an idle connection made room for each new origin"

    run(scenario())


def test_an_idle_connection_is_closed_after_keepalive_seconds(run: Run) -> None:
    async def scenario() -> None:
        async with (
            Upstream(answering(ok(b"hi"))) as upstream,
            started(keepalive_seconds=0.2) as forwarder,
        ):
            await exchange(forwarder, upstream.url + "/")
            await asyncio.sleep(0.1)
            assert upstream.open() == 1, "still kept alive within keepalive_seconds"
            for _ in range(100):
                if not upstream.open():
                    break
                await asyncio.sleep(0.02)
            assert upstream.open() == 0
            assert (await exchange(forwarder, upstream.url + "/")).body == b"hi"
            assert upstream.accepted == 2

    run(scenario())


# 11. TLS


@dataclass
class Authority:
    """A throwaway certificate authority."""

    name: str
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    @property
    def certificate(self) -> x509.Certificate:
        return self._sign(self.name, self.key, ca=True)

    def server_context(self, directory: Path) -> ssl.SSLContext:
        """A server context with a certificate for 127.0.0.1 this authority signed."""
        key = ec.generate_private_key(ec.SECP256R1())
        chain = directory / f"{self.name}-server.pem"
        chain.write_bytes(
            self._sign("127.0.0.1", key, ca=False).public_bytes(serialization.Encoding.PEM)
            + key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain)
        return context

    def _sign(self, subject: str, key: ec.EllipticCurvePrivateKey, *, ca: bool) -> x509.Certificate:
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.name)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            address = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
            builder = builder.add_extension(x509.SubjectAlternativeName([address]), False)
        return builder.sign(self.key, hashes.SHA256())


@pytest.fixture
def trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Authority:
    """A throwaway authority the process trusts, as an operator's SSL_CERT_FILE would say."""
    authority = Authority("trusted-test-ca")
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(authority.certificate.public_bytes(serialization.Encoding.PEM))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    return authority


def test_an_https_upstream_is_reached_only_with_a_certificate_the_system_trusts(
    run: Run, tmp_path: Path, trusted: Authority
) -> None:
    untrusted = Authority("untrusted-test-ca")

    async def scenario() -> None:
        async with (
            Upstream(answering(ok(b"over tls")), tls=trusted.server_context(tmp_path)) as good,
            Upstream(answering(ok(b"forged")), tls=untrusted.server_context(tmp_path)) as bad,
            started() as forwarder,
        ):
            for _ in range(2):
                relay = await exchange(forwarder, good.url + "/secure")
                assert (relay.status, relay.body) == (200, b"over tls")
            assert good.accepted == 1
            with pytest.raises(UpstreamUnavailable):
                await exchange(forwarder, bad.url + "/secure", method="POST", body=b"code=x")
            assert bad.requests == []

    run(scenario())


@pytest.mark.parametrize("close", ["close-notify", "cut"])
def test_a_tls_answer_delimited_by_the_close_is_whole_only_after_close_notify(
    tmp_path: Path, trusted: Authority, close: str
) -> None:
    """RFC 9112 9.8: without TLS's close_notify the close may be an attacker's, cutting the
    answer. On uvloop only, what `serve` runs on: asyncio's own TLS layer reports a TCP close
    without close_notify as a clean end, so the client can't tell there."""

    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it?")
        await asyncio.sleep(0.05)
        if close == "close-notify":
            peer.writer.close()
            await peer.writer.wait_closed()
        else:
            peer.writer.transport.abort()  # the TCP connection ends, TLS never said so

    async def scenario() -> None:
        async with (
            Upstream(script, tls=trusted.server_context(tmp_path)) as upstream,
            started() as forwarder,
        ):
            relay = Relay()
            if close == "close-notify":
                await exchange(forwarder, upstream.url + "/", relay=relay)
                assert relay.complete
            else:
                with pytest.raises(ResponseTruncated):
                    await exchange(forwarder, upstream.url + "/", relay=relay)
                assert not relay.complete
            assert relay.body == b"all of it?"

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(asyncio.wait_for(scenario(), 15))


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
def test_a_large_answer_delimited_by_the_close_reaches_a_slow_client_whole(
    run: Run, tmp_path: Path, trusted: Authority, watched: type[WatchedConnection], tls: bool
) -> None:
    """The upstream's clean close arrives while reading is paused for the slow client: the
    answer still ends whole once the client has taken the rest."""
    piece = bytes(range(256)) * 256
    count = 64  # 4 MiB

    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\n\r\n")
        for _ in range(count):
            peer.writer.write(piece)
        await peer.writer.drain()
        peer.writer.close()
        await peer.writer.wait_closed()

    async def scenario() -> None:
        context = trusted.server_context(tmp_path) if tls else None
        async with Upstream(script, tls=context) as upstream, started() as forwarder:
            relay = Relay(pause_every=2, pause=0.01)
            await exchange(forwarder, upstream.url + "/", relay=relay)
            assert watched.paused
            assert relay.complete
            assert relay.body == piece * count

    run(scenario())
