"""One upstream HTTP/1.1 connection: writes a request, parses the answer with httptools.

The forwarder's client. The parsing (status line, headers, Content-Length, chunked framing,
keep-alive) is llhttp's, through httptools, the parser uvicorn serves with and aiohttp reads
answers with; this module only holds the connection's state between its callbacks. It does
what a reverse proxy needs and nothing else: no redirects, cookies, decompression, retries or
proxies, bytes in and bytes out. Measured against aiohttp on the same exchange it costs a
fraction of the CPU (bench/README.md, "Upstream client").

One exchange at a time. A connection goes back to the pool only when its answer was read to
the end, its request was written whole and both sides keep it alive.
"""

from __future__ import annotations

import asyncio
import collections
from typing import TYPE_CHECKING, Final, cast

import httptools

from proxy.http.asgi_types import RawHeaders
from proxy.http.headers import unended_line

if TYPE_CHECKING:
    from proxy.http.upstream_pool import UpstreamOrigin

# Buffered answer bytes above which reading from the upstream pauses until the client takes them.
_HIGH_WATER: Final = 256 * 1024
# Interim (1xx) answers allowed before the final one: 100 Continue and a few 103 Early Hints.
_MAX_INTERIM: Final = 16


class AnswerRefused(Exception):
    """The upstream's answer head broke a limit or the HTTP grammar. `reason` is a fixed code;
    nothing from the answer is kept (a header would quote a Set-Cookie)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConnectionBroke(Exception):
    """The connection closed or reset before the answer was complete."""


class ReadTimedOut(Exception):
    """Nothing arrived from the upstream for the read timeout."""


class UpstreamConnection(asyncio.Protocol):
    """An upstream connection and the state of its current exchange."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_line: int, max_headers: int) -> None:
        self._loop = loop
        self._max_line = max_line
        self._max_headers = max_headers
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self._eof = False  # the upstream ended the connection cleanly (FIN; TLS close_notify)
        self.idle_since = 0.0
        self.origin: UpstreamOrigin | None = None
        self.counted = True  # counted in its pool's open connections until dropped
        self._parser: httptools.HttpResponseParser | None = None
        self._head_only = False
        # The exchange in progress
        self._waiter: asyncio.Future[None] | None = None
        self._status = 0
        self._headers: RawHeaders = []
        self._head_done = False
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._complete = False
        self._framed = False  # Content-Length or chunked: an early close is a truncation
        self._keep_alive = False
        self._request_whole = True
        self._error: Exception | None = None
        self._reading_paused = False
        self._writing_paused = False
        self._streaming = False  # a streamed request body is being written
        self._interim = 0  # 1xx answers before this exchange's final one
        self._drain: asyncio.Future[None] | None = None
        self._last_read = 0.0
        self._read_seconds = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._line = 0  # bytes of the head's (or trailers') line not yet ended by a newline
        self._maybe_trailers = False  # a chunk header came and no chunk data yet
        self.received_any = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses; they have its interface.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None:  # bytes nobody asked for: the connection can't be trusted again
            self.lost = True
            if self.transport is not None:
                self.transport.close()
            return
        self.received_any = True
        self._last_read = self._loop.time()
        try:
            parser.feed_data(data)
        except AnswerRefused as exc:
            self._fail(exc)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            self._fail(cause if isinstance(cause, AnswerRefused) else AnswerRefused("bad_answer"))
        except httptools.HttpParserUpgrade:
            self._fail(AnswerRefused("bad_answer"))
        except httptools.HttpParserError:
            self._fail(AnswerRefused("bad_answer"))
        else:
            if not self._head_done or self._maybe_trailers:
                self._limit_line(data)

    def eof_received(self) -> bool | None:
        self._eof = True
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self._parser is not None and not self._complete:
            if self._head_done and not self._framed and not self._head_only and self._eof:
                # Delimited by the close, if a clean one: a reset, or a TLS connection ended
                # without close_notify (uvloop tells; asyncio's SSL layer does not), cuts it
                # (RFC 9112 8 and 9.8).
                self._complete = True
                self._wake()
            else:
                self._fail(ConnectionBroke())
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_exception(ConnectionBroke())
        self._cancel_timer()

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_result(None)

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self._head_done:  # a second answer to one request: the connection is out of step
            raise AnswerRefused("bad_answer")

    def on_status(self, status: bytes) -> None:
        if len(status) > self._max_line:
            raise AnswerRefused("header_too_large")

    def on_header(self, name: bytes, value: bytes) -> None:
        headers = self._headers
        if len(headers) >= self._max_headers:
            raise AnswerRefused("too_many_headers")
        if len(name) + len(value) + 2 > self._max_line:
            raise AnswerRefused("header_too_large")
        if self._head_done:  # a chunked answer's trailer field: never merged into the head
            return
        headers.append((name, value))
        lowered = name.lower()
        if lowered == b"content-length":
            self._framed = True
        elif lowered == b"transfer-encoding":
            # Unless chunked is the last coding, the close ends the body (RFC 9112 6.3).
            self._framed = value.rsplit(b",", 1)[-1].strip().lower() == b"chunked"

    def on_headers_complete(self) -> None:
        parser = self._parser
        assert parser is not None
        status = parser.get_status_code()
        if status < 200:  # 100 Continue, 103 Early Hints: not the answer; 101 is refused
            self._interim += 1
            if status == 101 or self._interim > _MAX_INTERIM:
                # An endless run of 1xx would keep the read timeout from ever firing.
                raise AnswerRefused("bad_answer")
            self._headers = []
            self._framed = False
            return
        self._status = status
        self._head_done = True
        self._keep_alive = parser.should_keep_alive()  # llhttp forgets it once the message ends
        if self._head_only or status in (204, 304):
            self._complete = True
        self._wake()
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_result(None)  # a body waiting for the upstream to read it: it answered

    def on_chunk_header(self) -> None:
        # Either a chunk whose data comes next (on_body clears this) or the last chunk, after
        # which come the trailer lines, which llhttp buffers like header lines until they end.
        self._maybe_trailers = True

    def on_body(self, body: bytes) -> None:
        self._maybe_trailers = False
        if self._complete:
            return
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._head_done:
            self._complete = True
            self._wake()

    # the exchange

    def begin(self, head_only: bool, read_seconds: float) -> None:
        """Start an exchange: a fresh parser and state; the read timeout starts now."""
        self._parser = httptools.HttpResponseParser(self)
        self._head_only = head_only
        self._status = 0
        self._headers = []
        self._head_done = self._complete = self._framed = self._keep_alive = False
        self._request_whole = True
        self._chunks.clear()
        self._buffered = 0
        self._error = None
        self._streaming = False
        self._interim = 0
        self._line = 0
        self._maybe_trailers = False
        self.received_any = False
        self._read_seconds = read_seconds
        self._last_read = self._loop.time()
        self._timer = self._loop.call_at(self._last_read + read_seconds, self._check_timeout)

    @property
    def answered(self) -> bool:
        """Whether the answer's head has arrived (the upstream may answer before the body)."""
        return self._head_done

    def write(self, *data: bytes) -> None:
        if self.lost or self.transport is None:
            raise ConnectionBroke
        if len(data) == 1:
            self.transport.write(data[0])
        else:
            self.transport.writelines(data)

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water mark; an upstream
        that reads nothing for the read timeout is one that does not answer. Once it answered
        there is nothing to wait for: the writer stops sending."""
        if self.lost:
            raise ConnectionBroke
        if self._writing_paused and not self._head_done:
            self._drain = self._loop.create_future()
            try:
                async with asyncio.timeout(self._read_seconds):
                    await self._drain
            except TimeoutError:
                raise ReadTimedOut from None
            finally:
                self._drain = None

    async def head(self) -> tuple[int, RawHeaders]:
        """The answer's status and raw headers, once the head has arrived."""
        while not self._head_done:
            if self._error is not None:
                raise self._error
            await self._wait()
        return self._status, self._headers

    async def next_chunk(self) -> bytes | None:
        """The answer's next body bytes; None at its end."""
        while True:
            if self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._reading_paused and self._buffered <= _HIGH_WATER // 2:
                    self._reading_paused = False
                    if self.transport is not None:
                        self.transport.resume_reading()
                return chunk
            if self._complete:
                return None
            if self._error is not None:
                raise self._error
            await self._wait()

    def finish(self) -> bool:
        """End the exchange; whether the connection may carry another one."""
        self._cancel_timer()
        parser = self._parser
        self._parser = None
        # After a HEAD the parser may still wait for the body the headers announced: the
        # connection is closed rather than reasoned about.
        return (
            self._complete
            and not self.lost
            and not self._head_only
            and parser is not None
            and self._keep_alive
            and self._request_whole
        )

    def streaming(self, active: bool) -> None:
        """While a streamed body is written the read timeout waits: a slow client's upload is
        not the upstream's silence (drain() bounds an upstream that stops reading). The timeout
        counts again from the body's end, as aiohttp's did."""
        self._streaming = active
        self._last_read = self._loop.time()

    def request_cut(self) -> None:
        """The request's body was not written to its end: the connection can't be reused."""
        self._request_whole = False

    def close(self) -> None:
        self._cancel_timer()
        self._parser = None
        self.lost = True
        transport = self.transport
        if transport is not None:
            # Request bytes the upstream never read would hold the socket open until it does.
            if transport.get_write_buffer_size():
                transport.abort()
            else:
                transport.close()

    async def _wait(self) -> None:
        waiter = self._waiter = self._loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    def _limit_line(self, data: bytes) -> None:
        """httptools hands over a header or trailer line only once it ends and buffers it
        until then: an unended line is held to the line limit here, as the bytes arrive."""
        self._line = unended_line(self._line, data)
        if self._line > self._max_line:
            self._fail(AnswerRefused("header_too_large"))

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: Exception) -> None:
        if self._error is None:
            self._error = error
        self.lost = True
        if self.transport is not None:
            self.transport.close()
        self._wake()

    def _check_timeout(self) -> None:
        """One timer per exchange: re-armed from the last read rather than on every read."""
        self._timer = None
        if self._parser is None or self._complete or self._error is not None:
            return
        now = self._loop.time()
        due = self._last_read + self._read_seconds
        if self._reading_paused or self._streaming:  # the client is slow, not the upstream
            due = now + self._read_seconds
        if now < due:
            self._timer = self._loop.call_at(due, self._check_timeout)
            return
        self._fail(ReadTimedOut())

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
