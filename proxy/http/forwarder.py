"""Server-side HTTP forwarding with aiohttp: the legacy fall-through and `proxy` mode.

aiohttp rather than httpx on this path: measured here, httpx adds ~1 ms of CPU per proxied
request (its pool polls every pooled connection), aiohttp ~0.1 ms. No cookie jar (a shared
jar leaks one user's Set-Cookie to the next), no redirects followed, no decompression: the
client gets the upstream's answer as it was.

Delivery rule: a callback carries a single-use artifact (SAML assertion, OIDC code), so it is
sent upstream at most once. aiohttp resends an idempotent request (GET, HEAD, OPTIONS, TRACE,
PUT, DELETE) once when the connection closes or resets before the answer (RFC 9112 9.3.1);
`forward(..., resend=False)` turns that off for callbacks. Pass-through requests keep it.

Pool bound: at most `pool_size` requests are upstream at once, each holding one connection.
Beyond it a request queues (FIFO) for up to `pool_wait_seconds`, then ends as `UpstreamBusy`
without having been sent. Unbounded, a load spike opened one upstream connection per client
and, under the common 1 024 open-file limit, half of the callbacks failed for lack of file
descriptors; queued, they wait a few milliseconds instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from proxy.http.asgi_types import RawHeaders, Send
from proxy.http.forwarded_headers import response_headers

_SKIP_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")


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


class _SentThenDisconnected(aiohttp.ClientError):
    """The connection broke after the request was (maybe) written: not aiohttp's retry case."""


async def _never_resend(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    """Per-request middleware: hides a post-send disconnect from aiohttp's resend loop.

    ClientConnectorError (a ClientOSError too) means the connection was never made, so it
    passes unchanged: nothing reached the upstream.
    """
    try:
        return await handler(request)
    except aiohttp.ClientConnectorError:
        raise
    except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as exc:
        raise _SentThenDisconnected(type(exc).__name__) from exc


_NEVER_RESEND = (_never_resend,)


class ResponseTruncated(Exception):
    """The upstream broke off mid-response; the client's connection must be aborted."""


class HttpForwarder:
    """One pooled aiohttp session per process, created inside the running event loop."""

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
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_seconds, sock_read=read_seconds
        )
        self._keepalive = keepalive_seconds
        self._max_header_bytes = max_header_bytes
        self._max_headers = max_headers
        self._pool_size = pool_size
        self._pool_wait = pool_wait_seconds
        self._slots = asyncio.Semaphore(pool_size)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        # The connector's own limit backs the slots up: with both at `pool_size`, aiohttp never
        # waits for a connection itself (its wait would count against the connect timeout).
        connector = aiohttp.TCPConnector(
            limit=self._pool_size, keepalive_timeout=self._keepalive, ttl_dns_cache=60
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            skip_auto_headers=_SKIP_AUTO_HEADERS,
            timeout=self._timeout,
            max_line_size=self._max_header_bytes,
            max_field_size=self._max_header_bytes,
            max_headers=self._max_headers,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def forward(
        self,
        send: Send,
        *,
        method: str,
        url: str,
        headers: RawHeaders,
        body: bytes | AsyncIterator[bytes] | None,
        extra_response_headers: RawHeaders | None = None,
        resend: bool = False,
    ) -> int:
        """Send the request upstream and stream its answer to `send`; return the status.

        With `resend` False (callbacks) the request is written at most once; with True
        (pass-through) aiohttp's one resend of idempotent methods applies. `UpstreamBusy`
        when no pooled connection came free within the queue wait.
        """
        if self._session is None:
            raise RuntimeError("HttpForwarder.start() was not awaited")
        if self._slots.locked():
            try:
                async with asyncio.timeout(self._pool_wait):
                    await self._slots.acquire()
            except TimeoutError:
                raise UpstreamBusy from None
        else:
            await self._slots.acquire()  # free: returns at once, no timer
        try:
            return await self._exchange(
                self._session, send, method, url, headers, body, extra_response_headers, resend
            )
        finally:
            self._slots.release()

    async def _exchange(
        self,
        session: aiohttp.ClientSession,
        send: Send,
        method: str,
        url: str,
        headers: RawHeaders,
        body: bytes | AsyncIterator[bytes] | None,
        extra_response_headers: RawHeaders | None,
        resend: bool,
    ) -> int:
        header_map = CIMultiDict(
            (name.decode("latin-1"), _header_text(value)) for name, value in headers
        )
        if isinstance(body, bytes) and header_map.get("Content-Length") != str(len(body)):
            # aiohttp sets the body's own length; a matching one stays where the client put it.
            header_map.popall("Content-Length", None)
        try:
            response = await session.request(
                method,
                URL(url, encoded=True),
                headers=header_map,
                data=body,
                allow_redirects=False,
                middlewares=None if resend else _NEVER_RESEND,
            )
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise UpstreamUnavailable(type(exc).__name__) from None
        except (aiohttp.SocketTimeoutError, TimeoutError):
            raise UpstreamFailed("upstream_timeout", "did not answer in time") from None
        except (_SentThenDisconnected, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
            raise UpstreamFailed(
                "upstream_disconnected", "closed the connection without answering"
            ) from None
        except aiohttp.ClientResponseError as exc:
            raise _answer_refused(exc) from None
        except aiohttp.ClientError:
            raise UpstreamFailed("upstream_error", "failed before answering") from None
        async with response:
            out_headers = response_headers(list(response.raw_headers))
            if extra_response_headers:
                out_headers.extend(extra_response_headers)
            await send(
                {"type": "http.response.start", "status": response.status, "headers": out_headers}
            )
            try:
                async for chunk in response.content.iter_any():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except (aiohttp.ClientError, TimeoutError):
                # Headers are out: aborting the connection is the only honest signal left.
                raise ResponseTruncated from None
            await send({"type": "http.response.body", "body": b""})
            return response.status


def _answer_refused(exc: aiohttp.ClientResponseError) -> UpstreamFailed:
    """The upstream's answer head was refused by aiohttp's parser: say which limit, or why.

    The parser's message quotes the offending bytes (a Set-Cookie, say), so it is only
    classified here, never passed on.
    """
    cause = exc.__cause__ or exc.__context__
    detail = getattr(cause, "message", "") if cause is not None else exc.message
    detail = str(detail).lower()
    if "too many headers" in detail:
        return UpstreamFailed(
            "upstream_too_many_headers",
            "answered with more header lines than limits.upstream_max_headers",
        )
    if "got more than" in detail or "too long" in detail:
        return UpstreamFailed(
            "upstream_header_too_large",
            "answered with a header line over limits.upstream_max_header_bytes",
        )
    return UpstreamFailed("upstream_bad_answer", "answered with a malformed HTTP head")


def _header_text(value: bytes) -> str:
    """The str aiohttp writes back as exactly `value`: it encodes header values as UTF-8, so a
    raw UTF-8 value (a cookie with an accent) must be decoded as UTF-8 to arrive unchanged.
    Other bytes can't round-trip through aiohttp; they go as Latin-1, as before."""
    if value.isascii():
        return value.decode("ascii")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")
