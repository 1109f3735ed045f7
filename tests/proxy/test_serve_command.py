"""`authswitch serve` as an SRE runs it: a real process, JSON logs that never hold a secret."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import yaml

from proxy.demo.idp import DemoIdP
from proxy.demo.loopback_server import LoopbackServer
from tests.conftest import LEGACY_SP_ENTITY_ID, PUBLIC_ACS, free_port, write_proxy_files

FORM = {"content-type": "application/x-www-form-urlencoded"}
SECRET_CODE = "code-SEEKRIT-4711"
SECRET_STATE = "state-SEEKRIT-0815"
SECRET_COOKIE = "cookie-SEEKRIT-1234"
SECRET_TOKEN = "token-SEEKRIT-9999"
SECRET_RELAY = "relay-SEEKRIT-2468"


def _serve_command(config: Path, *extra: str, open_files: int | None = None) -> list[str]:
    """`authswitch serve`, under `prlimit --nofile` when `open_files` is given."""
    limit = [] if open_files is None else ["prlimit", f"--nofile={open_files}:{open_files}", "--"]
    return [*limit, sys.executable, "-m", "proxy", "serve", "--config", str(config), *extra]


def _start(
    config: Path, log: Path, *extra: str, open_files: int | None = None
) -> subprocess.Popen[bytes]:
    command = _serve_command(config, *extra, open_files=open_files)
    return subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def _wait_ready(ops_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until the ops listener says every worker is ready (all of them, not the first:
    on a loaded 2-core machine starting three workers can take longer than one)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited early:\n{log.read_text()}")
        try:
            if httpx.get(ops_url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"serve not ready:\n{log.read_text()}")


@contextmanager
def serving(
    config: Path, log: Path, ops_url: str, *extra: str
) -> Iterator[subprocess.Popen[bytes]]:
    """`authswitch serve` until every worker is ready; then SIGTERM and a clean exit."""
    process = _start(config, log, *extra)
    try:
        _wait_ready(ops_url, process, log)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        # uvicorn re-raises SIGTERM after its graceful shutdown, as a process killed by it.
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_routes_and_logs_one_json_line_per_callback_without_secrets(
    tmp_path: Path,
    providers: dict[str, LoopbackServer],
    idps: dict[str, DemoIdP],
    workers: int,
) -> None:
    port, ops_port = free_port(), free_port()
    config = write_proxy_files(
        tmp_path,
        providers["legacy"].url,
        providers["new"].url,
        listen={"host": "127.0.0.1", "port": port},
        ops={"port": ops_port},
        logging={"level": "debug"},
    )
    flags = tmp_path / "flags.yaml"
    flags.write_text(yaml.safe_dump({"version": 1, "overrides": {"initech": "on", "acme": "on"}}))
    log = tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}"
    saml_values = []
    with serving(config, log, f"http://127.0.0.1:{ops_port}", "--workers", str(workers)):
        secrets_headers = {
            "cookie": f"sid={SECRET_COOKIE}",
            "authorization": f"Bearer {SECRET_TOKEN}",
        }
        for cid in ("acme", "initech", "globex"):
            saml = idps[cid].mint_response(
                destination=PUBLIC_ACS, audience=LEGACY_SP_ENTITY_ID, name_id="carol@example.com"
            )
            saml_values.append(saml)
            body = urlencode({"SAMLResponse": saml, "RelayState": SECRET_RELAY}).encode()
            response = httpx.post(
                url + "/login/callback",
                content=body,
                headers={**FORM, **secrets_headers},
                timeout=10,
            )
            assert response.status_code in (200, 307)
        query = urlencode({"code": SECRET_CODE, "state": SECRET_STATE})
        assert (
            httpx.get(
                f"{url}/oidc/hooli/callback?{query}", headers=secrets_headers, timeout=10
            ).status_code
            == 200
        )
        bad = httpx.get(f"{url}/oidc/hooli/callback?{query}&state=again", timeout=10)
        assert bad.status_code == 400
        page = httpx.get(f"{url}/account?token={SECRET_TOKEN}", headers=secrets_headers, timeout=10)
        assert page.status_code == 200
    text = log.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    callbacks = [line for line in lines if line.get("event") == "callback"]
    assert len(callbacks) == 5, text
    by_path = {(c["path"], c.get("connection")): c for c in callbacks}
    assert by_path[("/login/callback", "acme")]["outcome"] == "new_redirect"
    assert by_path[("/login/callback", "initech")]["outcome"] == "new_proxied"
    assert by_path[("/login/callback", "globex")]["destination"] == "legacy"
    assert any(c["status"] == 400 and c["reason"] == "duplicate_field" for c in callbacks)
    for secret in (SECRET_CODE, SECRET_STATE, SECRET_COOKIE, SECRET_TOKEN, SECRET_RELAY):
        assert secret not in text
    for saml in saml_values:
        assert saml[:40] not in text and saml[-40:] not in text


def test_serve_writes_ecs_field_names_when_asked(
    tmp_path: Path, providers: dict[str, LoopbackServer], idps: dict[str, DemoIdP]
) -> None:
    port, ops_port = free_port(), free_port()
    config = write_proxy_files(
        tmp_path,
        providers["legacy"].url,
        providers["new"].url,
        listen={"host": "127.0.0.1", "port": port},
        ops={"port": ops_port},
        logging={"format": "ecs"},
    )
    log = tmp_path / "serve.log"
    saml = idps["globex"].mint_response(
        destination=PUBLIC_ACS, audience=LEGACY_SP_ENTITY_ID, name_id="carol@example.com"
    )
    with serving(config, log, f"http://127.0.0.1:{ops_port}"):
        body = urlencode({"SAMLResponse": saml, "RelayState": SECRET_RELAY}).encode()
        answer = httpx.post(
            f"http://127.0.0.1:{port}/login/callback",
            content=body,
            headers={**FORM, "x-request-id": "lb-7f3a"},
            timeout=10,
        )
        assert answer.status_code == 200
    text = log.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    (line,) = [line for line in lines if line.get("message") == "callback"]
    assert line["ecs.version"] and line["log.level"] == "info" and "@timestamp" in line
    assert line["http.request.id"] == "lb-7f3a"  # joins the load balancer's log line
    assert (line["http.request.method"], line["url.path"]) == ("POST", "/login/callback")
    assert line["http.response.status_code"] == 200
    assert isinstance(line["event.duration"], int) and line["event.duration"] > 0  # ns
    assert (line["authswitch.connection"], line["authswitch.destination"]) == ("globex", "legacy")
    assert not any(key in line for key in ("ts", "event", "path", "status"))
    assert SECRET_RELAY not in text and saml[:40] not in text and saml[-40:] not in text


def test_serve_refuses_a_bad_config_with_file_key_and_problem(tmp_path: Path) -> None:
    config = tmp_path / "authswitch.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "legacy": {"url": "not a url"},
                "connection_map": "c.yaml",
                "flags": {"file": "f.yaml"},
                "routes": [{"path": "/acs", "protocol": "saml", "identify": ["path"]}],
            }
        )
    )
    result = subprocess.run(
        _serve_command(config),
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 2
    assert str(config) in result.stderr
    assert "legacy.url" in result.stderr
    assert "routes.0" in result.stderr and "{connection}" in result.stderr


@pytest.mark.parametrize(
    ("broker", "named"),
    [
        (
            {"secret_file": "missing-secret", "verifier": {"type": "hash_file", "path": "h.csv"}},
            "broker.secret_file",
        ),
        (
            {"secret_file": "secret", "verifier": {"type": "hash_file", "path": "missing.csv"}},
            "missing.csv",
        ),
    ],
    ids=["secret", "hash_file"],
)
def test_serve_refuses_unreadable_broker_files_before_starting(
    tmp_path: Path, providers: dict[str, LoopbackServer], broker: dict[str, Any], named: str
) -> None:
    (tmp_path / "secret").write_text("a-hook-secret-of-32-bytes-or-so!\n")
    config = write_proxy_files(
        tmp_path,
        providers["legacy"].url,
        providers["new"].url,
        broker={"enabled": True, **broker},
    )
    result = subprocess.run(
        _serve_command(config),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert named in result.stderr
    assert "Traceback" not in result.stderr
    assert "a-hook-secret" not in result.stderr


def test_client_connections_leave_the_upstream_pool_its_descriptors(
    tmp_path: Path, providers: dict[str, LoopbackServer]
) -> None:
    """Under an open-file limit below what clients open, every request still reaches its
    upstream: client connections are capped (the pool's descriptors and authswitch's own set
    aside), the cap is logged at start, and connections over it are closed at once rather
    than taking the descriptors a callback needs to reach legacy or the new provider."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1024 <= hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))  # this test's 300 clients
    port, ops_port = free_port(), free_port()
    config = write_proxy_files(
        tmp_path,
        providers["legacy"].url,
        providers["new"].url,
        listen={"host": "127.0.0.1", "port": port},
        ops={"port": ops_port},
        limits={"upstream_pool_size": 16},
    )
    log = tmp_path / "serve.log"
    process = _start(config, log, open_files=256)
    clients: list[socket.socket] = []
    try:
        _wait_ready(f"http://127.0.0.1:{ops_port}", process, log)
        for _ in range(300):  # more than the 256 descriptors the server has
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        time.sleep(0.5)  # accepted up to the cap, the rest closed
        query = urlencode({"code": SECRET_CODE, "state": SECRET_STATE})
        for number, client in enumerate(clients[:20]):
            target = "/account" if number % 2 else f"/oidc/hooli/callback?{query}"
            client.sendall(f"GET {target} HTTP/1.1\r\nHost: login.legacy.example\r\n\r\n".encode())
            head = client.recv(65536).split(b"\r\n", 1)[0]
            assert head == b"HTTP/1.1 200 OK", (number, head)
    finally:
        for client in clients:
            client.close()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    (capped,) = [line for line in lines if "max_connections lowered" in line.get("event", "")]
    assert (capped["max_connections"], capped["configured"]) == (256 - 16 - 64, 2048)
    callbacks = [line for line in lines if line.get("event") in ("callback", "request")]
    assert len(callbacks) == 20 and {line["status"] for line in callbacks} == {200}


def test_serve_refuses_an_open_file_limit_that_leaves_no_client_connection(
    tmp_path: Path, providers: dict[str, LoopbackServer]
) -> None:
    config = write_proxy_files(
        tmp_path,
        providers["legacy"].url,
        providers["new"].url,
        listen={"host": "127.0.0.1", "port": free_port()},
        ops={"port": free_port()},
        limits={"upstream_pool_size": 100},
    )
    command = _serve_command(config, open_files=128)
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "open-file limit (128" in done.stderr
    assert "limits.upstream_pool_size (100)" in done.stderr
