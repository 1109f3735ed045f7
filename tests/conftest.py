"""Shared fixtures: real signed SAML, real HTTP on loopback, real files."""

from __future__ import annotations

import hashlib
import logging
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from flags import RolloutState, write_rollout_state
from proxy.app import AuthSwitch
from proxy.config import Ops, load_config
from proxy.demo.idp import DemoIdP
from proxy.demo.keys import generate_keypair
from proxy.demo.loopback_server import LoopbackServer
from proxy.demo.saml_validation import TrustedIdP
from proxy.demo.service_provider import create_service_provider_app
from proxy.ops.json_logging import JsonFormatter
from proxy.ops.ops_listener import OpsListener

# What the IdPs are configured with: the legacy host's public name, never the test ports.
PUBLIC_ACS = "https://login.legacy.example/login/callback"
LEGACY_SP_ENTITY_ID = "https://login.legacy.example/saml/metadata"

# connection id -> (protocol, mode, assessment)
CONNECTIONS: dict[str, tuple[str, str, str]] = {
    "acme": ("saml", "redirect", "transparent"),
    "globex": ("saml", "form_post", "transparent"),
    "initech": ("saml", "proxy", "transparent"),
    "umbrella": ("saml", "redirect", "needs_idp_change"),
    "hooli": ("oidc", "redirect", "transparent"),
    "piedpiper": ("oidc", "proxy", "transparent"),
}
SAML_IDS = [cid for cid, spec in CONNECTIONS.items() if spec[0] == "saml"]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def answer_lifespan(receive: Any, send: Any) -> None:
    """uvicorn's lifespan protocol for a test app with nothing to start or stop."""
    while (await receive())["type"] != "lifespan.shutdown":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})


async def request_body(receive: Any) -> bytes:
    """A test app's whole request body."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


def readyz(ops_url: str) -> tuple[int, dict[str, Any]]:
    """A proxy's /readyz status and report, from its ops listener."""
    response = httpx.get(ops_url + "/readyz", timeout=5)
    return response.status_code, response.json()


def ops_listener(app: AuthSwitch) -> OpsListener:
    """The ops listener for an app served in this process (`with` starts and stops it)."""
    return OpsListener(Ops(port=0), app.readiness)


@pytest.fixture(scope="session")
def idps() -> dict[str, DemoIdP]:
    """One IdP with its own generated signing key per SAML connection."""
    return {
        cid: DemoIdP(f"https://idp.{cid}.example/metadata", generate_keypair(f"idp-{cid}"))
        for cid in SAML_IDS
    }


@pytest.fixture(scope="session")
def providers(idps: dict[str, DemoIdP]) -> Iterator[dict[str, LoopbackServer]]:
    """The legacy and the new provider, both validating SAML with python3-saml."""
    trusted = [TrustedIdP(cid, idp.entity_id, idp.keys.cert_pem) for cid, idp in idps.items()]
    servers = {}
    for name in ("legacy", "new"):
        app = create_service_provider_app(
            name=name,
            sp_entity_id=LEGACY_SP_ENTITY_ID,
            public_acs_url=PUBLIC_ACS,
            trusted_idps=trusted,
        )
        servers[name] = LoopbackServer(app, name=name).start()
    yield servers
    for server in servers.values():
        server.stop()


@dataclass
class ProxyEnv:
    """A running authswitch in front of the two providers, with its files in a temp dir."""

    dir: Path
    server: LoopbackServer
    app: AuthSwitch
    legacy: LoopbackServer
    new: LoopbackServer
    flags: RolloutState = field(default_factory=RolloutState)
    ops: OpsListener | None = None

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def ops_url(self) -> str:
        """Its ops listener, started on first use (most tests never need a second server)."""
        if self.ops is None:
            self.ops = ops_listener(self.app).start()
        return self.ops.url

    def stop_ops(self) -> None:
        if self.ops is not None:
            self.ops.stop()

    def set_flags(self, **changes: Any) -> None:
        """Write the flag file as an SRE would and make the proxy read it now."""
        self.flags = self.flags.model_copy(update={"version": self.flags.version + 1, **changes})
        write_rollout_state(self.dir / "flags.yaml", self.flags)
        self.app.flag_provider.reload_now()  # type: ignore[attr-defined]

    def received(self, provider: str) -> list[dict[str, Any]]:
        server = self.legacy if provider == "legacy" else self.new
        return list(server.app.state.received)  # type: ignore[union-attr]


