"""Running the app under uvicorn: one process or N workers, JSON logs, no access log.

The ops listener (/livez, /readyz, /metrics, the console) is started here, in the supervisor
(or only) process, before the workers. Client connections go through `GuardedHttpProtocol`
(request head limits and deadline, a connection cap). On SIGTERM the listening socket stops
taking new connections, its accept queue is emptied by the still-running workers, and only
then do the workers drain: see `_StopListeningFirst` and `_DrainingServer`.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import logging
import os
import resource
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess

from proxy.config import Config, ServerLimits, load_config
from proxy.ops.http_protocol import GuardedHttpProtocol
from proxy.ops.json_logging import configure_logging
from proxy.ops.listener_drain import quiesce, quiesce_async
from proxy.ops.metrics import MULTIPROC_ENV
from proxy.ops.ops_listener import OpsListener, build_ops_app
from proxy.ops.worker_readiness import READINESS_DIR_ENV, WorkerReadiness

CONFIG_ENV = "AUTHSWITCH_CONFIG"
# At most this long for running workers to accept what the kernel queued before stopping.
_QUEUE_DRAIN_SECONDS = 2.0


def create_app_from_env() -> object:
    """uvicorn factory for worker processes: the config path travels in the environment."""
    from proxy.app import AuthSwitch

    config = load_config(os.environ[CONFIG_ENV])
    configure_logging(config.logging.level, config.logging.format)
    return AuthSwitch(config)


class OpsListenerUnavailable(Exception):
    """The ops listener's address can't be bound (in use, not local, not permitted)."""


class OpenFileLimitTooLow(Exception):
    """The open-file limit leaves no descriptor for client connections beside the pool's."""


log = logging.getLogger("authswitch")

# Descriptors a worker keeps for everything but client connections and its upstream pool: log
# files, the listening sockets, Redis and other clients, the map and flag files, the event
# loop's own, a reader thread's.
FD_RESERVE = 64


def client_limits(config: Config, soft_limit: int | None = None) -> ServerLimits:
    """`server`, with `max_connections` lowered to what the open-file limit leaves once the
    upstream pool (`limits.upstream_pool_size`) and `FD_RESERVE` are set aside.

    Client connections are accepted as long as a descriptor is free; without this cap they can
    take every one, and a callback then fails with 502 for want of a descriptor to reach its
    upstream. Over the cap a new connection is closed at once (`connection_limit`), as it
    would be over `server.max_connections`."""
    if soft_limit is None:
        soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    limits = config.server
    if soft_limit == resource.RLIM_INFINITY:
        return limits
    pool = config.limits.upstream_pool_size
    available = soft_limit - pool - FD_RESERVE
    if available < 1:
        raise OpenFileLimitTooLow(
            f"the open-file limit ({soft_limit}, `ulimit -n`) leaves no descriptor for client "
            f"connections beside limits.upstream_pool_size ({pool}) and {FD_RESERVE} for "
            "authswitch itself: raise the limit or lower the pool size"
        )
    if available >= limits.max_connections:
        return limits
    return limits.model_copy(update={"max_connections": available})


def serve(config_path: str, config: Config, *, workers: int, graceful_seconds: int) -> None:
    """Block serving `config` until SIGINT/SIGTERM."""
    os.environ[CONFIG_ENV] = os.path.abspath(config_path)
    configure_logging(config.logging.level, config.logging.format)
    open_files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    limits = client_limits(config, open_files)  # before anything starts: it may refuse
    if limits.max_connections < config.server.max_connections:
        log.warning(
            "server.max_connections lowered to fit the open-file limit",
            extra={
                "fields": {
                    "max_connections": limits.max_connections,
                    "configured": config.server.max_connections,
                    "open_file_limit": open_files,
                    "upstream_pool_size": config.limits.upstream_pool_size,
                    "reserved": FD_RESERVE,
                }
            },
        )
    if workers > 1:
        _use_multiprocess_metrics()
    ops = _start_ops_listener(config, workers)
    try:
        _serve_public(config, limits, workers=workers, graceful_seconds=graceful_seconds)
    finally:
        ops.stop()


