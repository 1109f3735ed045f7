"""The metrics port: one thread with its own event loop, however many clients connect.

A thread per connection (http.server's ThreadingHTTPServer) lets half-open connections pile
up threads without bound; here a connection costs a few kilobytes, must send its request
head within a deadline, and past a cap is closed at once.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading

from proxy.ops.metrics import exposition

MAX_HEAD_BYTES = 8192
log = logging.getLogger("authswitch")


class MetricsServer:
    """Serves the metrics exposition on `host:port` from a daemon thread."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        head_seconds: float = 5.0,
        write_seconds: float = 10.0,
        max_connections: int = 1024,
    ) -> None:
        # Bound here, in the caller's thread, so a port in use fails `serve` at once.
        self._socket = socket.create_server((host, port), reuse_port=False)
        self.port: int = self._socket.getsockname()[1]
        self._head_seconds = head_seconds
        self._write_seconds = write_seconds
        self._max_connections = max_connections
        self._open = 0
        self._thread = threading.Thread(target=self._run, name="metrics", daemon=True)

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        server = await asyncio.start_server(self._handle, sock=self._socket, limit=MAX_HEAD_BYTES)
        async with server:
            await server.serve_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._open >= self._max_connections:
            writer.transport.abort()
            return
        self._open += 1
        try:
            async with asyncio.timeout(self._head_seconds):
                head = await reader.readuntil(b"\r\n\r\n")
            status, body, content_type = _answer(head)
            writer.write(
                b"HTTP/1.1 %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n"
                b"connection: close\r\n\r\n" % (status, content_type.encode(), len(body))
            )
            if not head.startswith(b"HEAD "):
                writer.write(body)
            async with asyncio.timeout(self._write_seconds):
                await writer.drain()
            writer.close()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            writer.transport.abort()  # a slow, oversized or vanished scraper
        except Exception as exc:  # the scrape fails, the port keeps serving
            log.error("metrics exposition failed: %s", type(exc).__name__)
            writer.transport.abort()
        finally:
            self._open -= 1


def _answer(head: bytes) -> tuple[bytes, bytes, str]:
    method = head.split(b" ", 1)[0]
    if method not in (b"GET", b"HEAD"):
        return b"405 Method Not Allowed", b"only GET\n", "text/plain"
    body, content_type = exposition()
    return b"200 OK", body, content_type
