"""Kept-alive upstream connections, per origin, bounded in all.

At most `size` connections are open at once, idle ones included (the forwarder's slots bound
the busy ones to the same number): when a new connection is needed and the bound is reached,
the idle connection unused the longest is closed first. An idle connection is reused newest
first and closed after `keepalive_seconds` unused, or at once when the upstream closed it.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from dataclasses import dataclass
from typing import Final

from proxy.http.upstream_connection import UpstreamConnection

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class UpstreamOrigin:
    """Where a request goes: scheme, host and port, and the Host header the URL implies."""

    scheme: str
    host: str
    port: int
    host_header: bytes


@dataclass(frozen=True, slots=True)
class UpstreamTarget:
    origin: UpstreamOrigin
    path: bytes  # the request target: path and query, exactly as they will be written

    @property
    def host_header(self) -> bytes:
        return self.origin.host_header


def parse_origin(authority: str, scheme: str) -> UpstreamOrigin:
    """`host`, `host:port`, `[v6]` or `[v6]:port` of an http(s) URL."""
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"upstream URL scheme must be http or https, not {scheme!r}")
    if "@" in authority:
        raise ValueError("upstream URL must not carry credentials")
    host, port_text = authority, ""
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise ValueError("upstream URL has an unclosed IPv6 literal")
        host, rest = authority[1:end], authority[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError("upstream URL authority is malformed")
            port_text = rest[1:]
    elif ":" in authority:
        host, _, port_text = authority.rpartition(":")
    if not host:
        raise ValueError("upstream URL has no host")
    port = _DEFAULT_PORTS[scheme]
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError("upstream URL port is not a number from 1 to 65535")
        port = int(port_text)
    if not authority.isascii():
        raise ValueError("upstream URL host must be ASCII (punycode for an international name)")
    return UpstreamOrigin(scheme, host, port, authority.encode("ascii"))


class UpstreamPool:
    """The forwarder's connections. Everything here runs on the event loop's thread."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        size: int,
        connect_seconds: float,
        keepalive_seconds: float,
        max_line: int,
        max_headers: int,
    ) -> None:
        self._loop = loop
        self._size = size
        self._connect_seconds = connect_seconds
        self._keepalive = keepalive_seconds
        self._max_line = max_line
        self._max_headers = max_headers
        self._origins: dict[str, UpstreamOrigin] = {}
        # Per origin, idle connections oldest first; reused from the end.
        self._idle: dict[UpstreamOrigin, collections.deque[UpstreamConnection]] = {}
        self._idle_count = 0
        self._open = 0  # connections open or being opened, idle ones included
        self._sweep: asyncio.TimerHandle | None = None
        self._ssl: ssl.SSLContext | None = None
        self._closed = False

    def target(self, url: str) -> UpstreamTarget:
        """Split an absolute http(s) URL into its origin and request target."""
        scheme, sep, rest = url.partition("://")
        if not sep:
            raise ValueError("upstream URL must be absolute")
        cut = len(rest)
        for mark in "/?":
            at = rest.find(mark)
            if 0 <= at < cut:
                cut = at
        authority, path = rest[:cut], rest[cut:]
        key = scheme + "://" + authority
        origin = self._origins.get(key)
        if origin is None:
            origin = self._origins[key] = parse_origin(authority, scheme)
        if not path:
            path = "/"
        elif path[0] == "?":
            path = "/" + path
        return UpstreamTarget(origin, path.encode("latin-1"))

    async def acquire(self, target: UpstreamTarget) -> UpstreamConnection:
        """A kept-alive connection to the target's origin, or a new one (OSError or
        TimeoutError when it can't be made within the connect timeout)."""
        if self._closed:
            raise RuntimeError("the upstream pool is closed")
        origin = target.origin
        idle = self._idle.get(origin)
        if idle:
            now = self._loop.time()
            while idle:
                connection = idle.pop()
                self._idle_count -= 1
                if not connection.lost and now - connection.idle_since < self._keepalive:
                    return connection
                self._drop(connection)
        if self._open >= self._size:
            self._close_oldest_idle()
        self._open += 1
        try:
            return await self._connect(origin)
        except BaseException:
            self._open -= 1
            raise

    def release(self, connection: UpstreamConnection) -> None:
        """Back to the pool after a clean exchange."""
        if self._closed or connection.lost or self._keepalive <= 0:
            self._drop(connection)
            return
        connection.idle_since = self._loop.time()
        origin = connection.origin
        assert origin is not None
        idle = self._idle.get(origin)
        if idle is None:
            idle = self._idle[origin] = collections.deque()
        idle.append(connection)
        self._idle_count += 1
        if self._sweep is None:
            self._sweep = self._loop.call_later(self._keepalive, self._expire)

    def discard(self, connection: UpstreamConnection) -> None:
        """A connection that will not come back: closed and no longer counted."""
        self._drop(connection)

    def close(self) -> None:
        self._closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for idle in self._idle.values():
            while idle:
                self._drop(idle.pop())
        self._idle_count = 0

    async def _connect(self, origin: UpstreamOrigin) -> UpstreamConnection:
        context = None
        if origin.scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        async with asyncio.timeout(self._connect_seconds):
            _, connection = await self._loop.create_connection(
                lambda: UpstreamConnection(self._loop, self._max_line, self._max_headers),
                origin.host,
                origin.port,
                ssl=context,
                server_hostname=origin.host if context is not None else None,
            )
        connection.origin = origin
        return connection

    def _drop(self, connection: UpstreamConnection) -> None:
        if not connection.counted:
            return
        connection.counted = False
        self._open -= 1
        connection.close()

    def _close_oldest_idle(self) -> None:
        oldest: collections.deque[UpstreamConnection] | None = None
        for idle in self._idle.values():
            if idle and (oldest is None or idle[0].idle_since < oldest[0].idle_since):
                oldest = idle
        if oldest is not None:
            self._idle_count -= 1
            self._drop(oldest.popleft())

    def _expire(self) -> None:
        """Close what stayed idle for the keep-alive time; re-armed while anything is idle."""
        self._sweep = None
        deadline = self._loop.time() - self._keepalive
        for idle in self._idle.values():
            while idle and (idle[0].idle_since <= deadline or idle[0].lost):
                self._idle_count -= 1
                self._drop(idle.popleft())
        if self._idle_count and not self._closed:
            self._sweep = self._loop.call_later(self._keepalive / 2, self._expire)
