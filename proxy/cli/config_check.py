"""`authswitch config check`: the effective configuration (file plus environment), secrets masked.

A key whose name says it holds a secret (password, secret, token, api key, cookie,
authorization) is printed as ``***``; a URL keeps its scheme, host, port and path but loses its
password and query (``redis://user:***@host:6379/0``). Paths of secret files are printed: they
are where the secret is, not the secret.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from foundation.redis_client import redact_url
from proxy.config import Config

MASK = "***"
_SECRET_NAME = re.compile(r"password|secret|token|api_?key|cookie|authorization|credential", re.I)
_URL_WITH_SECRETS = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://([^/@?#]*:[^/@?#]*@|[^?#]*\?)")


def render_effective_config(config: Config) -> str:
    """The validated configuration as YAML, secrets masked, then what listens where (as YAML
    comments, so the output stays a valid config)."""
    masked = _mask(config.model_dump(mode="json"))
    return yaml.safe_dump(masked, sort_keys=False, allow_unicode=True) + _listeners(config)


def _listeners(config: Config) -> str:
    listen, ops = config.listen, config.ops
    return (
        f"# public listener {listen.host}:{listen.port}: the legacy host's traffic, callbacks, "
        f"broker hooks, {config.ops_prefix}/flows/start; nothing operational\n"
        f"# ops listener {ops.host}:{ops.port}: /livez /readyz /metrics (and the console); "
        "keep it off the public load balancer\n"
    )


def _mask(value: Any, name: str = "") -> Any:
    if isinstance(value, dict):
        return {key: _mask(item, str(key)) for key, item in value.items()}
    if isinstance(value, list):
        return [_mask(item, name) for item in value]
    if value is None or isinstance(value, bool):
        return value
    if _SECRET_NAME.search(name) and not name.endswith(("_file", "_header", "_env")):
        return MASK
    if isinstance(value, str) and _URL_WITH_SECRETS.match(value):
        return redact_url(value)
    return value
