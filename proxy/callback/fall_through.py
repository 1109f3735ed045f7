"""Falling through to legacy: the request reaches the legacy upstream as it would without us.

Used for callbacks that stay on legacy and for every request that is not a callback (passed
through with its body streamed, never buffered).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from functools import partial
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from proxy.callback.account import account_pass_through
from proxy.config import Forwarding, Legacy, Tracing
from proxy.http.asgi_types import Message, RawHeaders, Receive, Scope, Send
from proxy.http.correlation import correlate
from proxy.http.forwarded_headers import request_headers
from proxy.http.forwarder import (
    BUSY_MESSAGE,
    BUSY_REASON,
    ClientStalled,
    HttpForwarder,
    ResponseTruncated,
    UpstreamBusy,
    UpstreamFailed,
    UpstreamUnavailable,
)
from proxy.http.headers import client_host, content_length, has_body, header_value
from proxy.http.request_body import ClientDisconnected
from proxy.http.responses import send_error

if TYPE_CHECKING:
    from proxy.callback.context import Callback
    from proxy.ops.tracing import RequestTracing


_BODY_IDLE = "request body idle longer than timeouts.client_idle_seconds"


class LegacyFallThrough:
    """Forwards requests to the legacy upstream and answers with what it answered."""

    def __init__(
        self,
        legacy: Legacy,
        forwarding: Forwarding,
        forwarder: HttpForwarder,
        correlation: Tracing | None = None,
        tracing: RequestTracing | None = None,
    ) -> None:
        url = urlsplit(str(legacy.url))
        self._base = f"{url.scheme}://{url.netloc}{url.path.rstrip('/')}"
        self._host = None if legacy.preserve_host else url.netloc.encode()
        self._trust_forwarded = forwarding.trust_forwarded_headers
        self._forwarder = forwarder
        correlation = correlation or Tracing()
        self._request_id_header = correlation.request_id_header.encode()
        # Set only when configured to add the request id to requests that arrive without one.
        self._send_request_id = self._request_id_header if correlation.send_request_id else None
        self._tracing = tracing

    async def fall_through(self, callback: Callback, send: Send) -> None:
        """Send the callback to legacy with the body authswitch read; record what happened."""
        callback.status, callback.outcome = await self.forward(
            callback.scope, send, callback.body, callback.request_id
        )
        callback.destination = "legacy"

    async def pass_through(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A request that is not a callback: streamed to legacy, logged and counted."""
        started = time.perf_counter()
        request_id, trace_id = correlate(scope["headers"], self._request_id_header)
        if self._tracing is None:
            await self._pass(receive, send, started, request_id, scope, trace_id)
        else:  # `scope` then comes with the span's trace context when it is propagated
            run = partial(self._pass, receive, send, started, request_id)
            await self._tracing.trace_pass_through(scope, request_id, run)

    async def _pass(
        self,
        receive: Receive,
        send: Send,
        started: float,
        request_id: str,
        scope: Scope,
        trace_id: str | None,
        span_id: str | None = None,
    ) -> tuple[int | None, str]:
        try:
            body = await _request_body(receive, scope["headers"])
            status, outcome = await self.forward(scope, send, body, request_id, pass_through=True)
        except ClientDisconnected:
            return None, "client_disconnected"
        except ResponseTruncated as exc:  # aborted by the app; counted first
            account_pass_through(
                scope, request_id, started, exc.status, "upstream_truncated", trace_id, span_id
            )
            raise
        except ClientStalled as exc:
            # Its body stopped coming (nothing answered yet: a 408, and the connection closes
            # rather than wait for the rest), or it stopped reading (re-raised: aborted).
            status = 408 if exc.status is None else exc.status
            account_pass_through(
                scope, request_id, started, status, "client_timeout", trace_id, span_id
            )
            if exc.status is not None:
                raise
            await send_error(send, 408, "body_timeout", _BODY_IDLE, request_id, close=True)
            return status, "client_timeout"
        account_pass_through(scope, request_id, started, status, outcome, trace_id, span_id)
        return status, outcome

    async def forward(
        self,
        scope: Scope,
        send: Send,
        body: bytes | AsyncIterator[bytes] | None,
        request_id: str,
        *,
        pass_through: bool = False,
    ) -> tuple[int, str]:
        """Forward to legacy; the answer's status and the outcome (`legacy_*`).

        `pass_through` only for requests that are not callbacks: a callback is written upstream
        at most once, and may take the pool's slots reserved for callbacks.
        """
        headers = request_headers(
            scope["headers"],
            client_host=client_host(scope),
            scheme=scope["scheme"],
            host=header_value(scope["headers"], b"host"),
            upstream_host=self._host,
            trust_forwarded=self._trust_forwarded,
        )
        if self._send_request_id is not None:
            add_request_id(headers, scope["headers"], self._send_request_id, request_id)
        raw_path = scope.get("raw_path") or quote(scope["path"]).encode()
        url = self._base + raw_path.decode("latin-1")
        if scope["query_string"]:
            url += "?" + scope["query_string"].decode("latin-1")
        try:
            status = await self._forwarder.forward(
                send,
                method=scope["method"],
                url=url,
                headers=headers,
                body=body,
                extra_response_headers=[(b"x-request-id", request_id.encode())],
                pass_through=pass_through,
            )
        except UpstreamUnavailable:
            await send_error(
                send,
                502,
                "legacy_unavailable",
                "the legacy upstream could not be reached",
                request_id,
            )
            return 502, "legacy_unavailable"
        except UpstreamBusy:
            await send_error(send, 503, BUSY_REASON, BUSY_MESSAGE, request_id)
            return 503, BUSY_REASON
        except UpstreamFailed as exc:
            await send_error(send, 502, exc.reason, f"the legacy upstream {exc.what}", request_id)
            return 502, "legacy_upstream_error"
        return status, "legacy_proxied"


def add_request_id(
    upstream: RawHeaders, incoming: RawHeaders, header: bytes, request_id: str
) -> None:
    """Give the upstream request authswitch's request id when the client sent none; one it
    sent, valid or not, reaches the upstream unchanged."""
    if header_value(incoming, header) is None:
        upstream.append((header, request_id.encode()))


async def _request_body(
    receive: Receive, headers: RawHeaders
) -> bytes | AsyncIterator[bytes] | None:
    """The body to forward: None without one; the bytes when a Content-Length body came whole
    in the first message (most do: aiohttp then writes head and body in one send, with the
    client's Content-Length where it was); else streamed, never buffered."""
    if not has_body(headers):
        return None
    message: Message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnected
    chunk: bytes = message.get("body", b"")
    more = message.get("more_body", False)
    if not more and content_length(headers) == len(chunk):
        return chunk
    return _stream_body(receive, chunk, more)


async def _stream_body(receive: Receive, first: bytes, more: bool) -> AsyncIterator[bytes]:
    if first:
        yield first
    if not more:
        return
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return