def _serve_public(
    config: Config, limits: ServerLimits, *, workers: int, graceful_seconds: int
) -> None:
    server_config = uvicorn_config(
        config,
        "proxy.ops.server:create_app_from_env",
        workers=workers,
        graceful_seconds=graceful_seconds,
        server_limits=limits,
    )
    if workers == 1:
        server = _DrainingServer(server_config)
        server.run()
        if not server.started:
            sys.exit(STARTUP_FAILURE)
        return
    listener = server_config.bind_socket()
    _StopListeningFirst(server_config, sockets=[listener]).run()


def uvicorn_config(
    config: Config,
    app: str | Callable[..., Any],
    *,
    workers: int,
    graceful_seconds: int,
    server_limits: ServerLimits | None = None,
) -> uvicorn.Config:
    """How authswitch is served: the same settings for `serve` and for the tests.

    `server_limits`: the client side's limits as `client_limits` gives them (computed here
    when not given)."""
    if server_limits is None:
        server_limits = client_limits(config)
    return uvicorn.Config(
        app,
        factory=isinstance(app, str),
        host=config.listen.host,
        port=config.listen.port,
        workers=workers,
        loop="auto",
        http=cast(
            "type[asyncio.Protocol]",
            functools.partial(GuardedHttpProtocol, limits=server_limits),
        ),
        lifespan="on",
        access_log=False,  # it prints query strings, which carry OIDC code and state
        proxy_headers=False,  # X-Forwarded-* is handled by authswitch's own policy
        server_header=False,
        date_header=False,  # a proxied answer carries the upstream's own Date
        log_config=None,
        timeout_keep_alive=config.server.idle_seconds,
        timeout_graceful_shutdown=graceful_seconds,
    )


class _StopListeningFirst(Multiprocess):
    """uvicorn's supervisor, but on SIGTERM/SIGINT the shared socket stops listening first.

    The supervisor holds a descriptor of the listening socket until every worker has
    drained, so the kernel went on completing handshakes nobody would accept, and reset those
    connections (requests already sent) at exit. shutdown() on a listening socket takes it
    out of LISTEN for every process: new connections are refused, which a load balancer can
    retry safely, while the workers finish what they accepted.
    """

    def terminate_all(self) -> None:
        # The workers, not yet told, accept what the kernel already queued.
        quiesce([listener.fileno() for listener in self.sockets], _QUEUE_DRAIN_SECONDS)
        for listener in self.sockets:
            with contextlib.suppress(OSError):  # already not listening
                listener.shutdown(socket.SHUT_RDWR)
        super().terminate_all()


class _DrainingServer(uvicorn.Server):
    """uvicorn's single-process server; its listener is the only descriptor of the socket,
    so closing it stops the kernel accepting, once the accept queue has been emptied."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        listeners = [sock.fileno() for server in self.servers for sock in server.sockets]
        await quiesce_async(listeners, _QUEUE_DRAIN_SECONDS)
        await super().shutdown(sockets)


def _use_multiprocess_metrics() -> None:
    """Workers write their metrics to files that the metrics server adds up.

    Must run before the workers start (they inherit the variable); an operator-provided
    directory is emptied first, as prometheus-client requires between runs.
    """
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        for name in os.listdir(directory):
            if name.endswith(".db"):
                os.remove(os.path.join(directory, name))
        return
    directory = tempfile.mkdtemp(prefix="authswitch-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    atexit.register(shutil.rmtree, directory, ignore_errors=True)


def _start_ops_listener(config: Config, workers: int) -> OpsListener:
    """Serve /livez, /readyz, /metrics (and the console) from this supervisor or only process.

    Workers report their readiness through files in a private directory (the same way with
    one worker as with many), which the listener adds up per probe.
    """
    directory = tempfile.mkdtemp(prefix="authswitch-ready-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    os.environ[READINESS_DIR_ENV] = directory  # inherited by the workers
    readiness = WorkerReadiness(Path(directory), workers)
    try:
        listener = OpsListener(config.ops, readiness, build_ops_app(config))
    except OSError as exc:
        raise OpsListenerUnavailable(
            f"ops listener {config.ops.host}:{config.ops.port} (keys 'ops.host', 'ops.port'): "
            f"cannot listen: {exc.strerror or exc}"
        ) from None
    return listener.start()