def write_proxy_files(directory: Path, legacy_url: str, new_url: str, **config: Any) -> Path:
    """Config, connection map and flags for the test connections; returns the config path."""
    connections = []
    for cid, (protocol, mode, assessment) in CONNECTIONS.items():
        entry: dict[str, Any] = {
            "id": cid,
            "protocol": protocol,
            "assessment": assessment,
            "new_provider": {"url": f"{new_url}/sso/{cid}/callback", "mode": mode},
        }
        if protocol == "saml":
            entry["saml"] = {"idp_entity_id": f"https://idp.{cid}.example/metadata"}
        if cid == "hooli":
            entry["oidc"] = {"callback_path": "/oidc-callback/hooli-prod"}
        connections.append(entry)
    (directory / "connections.yaml").write_text(
        yaml.safe_dump({"version": 1, "connections": connections})
    )
    write_rollout_state(directory / "flags.yaml", RolloutState())
    document = {
        "legacy": {"url": legacy_url},
        "connection_map": "connections.yaml",
        "flags": {"file": "flags.yaml", "poll_interval_seconds": 0.1},
        "routes": [
            {"path": "/login/callback", "protocol": "saml", "identify": ["saml_issuer"]},
            {
                "path": "/sso/{connection}/acs",
                "protocol": "saml",
                "identify": ["path", "saml_issuer"],
            },
            {"path": "/oidc/{connection}/callback", "protocol": "oidc", "identify": ["path"]},
            {"path": "/oidc-callback/{slug}", "protocol": "oidc", "identify": ["callback_path"]},
        ],
        "timeouts": {"connect_seconds": 1, "read_seconds": 5},
        "ops": {"port": 0},  # `serve` tests that probe it pick a free port
        **config,
    }
    path = directory / "authswitch.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture
def proxy_env(tmp_path: Path, providers: dict[str, LoopbackServer]) -> Iterator[ProxyEnv]:
    legacy, new = providers["legacy"], providers["new"]
    config = load_config(write_proxy_files(tmp_path, legacy.url, new.url))
    app = AuthSwitch(config)
    with LoopbackServer(app, name="authswitch") as server:
        env = ProxyEnv(tmp_path, server, app, legacy, new)
        yield env
        env.stop_ops()


@pytest.fixture
def captured_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every log record at every level, formatted the way production formats it."""
    caplog.set_level(logging.DEBUG)
    return caplog


# -- whole-suite log audit ---------------------------------------------------------------------
# Every record authswitch's own loggers emit during the whole run is formatted the way
# production formats it and checked at the end for anything that looks like a secret the tests
# sent: SAMLResponse bodies, OIDC code/state, cookies, tokens, the seeded marker strings.

_PRODUCT_LOGGERS = ("authswitch", "proxy", "flags", "connection_map", "uvicorn")
_SECRET_PATTERNS = [
    re.compile(r"[A-Za-z0-9+/]{120,}={0,2}"),  # a base64 SAMLResponse (or any long blob)
    re.compile(r"SEEKRIT|leaky|secret-cookie-value|secret-token|METRIC-SECRET"),
    re.compile(r"(SAMLResponse|RelayState|code|state|password)=[^&\s\"]+"),
    re.compile(r"(client_secret|access_token|refresh_token)[=\"':]+ *[^&\s\"]+"),
    re.compile(r"(?i)bearer [A-Za-z0-9._-]+"),
    re.compile(r"(?i)\bbasic [A-Za-z0-9+/]{16,}={0,2}"),  # an HTTP Basic client credential
]


class _SuiteLogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(_PRODUCT_LOGGERS):
            self.lines.append(self.format(record))


_SUITE_LOGS = _SuiteLogCapture()


def pytest_configure(config: pytest.Config) -> None:
    logging.getLogger().addHandler(_SUITE_LOGS)
    for name in _PRODUCT_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    leaks = [line for line in _SUITE_LOGS.lines if any(p.search(line) for p in _SECRET_PATTERNS)]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"log audit: {len(_SUITE_LOGS.lines)} log lines from authswitch's loggers, "
            f"{len(leaks)} with something that looks like a secret"
        )
        for line in leaks[:5]:
            reporter.write_line(f"  LEAK: {line[:300]}")
    if leaks:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
