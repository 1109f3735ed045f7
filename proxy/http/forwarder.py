"""Server-side HTTP forwarding: the legacy fall-through and `proxy` mode.

The client is `proxy.http.upstream_connection` (httptools' llhttp parses the answers) with a
pool here. Measured on this path: httpx adds ~1 ms of CPU per proxied request, aiohttp ~0.1
ms, this client a fraction of aiohttp's (bench/README.md). No cookie jar (a shared jar leaks
one user's Set-Cookie to the next), no redirects followed, no decompression: the client gets
the upstream's answer as it was, and the upstream gets the client's request as it was apart
from the headers `forwarded_headers` rewrites.

Delivery rule: a callback carries a single-use artifact (SAML assertion, OIDC code), so it is
sent upstream at most once. A pass-through request of an idempotent method (GET, HEAD,
OPTIONS, TRACE, PUT, DELETE) whose body can be written again is resent once on a new
connection when the first closes or resets before any answer byte (RFC 9112 9.3.1: a pooled
connection the upstream closed while idle); `forward(..., pass_through=False)`, the callbacks',
never.

Pool bound: at most `pool_size` requests are upstream at once, each holding one connection.
Beyond it a request queues (FIFO) for up to `pool_wait_seconds`, then ends as `UpstreamBusy`
without having been sent. Unbounded, a load spike opened one upstream connection per client
and, under the common 1 024 open-file limit, half of the callbacks failed for lack of file
descriptors; queued, they wait a few milliseconds instead. `callback_reserve` of the slots are
callbacks' alone: a pass-through request holds its slot at its client's pace (a body sent a
byte at a time, an answer read as slowly), and slow clients of the legacy host must not leave
callbacks queueing behind them. And a client that stops sending its streamed body, or stops
reading the answer, for `client_idle_seconds` ends its exchange (`ClientStalled`) and frees
its slot.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from proxy.http.asgi_types import RawHeaders, Send
from proxy.http.client_idle import ClientIdleWatch
from proxy.http.forwarded_headers import response_headers
from proxy.http.upstream_connection import (
    AnswerRefused,
    ConnectionBroke,
    ReadTimedOut,
    UpstreamConnection,
)
from proxy.http.upstream_pool import UpstreamPool, UpstreamTarget


class UpstreamUnavailable(Exception):
    """The upstream could not be reached: it cannot have received the request."""


class UpstreamBusy(Exception):
    """Every pooled upstream connection stayed in use for the whole queue wait: nothing sent."""


# The client's 503 for UpstreamBusy; also the outcome code in logs and metrics.
BUSY_REASON = "upstream_busy"
BUSY_MESSAGE = (
    "every upstream connection (limits.upstream_pool_size) stayed in use for"
    " timeouts.upstream_pool_wait_seconds; nothing was sent upstream, try again"
)


class UpstreamFailed(Exception):
    """The upstream failed after the request may have reached it; never retried.

    `reason` is a fixed code for logs and metrics; `what` completes "the upstream ..." in the
    client's error message.
    """

    def __init__(self, reason: str, what: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.what = what


class ResponseTruncated(Exception):
    """The upstream broke off mid-response; the client's connection must be aborted.
    `status`: the answer's, whose head the client already has."""

    def __init__(self, status: int) -> None:
        super().__init__("the upstream broke off mid-answer")
        self.status = status


class ClientStalled(Exception):
    """The client sent no more of its streamed body, or read no more of the answer, for the
    idle limit. `status`: the answer's, when its head was already sent (then the client's
    connection must be aborted); None before that (nothing answered yet)."""

    def __init__(self, status: int | None) -> None:
        super().__init__("client idle past timeouts.client_idle_seconds")
        self.status = status


