"""uvicorn's httptools protocol with the limits it lacks: request head size and line count
(431), a deadline for the request head (slowloris), a cap on open connections, and chunked
trailer fields kept out of the request's headers.

llhttp, under httptools, has no header size limit of its own (Node.js enforces one around
it) and uvicorn starts no timer until a first answer is sent, so these limits sit here, on
the bytes as they arrive, before any request reaches the ASGI app.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httptools
from uvicorn.config import Config as UvicornConfig
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from proxy.config import ServerLimits
from proxy.http.headers import unended_line
from proxy.ops.metrics import REFUSED_CONNECTIONS

log = logging.getLogger("authswitch")

# At shutdown, a connection accepted but not yet heard from may have its first request on
# the way (sent before the listener stopped): it gets this long to arrive before the close.
FIRST_REQUEST_GRACE_SECONDS = 1.0

_REFUSALS = {
    "header_too_large": (431, b"Request Header Fields Too Large", "over server.max_header_bytes"),
    "too_many_headers": (431, b"Request Header Fields Too Large", "over server.max_headers"),
    "header_timeout": (408, b"Request Timeout", "over server.header_seconds"),
    # RFC 9112 section 3.2: which Host would the upstream believe? Answered, never forwarded.
    "duplicate_host": (400, b"Bad Request", "with more than one Host header"),
}


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class GuardedHttpProtocol(HttpToolsProtocol):
    """One client connection; refuses a request head over the limits before it is parsed
    into memory, and closes a connection that does not send its head in time."""

    def __init__(
        self,
        config: UvicornConfig,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: ServerLimits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._limits = limits
        self._head_deadline: asyncio.TimerHandle | None = None
        self._in_head = False
        self._head_bytes = 0  # bytes received since the head began, while it is unfinished
        self._head_exact = 0  # request line and complete header lines seen so far
        self._head_lines = 0
        self._hosts = 0
        self._refused = False
        # A chunk header came and no chunk data since: the last chunk's trailer lines may be
        # arriving, which httptools buffers until each ends, as it does header lines.
        self._maybe_trailers = False
        self._trailer_line = 0
        self._stopping = False  # shutdown began: the request under way is the last one

    # -- connection ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if len(self.connections) >= self._limits.max_connections:
            self._refused = True
            REFUSED_CONNECTIONS.labels("connection_limit").inc()
            transport.close()
            return
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm_head_deadline()  # a new connection must send its first request head in time

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is None:  # refused in connection_made: uvicorn never saw it
            return
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _Refused):
                self._refuse(exc.__context__.reason)
                return
            self._bad_request()
            return
        except httptools.HttpParserUpgrade:  # as uvicorn: its websocket path, or plain HTTP
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            self._bad_request()
            return
        if self._in_head:
            # httptools buffers an unfinished header line itself; count the raw bytes so one
            # endless line cannot grow it past the limit.
            self._head_bytes += len(data)
            if self._head_bytes > self._limits.max_header_bytes:
                self._refuse("header_too_large")
        elif self._maybe_trailers:
            # The same for a trailer line: its bytes since the last newline.
            self._trailer_line = unended_line(self._trailer_line, data)
            if self._trailer_line > self._limits.max_header_bytes:
                self._cut_trailers()

    def shutdown(self) -> None:
        """uvicorn closes every connection without a request in progress. Two of those may
        hold a request already sent: a connection still receiving a request head, and one
        accepted but not yet read. Both get that request answered, with `connection: close`;
        only a connection idle after an answer is closed at once."""
        if self._refused:
            return
        if self._in_head:
            self._stopping = True
            return
        if self.cycle is None:
            self._stopping = True
            self.loop.call_later(FIRST_REQUEST_GRACE_SECONDS, self._close_if_silent)
            return
        super().shutdown()

    def _close_if_silent(self) -> None:
        if self.cycle is None and not self._in_head and not self._refused:
            self.transport.close()

    # -- parser callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = self._head_exact = self._head_lines = 0
        self._hosts = 0
        if self._head_deadline is None:
            self._arm_head_deadline()

    def on_url(self, url: bytes) -> None:
        self._head_exact += len(url)
        if self._head_exact > self._limits.max_header_bytes:
            raise _Refused("header_too_large")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._in_head:
            # A chunked body's trailer field: llhttp reports it like a header, and uvicorn would
            # append it to the request's headers (a trailer Host, Authorization or
            # X-Forwarded-For would then be forwarded). Trailers are never request headers.
            return
        self._head_exact += len(name) + len(value) + 4
        self._head_lines += 1
        if len(name) == 4 and name.lower() == b"host":
            self._hosts += 1
            if self._hosts > 1:
                raise _Refused("duplicate_host")
        if self._head_exact > self._limits.max_header_bytes:
            raise _Refused("header_too_large")
        if self._head_lines > self._limits.max_headers:
            raise _Refused("too_many_headers")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._maybe_trailers = False
        self._disarm_head_deadline()
        super().on_headers_complete()
        if self._stopping:
            self.cycle.keep_alive = False

    def on_chunk_header(self) -> None:
        self._maybe_trailers = True
        self._trailer_line = 0

    def on_body(self, body: bytes) -> None:
        self._maybe_trailers = False
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._maybe_trailers = False
        super().on_message_complete()

    # -- refusals -----------------------------------------------------------------------------

    def _arm_head_deadline(self) -> None:
        self._disarm_head_deadline()
        self._head_deadline = self.loop.call_later(
            self._limits.header_seconds, self._head_deadline_passed
        )

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_deadline_passed(self) -> None:
        self._head_deadline = None
        if self._refused or self.transport.is_closing():
            return
        if self._in_head:
            self._refuse("header_timeout")
            return
        # Connected but silent: nothing to answer, nothing lost.
        REFUSED_CONNECTIONS.labels("header_timeout").inc()
        self._refused = True
        self.transport.close()

    def _refuse(self, reason: str) -> None:
        """Answer the refusal and close; the request never reaches the app."""
        status, phrase, what = _REFUSALS[reason]
        self._refused = True
        self._disarm_head_deadline()
        REFUSED_CONNECTIONS.labels(reason).inc()
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined head during an answer: finish that answer, then close.
            self.cycle.keep_alive = False
            return
        log.warning(
            "request refused before routing",
            extra={"fields": {"reason": reason, "status": status, "client": self._client_ip()}},
        )
        body = json.dumps(
            {"error": reason, "message": f"request head {what}"}, separators=(",", ":")
        ).encode()
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (status, phrase, len(body), body)
        )
        self.transport.close()

    def _cut_trailers(self) -> None:
        """A trailer line past max_header_bytes: the request's head is long gone to the app,
        so there is no refusal to answer; the connection is closed (the app sees the client
        gone) before the line is buffered any further."""
        self._refused = True
        self._maybe_trailers = False
        REFUSED_CONNECTIONS.labels("trailer_too_large").inc()
        log.warning(
            "request trailer line over server.max_header_bytes; connection closed",
            extra={"fields": {"client": self._client_ip()}},
        )
        self.transport.close()
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True
            self.cycle.message_event.set()

    def _bad_request(self) -> None:
        self._refused = True
        self._disarm_head_deadline()
        self.logger.warning("Invalid HTTP request received.")
        self.send_400_response("Invalid HTTP request received.")

    def _client_ip(self) -> str | None:
        return self.client[0] if self.client else None
