"""The ops listener: /livez, /readyz and /metrics there and only there, under any spelling;
its hardening; the console's mount point; readiness added up over workers."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from proxy.config import ConfigError, Ops, load_config
from proxy.demo.loopback_server import LoopbackServer
from proxy.ops.ops_listener import OpsListener, build_ops_app
from proxy.ops.worker_readiness import ReadinessPublisher, WorkerReadiness
from tests.conftest import ProxyEnv, write_proxy_files
from tests.proxy.test_legacy_fall_through import _through_raw_legacy

# Request targets sent byte for byte to the public listener, and what must become of each:
# "legacy" (passed through with exactly this target: the legacy host's path space) or a refusal
# before routing (400, the request-target check), never an ops answer.
PUBLIC_SPELLINGS: list[tuple[str, str]] = [
    ("/_authswitch/metrics", "legacy"),
    ("/_authswitch/readyz", "legacy"),
    ("/_authswitch/livez", "legacy"),
    ("/metrics", "legacy"),
    ("/readyz", "legacy"),
    ("/livez", "legacy"),
    ("/%5Fauthswitch/metrics", "legacy"),
    ("/%5fauthswitch/readyz", "legacy"),
    ("/_authswitch%2Fmetrics", "legacy"),
    ("/_authswitch%2freadyz", "legacy"),
    ("//_authswitch/metrics", "legacy"),
    ("/_authswitch//metrics", "legacy"),
    ("/_AUTHSWITCH/METRICS", "legacy"),
    ("/_Authswitch/Readyz", "legacy"),
    ("/_authswitch/metrics;jsessionid=1", "legacy"),
    ("/_authswitch;x=1/readyz", "legacy"),
    ("/_authswitch/metrics/", "legacy"),
    ("/_authswitch/readyz?format=json", "legacy"),
    ("/_authswitch/%6Detrics", "legacy"),
    ("/%255Fauthswitch/metrics", "legacy"),
    ("/_authswitch%252Fmetrics", "legacy"),
    ("/_authswitch/./metrics", "refused"),
    ("/x/../_authswitch/readyz", "refused"),
    ("/_authswitch/%2e/metrics", "refused"),
    ("/_authswitch/%2E%2E/_authswitch/readyz", "refused"),
    ("/_authswitch/..;/readyz", "refused"),
]
ABSOLUTE_FORM = "http://login.legacy.example/_authswitch/metrics"


async def _raw_get(url: str, target: str) -> tuple[int, bytes]:
    """Send `target` as the request line's target, unnormalised; the status and body."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"GET {target} HTTP/1.1\r\nhost: login.legacy.example\r\nconnection: close\r\n\r\n".encode()
    )
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_no_spelling_of_an_ops_path_is_answered_by_the_public_listener(
    tmp_path_factory: pytest.TempPathFactory, providers: dict[str, LoopbackServer]
) -> None:
    targets = [target for target, _ in PUBLIC_SPELLINGS] + [ABSOLUTE_FORM]

    async def client(url: str) -> list[tuple[int, bytes]]:
        return [await _raw_get(url, target) for target in targets]

    answers, heads = _through_raw_legacy(tmp_path_factory.mktemp("spellings"), providers, client)

    expected_at_legacy = [t for t, fate in PUBLIC_SPELLINGS if fate == "legacy"]
    # The absolute form names the legacy host's own path: it reaches legacy in origin form.
    expected_at_legacy.append("/_authswitch/metrics")
    request_lines = [head.split(b"\r\n", 1)[0].decode() for head in heads]
    assert request_lines == [f"GET {target} HTTP/1.1" for target in expected_at_legacy]
    for (target, fate), (status, body) in zip(PUBLIC_SPELLINGS, answers, strict=False):
        if fate == "legacy":
            assert status == 204, (target, status, body)  # the raw legacy's own answer
        else:
            assert status == 400, (target, status, body)
            assert json.loads(body)["error"] == "dot_segments", target
    assert answers[-1][0] == 204
    for _, body in answers:
        assert b"authswitch_" not in body and b'"ready"' not in body and b'"ok"' not in body


def test_the_ops_listener_answers_only_the_exact_paths(proxy_env: ProxyEnv) -> None:
    async def client() -> dict[str, tuple[int, bytes]]:
        targets = [
            "/livez",
            "/readyz",
            "/metrics",
            "/%6Detrics",  # decodes to /metrics: the same resource
            "/metrics/",
            "//metrics",
            "/./metrics",
            "/METRICS",
            "/metrics;x=1",
            "/_authswitch/metrics",
            "/%2Fmetrics",
            ABSOLUTE_FORM.replace("/_authswitch", ""),
        ]
        return {target: await _raw_get(proxy_env.ops_url, target) for target in targets}

    answers = asyncio.run(client())

    assert answers["/livez"] == (200, b'{"status":"ok"}')
    ready = json.loads(answers["/readyz"][1])
    assert answers["/readyz"][0] == 200 and ready["ready"] is True
    assert ready["checks"]["connection_map"]["connections"] == 6
    for same in ("/metrics", "/%6Detrics", ABSOLUTE_FORM.replace("/_authswitch", "")):
        assert answers[same][0] == 200 and b"authswitch_build_info" in answers[same][1], same
    for other in ("/metrics/", "//metrics", "/./metrics", "/METRICS", "/metrics;x=1"):
        assert answers[other][0] == 404, other
    assert answers["/_authswitch/metrics"][0] == 404
    assert answers["/%2Fmetrics"][0] == 404
    assert httpx.post(proxy_env.ops_url + "/readyz").status_code == 405
    assert httpx.head(proxy_env.ops_url + "/metrics").status_code == 200