# A transport pauses writing (and uvicorn's send waits) only with more than its high-water
# mark buffered: 64 KiB by default in asyncio and uvloop, which uvicorn leaves as it is. Until
# an answer's body passes a quarter of that, its sends can't wait (unless its head alone were
# over 48 KiB).
_SENDS_MAY_WAIT_AFTER = 16 * 1024
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
# Methods whose body-less requests carry no Content-Length (RFC 9110 8.6: a user agent
# should not send one there); every other body-less request says `Content-Length: 0`.
_BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class HttpForwarder:
    """One upstream pool per process, created inside the running event loop."""

    def __init__(
        self,
        *,
        connect_seconds: float,
        read_seconds: float,
        keepalive_seconds: float,
        max_header_bytes: int = 8190,
        max_headers: int = 128,
        pool_size: int = 100,
        pool_wait_seconds: float = 10.0,
        callback_reserve: int = 0,
        client_idle_seconds: float = 60.0,
    ) -> None:
        self._connect_seconds = connect_seconds
        self._read_seconds = read_seconds
        self._keepalive = keepalive_seconds
        self._max_header_bytes = max_header_bytes
        self._max_headers = max_headers
        self._pool_size = pool_size
        self._pool_wait = pool_wait_seconds
        self._client_idle = client_idle_seconds
        self._slots = asyncio.Semaphore(pool_size)
        # Taken first by pass-through requests, so at most pool_size - callback_reserve of
        # them hold a slot of `_slots`.
        self._pass_through_slots = (
            asyncio.Semaphore(pool_size - callback_reserve) if callback_reserve else None
        )
        self._pool: UpstreamPool | None = None

    async def start(self) -> None:
        self._pool = UpstreamPool(
            asyncio.get_running_loop(),
            size=self._pool_size,
            connect_seconds=self._connect_seconds,
            keepalive_seconds=self._keepalive,
            max_line=self._max_header_bytes,
            max_headers=self._max_headers,
        )

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    async def forward(
        self,
        send: Send,
        *,
        method: str,
        url: str,
        headers: RawHeaders,
        body: bytes | AsyncIterator[bytes] | None,
        extra_response_headers: RawHeaders | None = None,
        pass_through: bool = False,
    ) -> int:
        """Send the request upstream and stream its answer to `send`; return the status.

        A callback (`pass_through` False) is written at most once; a pass-through request of
        an idempotent method is resent once as described above, and never takes a slot
        reserved for callbacks. `UpstreamBusy` when no slot came free within the queue wait.
        """
        pool = self._pool
        if pool is None:
            raise RuntimeError("HttpForwarder.start() was not awaited")
        slots = self._slots
        share = self._pass_through_slots if pass_through else None
        if slots.locked() or (share is not None and share.locked()):
            await self._queue(share, slots)
        else:  # free: each returns at once, no timer
            if share is not None:
                await share.acquire()
            await slots.acquire()
        try:
            try:
                target = pool.target(url)
            except ValueError:
                raise UpstreamUnavailable("bad upstream URL") from None
            head, chunked = _request_head(method, target, headers, body)
            again = pass_through and method in _IDEMPOTENT and not isinstance(body, AsyncIterator)
            while True:
                connection = await _connect(pool, target)
                try:
                    status, answer = await self._send_request(
                        connection, method, head, chunked, body
                    )
                except ConnectionBroke:
                    pool.discard(connection)
                    if again and not connection.received_any:
                        again = False
                        continue
                    raise UpstreamFailed(
                        "upstream_disconnected", "closed the connection without answering"
                    ) from None
                except BaseException:
                    pool.discard(connection)
                    raise
                break
            return await _relay(
                pool, connection, send, status, answer, extra_response_headers, self._client_idle
            )
        finally:
            slots.release()
            if share is not None:
                share.release()

    async def _queue(self, share: asyncio.Semaphore | None, slots: asyncio.Semaphore) -> None:
        """Take a slot of the pass-through `share` (when given), then one of all `slots`,
        within the queue wait; `UpstreamBusy` (none held) when that runs out."""
        taken: list[asyncio.Semaphore] = []
        try:
            async with asyncio.timeout(self._pool_wait):
                for slot in (slots,) if share is None else (share, slots):
                    await slot.acquire()
                    taken.append(slot)
        except BaseException as exc:
            for slot in taken:
                slot.release()
            if isinstance(exc, TimeoutError):
                raise UpstreamBusy from None
            raise

    async def _send_request(
        self,
        connection: UpstreamConnection,
        method: str,
        head: bytes,
        chunked: bool,
        body: bytes | AsyncIterator[bytes] | None,
    ) -> tuple[int, RawHeaders]:
        connection.begin(method == "HEAD", self._read_seconds)
        try:
            if body is None or isinstance(body, bytes):
                connection.write(head, body) if body else connection.write(head)
            else:
                await _write_stream(connection, head, chunked, body, self._client_idle)
            return await connection.head()
        except ReadTimedOut:
            raise UpstreamFailed("upstream_timeout", "did not answer in time") from None
        except AnswerRefused as exc:
            raise _answer_refused(exc.reason) from None


async def _write_stream(
    connection: UpstreamConnection,
    head: bytes,
    chunked: bool,
    body: AsyncIterator[bytes],
    idle_seconds: float,
) -> None:
    """Write a streamed body as it arrives, at the upstream's pace. An upstream that answers
    before the end (a 413, say) gets no more: its answer is relayed, the connection closed.
    A client that sends nothing for `idle_seconds` ends it: `ClientStalled`."""
    connection.write(head)
    connection.streaming(True)
    try:
        with ClientIdleWatch(idle_seconds) as idle:
            while True:
                idle.waiting()
                chunk = await anext(body, None)
                idle.done()
                if chunk is None:
                    break
                if chunk:
                    if chunked:
                        connection.write(b"%x\r\n" % len(chunk), chunk, b"\r\n")
                    else:
                        connection.write(chunk)
                    await connection.drain()
                if connection.answered:
                    connection.request_cut()
                    return
        if chunked:
            connection.write(b"0\r\n\r\n")
    except TimeoutError:
        raise ClientStalled(None) from None
    except ConnectionBroke:
        connection.request_cut()
        if not connection.answered:
            raise
    finally:
        connection.streaming(False)


