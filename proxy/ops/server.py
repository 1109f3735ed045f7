"""Running the app under uvicorn: one process or N workers, JSON logs, no access log."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import uvicorn

from proxy.config import Config, load_config
from proxy.ops.json_logging import configure_logging
from proxy.ops.metrics import MULTIPROC_ENV, exposition

CONFIG_ENV = "AUTHSWITCH_CONFIG"


def create_app_from_env() -> object:
    """uvicorn factory for worker processes: the config path travels in the environment."""
    from proxy.app import AuthSwitch

    config = load_config(os.environ[CONFIG_ENV])
    configure_logging(config.logging.level)
    return AuthSwitch(config)


def serve(config_path: str, config: Config, *, workers: int, graceful_seconds: int) -> None:
    """Block serving `config` until SIGINT/SIGTERM."""
    os.environ[CONFIG_ENV] = os.path.abspath(config_path)
    configure_logging(config.logging.level)
    if workers > 1:
        _use_multiprocess_metrics()
    if config.metrics.port is not None:
        _start_metrics_server(config.metrics.host, config.metrics.port)
    uvicorn.run(
        "proxy.ops.server:create_app_from_env",
        factory=True,
        host=config.listen.host,
        port=config.listen.port,
        workers=workers,
        loop="auto",
        http="auto",
        lifespan="on",
        access_log=False,  # it prints query strings, which carry OIDC code and state
        proxy_headers=False,  # X-Forwarded-* is handled by authswitch's own policy
        server_header=False,
        date_header=False,  # a proxied answer carries the upstream's own Date
        log_config=None,
        timeout_graceful_shutdown=graceful_seconds,
    )


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


def _start_metrics_server(host: str, port: int) -> None:
    """Serve the metrics on their own port from this (supervisor or only) process."""
    server = ThreadingHTTPServer((host, port), _MetricsHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()


class _MetricsHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body, content_type = exposition()
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return  # a scrape is not worth a log line