def test_a_silent_client_is_closed_at_the_head_deadline(proxy_env: ProxyEnv) -> None:
    listener = OpsListener(Ops(port=0, header_seconds=0.5), proxy_env.app.readiness)
    with listener, socket.create_connection(("127.0.0.1", listener.port), timeout=5) as slow:
        slow.sendall(b"GET /metrics HTTP/1.1\r\n")  # and never the rest
        started = time.monotonic()
        answer = slow.recv(1024)
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408") and waited < 4


def test_connections_over_the_cap_are_closed_at_once(proxy_env: ProxyEnv) -> None:
    listener = OpsListener(Ops(port=0, max_connections=4), proxy_env.app.readiness)
    with listener:
        address = ("127.0.0.1", listener.port)
        held = [socket.create_connection(address, timeout=5) for _ in range(4)]
        try:
            time.sleep(0.2)
            with socket.create_connection(address, timeout=5) as extra:
                extra.sendall(b"GET /livez HTTP/1.1\r\nhost: x\r\n\r\n")
                try:
                    refused = extra.recv(1024)
                except ConnectionResetError:
                    refused = b""
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.2)
        after = httpx.get(listener.url + "/livez", timeout=5)
    assert refused == b""  # closed at once, no answer
    assert after.status_code == 200  # and the listener keeps serving


def test_a_mounted_app_gets_every_other_path_and_its_lifespan(proxy_env: ProxyEnv) -> None:
    events: list[str] = []

    async def console(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                events.append(message["type"])
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": f"console {scope['path']}".encode()})

    with OpsListener(Ops(port=0), proxy_env.app.readiness, console) as listener:
        page = httpx.get(listener.url + "/connections", timeout=5)
        ready = httpx.get(listener.url + "/readyz", timeout=5)
    assert page.text == "console /connections"
    assert ready.json()["ready"] is True  # the ops endpoints come first
    assert events == ["lifespan.startup", "lifespan.shutdown"]
    assert build_ops_app(proxy_env.app.config) is None  # the console is off by default


def test_a_port_in_use_fails_with_the_key_named(tmp_path: Path) -> None:
    import subprocess
    import sys

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        config = write_proxy_files(
            tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9", ops={"port": port}
        )
        done = subprocess.run(
            [sys.executable, "-m", "proxy", "serve", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert f"ops listener 127.0.0.1:{port} (keys 'ops.host', 'ops.port')" in done.stderr


def test_old_metrics_keys_name_their_new_home(tmp_path: Path) -> None:
    config = write_proxy_files(
        tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9", metrics={"port": 9464}
    )
    with pytest.raises(ConfigError, match=r"key 'metrics': .*'metrics.port' moved to 'ops.port'"):
        load_config(config)


# -- readiness over workers --------------------------------------------------------------------


def _report(ready: bool, missing: list[str] | None = None) -> tuple[int, dict[str, object]]:
    body: dict[str, object] = {
        "ready": ready,
        "missing": missing or [],
        "degraded": [],
        "checks": {"started": ready},
    }
    return (200 if ready else 503), body


def test_readiness_is_every_workers_and_a_hung_or_dead_worker_counts_as_missing(
    tmp_path: Path,
) -> None:
    now = [1000.0]
    readiness = WorkerReadiness(tmp_path, 2, max_age_seconds=5, clock=lambda: now[0])

    def write(pid: int, report: tuple[int, dict[str, object]], at: float) -> None:
        entry = {"time": at, "status": report[0], "report": report[1]}
        (tmp_path / f"{pid}.json").write_text(json.dumps(entry))

    nobody = readiness()
    write(os.getpid(), _report(True), now[0])
    one = readiness()
    write(os.getppid(), _report(False, ["no flag state known yet"]), now[0])
    one_not_ready = readiness()
    write(os.getppid(), _report(True), now[0])
    both = readiness()
    now[0] += 6  # neither wrote for longer than max_age: their loops are stuck
    hung = readiness()
    dead_pid = 2**22 + 12345  # above the default pid_max: never a live process
    write(dead_pid, _report(True), now[0])
    readiness()

    assert nobody[0] == 503 and nobody[1]["missing"] == ["0 of 2 workers report ready state"]
    assert one[0] == 503 and one[1]["missing"] == ["1 of 2 workers report ready state"]
    assert one_not_ready[0] == 503 and one_not_ready[1]["missing"] == ["no flag state known yet"]
    assert both[0] == 200 and both[1]["ready"] is True and len(both[1]["workers"]) == 2  # type: ignore[arg-type]
    assert both[1]["checks"] == {"started": True}
    assert hung[0] == 503
    assert not (tmp_path / f"{dead_pid}.json").exists(), "a dead worker's report is dropped"


def test_a_worker_publishes_its_report_and_withdraws_it_when_stopping(tmp_path: Path) -> None:
    publisher = ReadinessPublisher(tmp_path, lambda: _report(True))
    readiness = WorkerReadiness(tmp_path, 1)

    async def scenario() -> tuple[int, int]:
        publisher.start()
        while_up = readiness()[0]
        publisher.stop()
        return while_up, readiness()[0]

    assert asyncio.run(scenario()) == (200, 503)


def test_a_worker_without_a_readiness_directory_still_starts(tmp_path: Path) -> None:
    publisher = ReadinessPublisher(tmp_path / "gone", lambda: _report(True))

    async def scenario() -> None:
        publisher.start()  # logs, and serves on: the supervisor will count it as missing
        publisher.stop()

    asyncio.run(scenario())
    assert not (tmp_path / "gone").exists()
