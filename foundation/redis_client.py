"""Building Redis clients: one way for every part of authswitch, synchronous or asyncio.

Every client gives up on a command after ``socket_timeout`` and never retries it: redis-py
retries failed commands by default (three times, with backoff), which would turn a 0.5 s
timeout into seconds, and every caller here has its own retry policy (a follower's backoff, a
CLI's exit code, a callback's fall-through). A password from a mounted secret file wins over
one in the URL; ``ca_file`` is the CA bundle that verifies a ``rediss://`` server.

The topology (``RedisTopology``) says how the server is found: the URL's host (standalone),
the master a set of Sentinels names (redis-py's ``Sentinel``, which asks them again on every
new connection, so a failover is followed), or a Redis Cluster (``RedisCluster``, which follows
``MOVED`` redirections and slot changes). The client name (``CLIENT SETNAME``) is only sent when
asked for: restricted managed Redis refuses ``CLIENT`` and would fail every connection.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.sentinel
import redis.cluster
import redis.sentinel
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.connection import parse_url
from redis.retry import Retry

Topology = Literal["standalone", "sentinel", "cluster"]


@dataclass(frozen=True)
class RedisTopology:
    """How the server is found and what a connection sends besides the URL's settings."""

    kind: Topology = "standalone"
    sentinel_master: str | None = None
    sentinel_addresses: tuple[tuple[str, int], ...] = ()
    sentinel_password: str | None = None
    sentinel_tls: bool = False
    cert_file: Path | None = None  # a client certificate (mutual TLS) and its key
    key_file: Path | None = None
    send_client_name: bool = False


STANDALONE = RedisTopology()


def connect_redis(
    url: str,
    *,
    socket_timeout: float,
    client_name: str,
    password: str | None = None,
    ca_file: Path | None = None,
    topology: RedisTopology = STANDALONE,
) -> redis.Redis:
    """A synchronous client (follower threads, CLIs)."""
    retry = Retry(NoBackoff(), 0)
    if topology.kind == "sentinel":
        options = _connection_options(url, socket_timeout, client_name, password, ca_file, topology)
        sentinel = redis.sentinel.Sentinel(
            topology.sentinel_addresses,
            sentinel_kwargs=_sentinel_options(socket_timeout, topology),
            retry=retry,
            **options,
        )
        assert topology.sentinel_master is not None  # the settings require it
        return cast(redis.Redis, sentinel.master_for(topology.sentinel_master))
    if topology.kind == "cluster":
        options = _connection_options(url, socket_timeout, client_name, password, ca_file, topology)
        options.pop("db", None)  # a cluster has only db 0
        host, port = options.pop("host"), options.pop("port")
        cluster = redis.cluster.RedisCluster(host=host, port=port, retry=retry, **options)
        # RedisCluster speaks the same commands, pipelines and pub/sub as Redis.
        return cast(redis.Redis, cluster)
    client = redis.Redis.from_url(url, retry=retry, **_options(socket_timeout))
    _override_url(
        client.connection_pool.connection_kwargs, url, client_name, password, ca_file, topology
    )
    return client


def connect_async_redis(
    url: str,
    *,
    socket_timeout: float,
    client_name: str,
    password: str | None = None,
    ca_file: Path | None = None,
    topology: RedisTopology = STANDALONE,
) -> redis.asyncio.Redis:
    """An asyncio client (the event loop's lookups and writes)."""
    retry = AsyncRetry(NoBackoff(), 0)
    if topology.kind == "sentinel":
        options = _connection_options(url, socket_timeout, client_name, password, ca_file, topology)
        sentinel = redis.asyncio.sentinel.Sentinel(
            topology.sentinel_addresses,
            sentinel_kwargs=_sentinel_options(socket_timeout, topology),
            retry=retry,
            **options,
        )
        assert topology.sentinel_master is not None
        return cast(redis.asyncio.Redis, sentinel.master_for(topology.sentinel_master))
    if topology.kind == "cluster":
        options = _connection_options(url, socket_timeout, client_name, password, ca_file, topology)
        options.pop("db", None)
        options.pop("retry_on_timeout")  # not an option of the asyncio RedisCluster
        host, port = options.pop("host"), options.pop("port")
        cluster = redis.asyncio.cluster.RedisCluster(host=host, port=port, retry=retry, **options)
        return cast(redis.asyncio.Redis, cluster)
    client = redis.asyncio.Redis.from_url(url, retry=retry, **_options(socket_timeout))
    _override_url(
        client.connection_pool.connection_kwargs, url, client_name, password, ca_file, topology
    )
    return client


def _options(socket_timeout: float) -> dict[str, Any]:
    return {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_timeout,
        "retry_on_timeout": False,
    }


def _connection_options(
    url: str,
    socket_timeout: float,
    client_name: str,
    password: str | None,
    ca_file: Path | None,
    topology: RedisTopology,
) -> dict[str, Any]:
    """Keyword arguments for a Sentinel's or a Cluster's connections, from the URL and the
    settings (for these the URL gives TLS, user, password and db; its host is a start node)."""
    parsed: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
    options: dict[str, Any] = {
        "host": parsed.get("host", "127.0.0.1"),
        "port": int(parsed.get("port", 6379)),
        "db": int(parsed.get("db", 0)),
        **_options(socket_timeout),
    }
    for name in ("username", "password"):
        if parsed.get(name):
            options[name] = parsed[name]
    if password is not None:
        options["password"] = password
    if topology.send_client_name:
        options["client_name"] = client_name
    if url.startswith("rediss://"):
        options["ssl"] = True
        options.update(_tls_options(ca_file, topology))
    if topology.kind == "sentinel":
        options.pop("host")
        options.pop("port")
    return options


def _sentinel_options(socket_timeout: float, topology: RedisTopology) -> dict[str, Any]:
    options: dict[str, Any] = {"socket_timeout": socket_timeout}
    if topology.sentinel_password is not None:
        options["password"] = topology.sentinel_password
    if topology.sentinel_tls:
        options["ssl"] = True
    return options


def _tls_options(ca_file: Path | None, topology: RedisTopology) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if ca_file is not None:
        options["ssl_ca_certs"] = str(ca_file)
    if topology.cert_file is not None:
        options["ssl_certfile"] = str(topology.cert_file)
    if topology.key_file is not None:
        options["ssl_keyfile"] = str(topology.key_file)
    return options


def _override_url(
    kwargs: dict[str, Any],
    url: str,
    client_name: str,
    password: str | None,
    ca_file: Path | None,
    topology: RedisTopology,
) -> None:
    # redis-py lets the URL (user info and query) win over from_url's keyword arguments; the
    # pool's connection arguments are read at each connect, so setting them here makes the
    # mounted secret and the configured CA win instead.
    if topology.send_client_name:
        kwargs["client_name"] = client_name
    else:
        kwargs.pop("client_name", None)
    if password is not None:
        kwargs["password"] = password
    tls = _tls_options(ca_file, topology)
    if tls and not url.startswith("rediss://"):
        raise ValueError("TLS files (CA, client certificate) need a rediss:// (TLS) url")
    kwargs.update(tls)


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


def refresh_cluster_topology(client: redis.Redis, exc: BaseException) -> None:
    """After a connection error on a cluster, learn the slot owners again (best effort).

    A single command asks redis-py for a refresh by itself; a WATCH/MULTI/EXEC pipeline does
    not, so after a failover every compare-and-set would keep going to the lost master.
    """
    if not isinstance(client, redis.cluster.RedisCluster):
        return
    if not isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return
    with contextlib.suppress(redis.RedisError):
        client.nodes_manager.initialize()
