"""An ASGI app served by uvicorn on a free loopback port, in a background thread."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn


class LoopbackServer:
    """Real HTTP over 127.0.0.1 for the demo and the tests; `with` starts and stops it."""

    def __init__(self, app: Any = None, *, name: str = "server") -> None:
        self.name = name
        self.app = app
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when the
        # listening socket says it is TCP; without it every answer written as headers then body
        # waits ~40 ms for the client's delayed ACK.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread = threading.Thread(target=self._run, name=f"loopback-{name}", daemon=True)
        self._error: BaseException | None = None

    def _run(self) -> None:
        assert self._server is not None
        try:
            asyncio.run(self._server.serve(sockets=[self._socket]))
        except BaseException as exc:  # reported by start()
            self._error = exc

    def start(self, timeout: float = 10.0) -> LoopbackServer:
        """Serve `self.app` (which may be set after construction, once the port is known)."""
        config = uvicorn.Config(
            self.app,
            lifespan="on",
            access_log=False,
            log_config=None,
            proxy_headers=False,
            server_header=False,
            date_header=False,  # a proxied answer carries the upstream's own Date
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                raise RuntimeError(f"{self.name} failed to start: {self._error!r}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} did not start within {timeout} s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