async def _connect(pool: UpstreamPool, target: UpstreamTarget) -> UpstreamConnection:
    try:
        return await pool.acquire(target)
    except (OSError, TimeoutError) as exc:
        raise UpstreamUnavailable(type(exc).__name__) from None


async def _relay(
    pool: UpstreamPool,
    connection: UpstreamConnection,
    send: Send,
    status: int,
    answer: RawHeaders,
    extra_response_headers: RawHeaders | None,
    idle_seconds: float,
) -> int:
    """Stream the answer to the client; the connection goes back to the pool only when the
    exchange ended cleanly. A client that reads nothing for `idle_seconds` ends it:
    `ClientStalled`."""
    reusable = False
    try:
        out_headers = response_headers(answer)
        if extra_response_headers:
            out_headers.extend(extra_response_headers)
        await send({"type": "http.response.start", "status": status, "headers": out_headers})
        # uvicorn's send waits while the transport has paused writing: not before some of the
        # answer was sent (_SENDS_MAY_WAIT_AFTER), and most answers are shorter, so most never
        # start the watch's timer.
        sent = 0
        with ClientIdleWatch(idle_seconds) as idle:
            while True:
                try:
                    chunk = await connection.next_chunk()
                except (ConnectionBroke, ReadTimedOut, AnswerRefused):
                    # Headers are out: aborting the connection is the only honest signal left.
                    raise ResponseTruncated(status) from None
                if chunk is None:
                    break
                may_wait = sent > _SENDS_MAY_WAIT_AFTER
                if may_wait:
                    idle.waiting()
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                if may_wait:
                    idle.done()
                sent += len(chunk)
            reusable = connection.finish()
            may_wait = sent > _SENDS_MAY_WAIT_AFTER
            if may_wait:
                idle.waiting()
            await send({"type": "http.response.body", "body": b""})
            if may_wait:
                idle.done()
        return status
    except TimeoutError:
        raise ClientStalled(status) from None
    finally:
        if reusable:
            pool.release(connection)
        else:
            pool.discard(connection)


def _request_head(
    method: str,
    target: UpstreamTarget,
    headers: RawHeaders,
    body: bytes | AsyncIterator[bytes] | None,
) -> tuple[bytes, bool]:
    """The request line and headers: Host first (the client's, else the URL's authority),
    then the headers in their order. A whole body gets its own Content-Length (a matching one
    stays where the client put it); a streamed one keeps the client's Content-Length or goes
    chunked; no body says `Content-Length: 0` where the method has one (as aiohttp did)."""
    path = target.path
    if b" " in path or b"\r" in path or b"\n" in path or b"\t" in path or b"\0" in path:
        raise UpstreamFailed("upstream_bad_request", "could not be sent this request target")
    host = target.host_header
    chunked = False
    lines = []
    length: bytes | None = None
    for name, value in headers:
        if name == b"host":
            host = value
        elif name == b"content-length":
            if length is None:
                length = value
                lines.append(b"%b: %b\r\n" % (name, value))
        else:
            lines.append(b"%b: %b\r\n" % (name, value))
    if isinstance(body, bytes):
        if length is not None and length != b"%d" % len(body):
            lines = [line for line in lines if not line.startswith(b"content-length:")]
            length = None
        if length is None:
            lines.append(b"Content-Length: %d\r\n" % len(body))
    elif body is None:
        if length is None and method not in _BODYLESS_METHODS:
            lines.append(b"Content-Length: 0\r\n")
    elif length is None:
        lines.append(b"Transfer-Encoding: chunked\r\n")
        chunked = True
    head = b"%b %b HTTP/1.1\r\nHost: %b\r\n%b\r\n" % (
        method.encode("ascii"),
        path,
        host,
        b"".join(lines),
    )
    return head, chunked


def _answer_refused(reason: str) -> UpstreamFailed:
    """The upstream's answer head was refused: say which limit, or why. Nothing of the answer
    itself is passed on (it could quote a Set-Cookie)."""
    if reason == "too_many_headers":
        return UpstreamFailed(
            "upstream_too_many_headers",
            "answered with more header lines than limits.upstream_max_headers",
        )
    if reason == "header_too_large":
        return UpstreamFailed(
            "upstream_header_too_large",
            "answered with a header line over limits.upstream_max_header_bytes",
        )
    return UpstreamFailed("upstream_bad_answer", "answered with a malformed HTTP head")
