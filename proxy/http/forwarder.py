"""Server-side HTTP forwarding with aiohttp: the legacy fall-through and `proxy` mode.

aiohttp rather than httpx on this path: measured here, httpx adds ~1 ms of CPU per proxied
request (its pool polls every pooled connection), aiohttp ~0.1 ms. No cookie jar (a shared
jar leaks one user's Set-Cookie to the next), no redirects followed, no decompression: the
client gets the upstream's answer as it was.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from proxy.http.asgi_types import RawHeaders, Send
from proxy.http.forwarded_headers import response_headers

_SKIP_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")


class UpstreamUnavailable(Exception):
    """The upstream could not be reached: it cannot have received the request."""


class UpstreamFailed(Exception):
    """The upstream failed after the request may have reached it; never retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ResponseTruncated(Exception):
    """The upstream broke off mid-response; the client's connection must be aborted."""


class HttpForwarder:
    """One pooled aiohttp session per process, created inside the running event loop."""

    def __init__(
        self, *, connect_seconds: float, read_seconds: float, keepalive_seconds: float
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_seconds, sock_read=read_seconds
        )
        self._keepalive = keepalive_seconds
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=0, keepalive_timeout=self._keepalive, ttl_dns_cache=60
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            skip_auto_headers=_SKIP_AUTO_HEADERS,
            timeout=self._timeout,
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
    ) -> int:
        """Send the request upstream and stream its answer to `send`; return the status."""
        if self._session is None:
            raise RuntimeError("HttpForwarder.start() was not awaited")
        header_map = CIMultiDict(
            (name.decode("latin-1"), value.decode("latin-1")) for name, value in headers
        )
        if isinstance(body, bytes):
            header_map.popall("Content-Length", None)
        try:
            response = await self._session.request(
                method,
                URL(url, encoded=True),
                headers=header_map,
                data=body,
                allow_redirects=False,
            )
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise UpstreamUnavailable(type(exc).__name__) from None
        except (aiohttp.SocketTimeoutError, TimeoutError):
            raise UpstreamFailed("upstream_timeout") from None
        except aiohttp.ClientError:
            raise UpstreamFailed("upstream_error") from None
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
