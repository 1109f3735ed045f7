"""The ops listener: /livez, /readyz, /metrics and the console, on a port of their own.

The public listener carries customer traffic only; everything operational (readyz names files
and map sources, the metrics name every connection) is here, by default on loopback. It is a
uvicorn server in a thread with its own event loop, started by `authswitch serve` in the
supervisor (or only) process, so it adds up every worker and keeps answering while a worker
restarts. Client connections get `GuardedHttpProtocol`'s head deadline and connection cap, with
the `ops` block's own, smaller limits.

Paths are matched exactly on the decoded path: `/livez`, `/readyz`, `/metrics` (GET or HEAD);
every other path goes to the mounted app (the console) when there is one, else 404.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import cast

import uvicorn

from proxy.config import Config, Ops, ServerLimits
from proxy.http.asgi_types import Receive, Scope, Send
from proxy.http.responses import send_bytes, send_json
from proxy.ops.http_protocol import GuardedHttpProtocol
from proxy.ops.metrics import exposition
from proxy.ops.worker_readiness import Readiness

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
OPS_PATHS = ("/livez", "/readyz", "/metrics")


def build_ops_app(config: Config) -> ASGIApp | None:
    """The app mounted beside the ops endpoints: the console when `console.enabled`, else None
    (the ops endpoints answer alone)."""
    if not config.console.enabled:
        return None
    from proxy.console.app import build_console_app  # starlette and authlib only when used

    return cast(ASGIApp, build_console_app(config))


class OpsEndpoints:
    """Raw ASGI: the three ops endpoints, then the mounted app (or 404)."""

    def __init__(self, readiness: Readiness, app: ASGIApp | None = None) -> None:
        self._readiness = readiness
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" and self._app is None:
            await _answer_lifespan(receive, send)
            return
        if scope["type"] != "http" or scope["path"] not in OPS_PATHS:
            if self._app is not None:
                await self._app(scope, receive, send)
            elif scope["type"] == "http":
                await send_json(send, 404, {"error": "not_found"})
            else:  # a websocket: no ops endpoint speaks it
                await send({"type": "websocket.close", "code": 1008})
            return
        if scope["method"] not in ("GET", "HEAD"):
            await send_json(send, 405, {"error": "method_not_allowed"}, [(b"allow", b"GET, HEAD")])
            return
        path = scope["path"]
        if path == "/livez":
            await send_json(send, 200, {"status": "ok"})
        elif path == "/readyz":
            status, report = self._readiness()
            await send_json(send, status, report)
        else:
            # Adding up many workers' files is blocking I/O: off the loop.
            body, content_type = await asyncio.to_thread(exposition)
            await send_bytes(send, 200, body, [], content_type=content_type.encode())


async def _answer_lifespan(receive: Receive, send: Send) -> None:
    while (await receive())["type"] != "lifespan.shutdown":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})


class OpsListener:
    """The ops endpoints (and `app`, when given) served on `ops.host:ops.port` from a thread."""

    def __init__(self, ops: Ops, readiness: Readiness, app: ASGIApp | None = None) -> None:
        # Bound here, in the caller's thread, so a port in use fails `serve` at once.
        family = socket.AF_INET6 if ":" in ops.host else socket.AF_INET
        self._socket = socket.create_server((ops.host, ops.port), family=family)
        self.port: int = self._socket.getsockname()[1]
        wildcard = ops.host in ("0.0.0.0", "")  # noqa: S104  (a comparison, not a bind)
        host = "127.0.0.1" if wildcard else f"[{ops.host}]" if ":" in ops.host else ops.host
        self.url = f"http://{host}:{self.port}"  # where this machine reaches it
        limits = ServerLimits(
            header_seconds=ops.header_seconds, max_connections=ops.max_connections
        )
        config = uvicorn.Config(
            OpsEndpoints(readiness, app),
            lifespan="on",
            http=cast(
                "type[asyncio.Protocol]", functools.partial(GuardedHttpProtocol, limits=limits)
            ),
            access_log=False,  # a console's query strings are nobody's business in the logs
            proxy_headers=False,
            server_header=False,
            log_config=None,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="ops-listener", daemon=True)
        self._error: BaseException | None = None

    def _run(self) -> None:
        try:
            asyncio.run(self._server.serve(sockets=[self._socket]))
        except BaseException as exc:  # reported by start()
            self._error = exc

    def start(self, timeout: float = 10.0) -> OpsListener:
        """Serve from a daemon thread; return once it accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                raise RuntimeError(f"the ops listener failed to start: {self._error!r}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the ops listener did not start within {timeout} s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> OpsListener:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
