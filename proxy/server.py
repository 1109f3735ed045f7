"""Running the app under uvicorn: one process or N workers, JSON logs, no access log."""

from __future__ import annotations

import os

import uvicorn

from proxy.app import AuthSwitch
from proxy.config import Config, load_config
from proxy.json_logging import configure_logging

CONFIG_ENV = "AUTHSWITCH_CONFIG"


def create_app_from_env() -> AuthSwitch:
    """uvicorn factory for worker processes: the config path travels in the environment."""
    config = load_config(os.environ[CONFIG_ENV])
    configure_logging(config.logging.level)
    return AuthSwitch(config)


def serve(config_path: str, config: Config, *, workers: int, graceful_seconds: int) -> None:
    """Block serving `config` until SIGINT/SIGTERM."""
    os.environ[CONFIG_ENV] = os.path.abspath(config_path)
    configure_logging(config.logging.level)
    uvicorn.run(
        "proxy.server:create_app_from_env",
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
