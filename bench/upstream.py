"""A fast HTTP/1.1 upstream for the benchmark: answers 200 to anything, keeps connections alive.

It is a bare asyncio.Protocol so that it is never the bottleneck: the proxies under test pay for
their own HTTP parsing, this server does the least parsing that still reads request bodies
correctly (Content-Length and chunked) and supports keep-alive and pipelining.

The response echoes the request path in ``x-bench-path`` so the orchestrator can check that a
request reached the legacy path or the new provider's path.

Run: ``python -m bench.upstream --port 9000``
"""

from __future__ import annotations

import argparse
import asyncio
import signal

_BODY = b"ok\n"
_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"content-type: text/plain\r\n"
    b"content-length: " + str(len(_BODY)).encode() + b"\r\n"
    b"x-bench-path: "
)
_HEADER_LIMIT = 64 * 1024


class _BadRequest(Exception):
    pass


class UpstreamProtocol(asyncio.Protocol):
    """One client connection: parse requests as they arrive and answer each one at once."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        try:
            while self._answer_one():
                pass
        except _BadRequest:
            if self._transport is not None:
                self._transport.write(
                    b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                )
                self._transport.close()

    def _answer_one(self) -> bool:
        """Answer the first complete request in the buffer; False when more bytes are needed."""
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > _HEADER_LIMIT:
                raise _BadRequest
            return False
        request_line, _, headers = bytes(buffer[:end]).partition(b"\r\n")
        try:
            path = request_line.split(b" ", 2)[1]
        except IndexError:
            raise _BadRequest from None
        length = 0
        chunked = False
        close = False
        for line in headers.lower().split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    raise _BadRequest from None
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value
            elif name == b"connection":
                close = b"close" in value
        start = end + 4
        if chunked:
            try:
                consumed = _chunked_end(buffer, start)
            except ValueError:
                raise _BadRequest from None
            if consumed < 0:
                return False
        else:
            consumed = start + length
            if len(buffer) < consumed:
                return False
        del buffer[:consumed]
        transport = self._transport
        assert transport is not None
        transport.write(_HEAD + path.split(b"?", 1)[0] + b"\r\n\r\n" + _BODY)
        if close:
            transport.close()
            return False
        return True


def _chunked_end(buffer: bytearray, pos: int) -> int:
    """Index just past a complete chunked body starting at pos, or -1 if it is incomplete."""
    while True:
        line_end = buffer.find(b"\r\n", pos)
        if line_end < 0:
            return -1
        size = int(bytes(buffer[pos:line_end]).split(b";", 1)[0], 16)
        pos = line_end + 2
        if size == 0:
            # Trailers (rarely sent) end with an empty line.
            trailer_end = buffer.find(b"\r\n", pos)
            while trailer_end > pos:
                pos = trailer_end + 2
                trailer_end = buffer.find(b"\r\n", pos)
            return -1 if trailer_end < 0 else trailer_end + 2
        pos += size + 2
        if pos > len(buffer):
            return -1


async def serve(host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(UpstreamProtocol, host, port, backlog=1024)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
