"""A running proxy and, on its own loopback port, the console sharing its flag file."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from proxy.app import AuthSwitch
from proxy.config import Config, load_config
from proxy.console.app import COOKIE, build_console_app
from proxy.demo.loopback_server import LoopbackServer
from proxy.outcomes.counts import OutcomeStore
from tests.conftest import write_proxy_files
from tests.proxy.console.oidc_provider import CLIENT_ID, OidcProvider

LEGACY_HOST = "https://login.legacy.example"
OPERATOR = "ops@example.com"
VIEWER = "watcher@example.com"
ROLES = {
    "operator_emails": [OPERATOR],
    "operator_groups": ["sre-operators"],
    "viewer_emails": [VIEWER],
    "viewer_groups": ["sre-viewers"],
}


def oidc_console(op: OidcProvider) -> dict[str, object]:
    """Console settings signing people in at the test's OpenID provider."""
    return {
        "enabled": True,
        "sign_in": "oidc",
        "oidc": {"issuer": op.issuer, "client_id": CLIENT_ID},
        "roles": ROLES,
        "session_secret_file": "console-session.key",
    }


def trusted_header_console(**overrides: Any) -> dict[str, Any]:
    return {
        "enabled": True,
        "sign_in": "trusted_header",
        "trusted_header": {"proxies": ["127.0.0.1/32"]},
        "roles": ROLES,
        "session_secret_file": "console-session.key",
        **overrides,
    }


def write_console_files(
    directory: Path, legacy_url: str, new_url: str, console: dict[str, Any]
) -> Path:
    """The proxy's test files with a console section and legacy callback URLs in the map."""
    path = write_proxy_files(directory, legacy_url, new_url, console=console)
    (directory / "console-session.key").write_text(secrets.token_urlsafe(48))
    map_path = directory / "connections.yaml"
    document = yaml.safe_load(map_path.read_text())
    for entry in document["connections"]:
        cid = entry["id"]
        url = {
            "hooli": f"{LEGACY_HOST}/oidc-callback/hooli-prod",
            "piedpiper": f"{LEGACY_HOST}/oidc/piedpiper/callback",
        }.get(cid, f"{LEGACY_HOST}/login/callback")
        entry["legacy"] = {"callback_url": url}
        entry["name"] = f"{cid.title()} Corp"
    map_path.write_text(yaml.safe_dump(document))
    return path


@dataclass
class ConsoleEnv:
    config: Config
    dir: Path
    proxy: LoopbackServer
    console: LoopbackServer
    app: AuthSwitch

    @property
    def url(self) -> str:
        return self.console.url


@contextmanager
def running_console(
    directory: Path,
    providers: dict[str, LoopbackServer],
    console: dict[str, Any],
    *,
    outcomes: OutcomeStore | None = None,
    clock: Callable[[], float] = time.time,
    **config_changes: Any,
) -> Iterator[ConsoleEnv]:
    legacy, new = providers["legacy"], providers["new"]
    path = write_console_files(directory, legacy.url, new.url, console)
    if config_changes:
        document = yaml.safe_load(path.read_text())
        path.write_text(yaml.safe_dump({**document, **config_changes}))
    config = load_config(path)
    app = AuthSwitch(config)
    with (
        LoopbackServer(app, name="authswitch") as proxy,
        LoopbackServer(
            build_console_app(config, outcomes=outcomes, clock=clock), name="console"
        ) as served,
    ):
        yield ConsoleEnv(config, directory, proxy, served, app)


class Browserless:
    """An HTTP client that keeps the console's session cookie by hand: the cookie is
    ``Secure`` and the test talks plain HTTP on loopback, where a cookie jar would drop it."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None) -> None:
        self.client = httpx.Client(base_url=base_url, headers=headers or {}, timeout=10)
        self.cookie: str | None = None
        self.set_cookies: list[str] = []

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if self.cookie:
            headers["cookie"] = f"{COOKIE}={self.cookie}"
        response = self.client.request(method, path, headers=headers, **kwargs)
        for value in response.headers.get_list("set-cookie"):
            self.set_cookies.append(value)
            found = re.match(rf"{COOKIE}=([^;]*)", value)
            if found:
                self.cookie = found.group(1) or None
        return response

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def close(self) -> None:
        self.client.close()


def hidden(page: str, name: str) -> str:
    """The value of a hidden form field."""
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no {name} field on the page"
    return found.group(1)
