"""Building Redis clients: one way for every part of authswitch, synchronous or asyncio.

Every client gives up on a command after ``socket_timeout`` and never retries it: redis-py
retries failed commands by default (three times, with backoff), which would turn a 0.5 s
timeout into seconds, and every caller here has its own retry policy (a follower's backoff, a
CLI's exit code, a callback's fall-through). A password from a mounted secret file wins over
one in the URL; ``ca_file`` is the CA bundle that verifies a ``rediss://`` server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry


def connect_redis(
    url: str,
    *,
    socket_timeout: float,
    client_name: str,
    password: str | None = None,
    ca_file: Path | None = None,
) -> redis.Redis:
    """A synchronous client (follower threads, CLIs)."""
    client = redis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), **_options(socket_timeout))
    _override_url(client.connection_pool.connection_kwargs, url, client_name, password, ca_file)
    return client


def connect_async_redis(
    url: str,
    *,
    socket_timeout: float,
    client_name: str,
    password: str | None = None,
    ca_file: Path | None = None,
) -> redis.asyncio.Redis:
    """An asyncio client (the event loop's lookups and writes)."""
    client = redis.asyncio.Redis.from_url(
        url, retry=AsyncRetry(NoBackoff(), 0), **_options(socket_timeout)
    )
    _override_url(client.connection_pool.connection_kwargs, url, client_name, password, ca_file)
    return client


def _options(socket_timeout: float) -> dict[str, Any]:
    return {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_timeout,
        "retry_on_timeout": False,
    }


def _override_url(
    kwargs: dict[str, Any],
    url: str,
    client_name: str,
    password: str | None,
    ca_file: Path | None,
) -> None:
    # redis-py lets the URL (user info and query) win over from_url's keyword arguments; the
    # pool's connection arguments are read at each connect, so setting them here makes the
    # mounted secret and the configured CA win instead.
    kwargs["client_name"] = client_name
    if password is not None:
        kwargs["password"] = password
    if ca_file is not None:
        if not url.startswith("rediss://"):
            raise ValueError("a CA file needs a rediss:// (TLS) url")
        kwargs["ssl_ca_certs"] = str(ca_file)


def redact_url(url: str) -> str:
    """The URL without password or query (``redis://user:***@host:6379/0``), for people to read."""
    try:
        parts = urlsplit(url)
        if not parts.netloc:  # unix:///path/to/redis.sock
            return f"{parts.scheme}://{parts.path}"
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        credentials = ""
        if parts.username or parts.password is not None:
            credentials = (parts.username or "") + (":***" if parts.password is not None else "")
            credentials += "@"
        port = f":{parts.port}" if parts.port else ""
        # The query is dropped too: redis-py also reads a password from ``?password=``.
        return urlunsplit((parts.scheme, f"{credentials}{host}{port}", parts.path, "", ""))
    except ValueError:
        return "(unparseable redis url)"
