"""The proxy with Redis-backed flags: replicas follow a CLI flip, and survive Redis outages.

Real parts throughout: `python -m proxy serve` processes, the `authswitch flags` CLI as a
process, a real Redis (the machine's, or a private redis-server that the test freezes), real
HTTP on loopback. The figures (propagation latency, CLI wall time) are printed (`pytest -s`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flags import RedisKeys, RedisRolloutStore, RolloutState
from flags.redis.keys import connect
from proxy.app import AuthSwitch
from proxy.config import load_config
from proxy.demo.loopback_server import LoopbackServer
from tests.conftest import ops_listener, readyz, write_proxy_files
from tests.flags.redis_support import (
    PrivateRedis,
    RedisTarget,
    free_port,
    private_redis,  # noqa: F401  (registers the fixtures for this module)
    shared_redis,  # noqa: F401
    wait_until,
)

CALLBACK = "/oidc/hooli/callback?code=c0de&state=st4te"  # hooli: oidc, redirect mode


def _route_of(base_url: str) -> str:
    """Where the proxy sends hooli's callback: a 302 to the new provider, or legacy's 200."""
    response = httpx.get(base_url + CALLBACK, timeout=5)
    if response.status_code == 302:
        return "new"
    assert response.status_code == 200, response.text
    return "legacy"


def _flags_cli(config: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, "AUTHSWITCH_ACTOR": "sre-on-call"}
    command = [sys.executable, "-m", "proxy", "flags", *args, "--config", str(config)]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=30)
    return done, time.monotonic() - started


def _start_serve(config: Path, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "proxy", "serve", "--config", str(config)]
    return subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT)


@pytest.fixture
def two_replicas(
    tmp_path: Path,
    providers: dict[str, LoopbackServer],
    shared_redis: RedisTarget,  # noqa: F811  (the fixture imported above)
) -> Iterator[tuple[Path, list[str], list[str]]]:
    """Two `python -m proxy serve` processes sharing one Redis key prefix; (config, public
    urls, ops listener urls)."""
    urls, processes, logs, ops = [], [], [], []
    config = tmp_path / "authswitch.yaml"
    for number in (1, 2):
        directory = tmp_path / f"replica{number}"
        directory.mkdir()
        port, ops_port = free_port(), free_port()
        ops.append(f"http://127.0.0.1:{ops_port}")
        config = write_proxy_files(
            directory,
            providers["legacy"].url,
            providers["new"].url,
            listen={"host": "127.0.0.1", "port": port},
            ops={"port": ops_port},
            flags={
                "backend": "redis",
                "redis": {"url": shared_redis.url, "key_prefix": shared_redis.prefix},
            },
        )
        log = directory / "serve.log"
        processes.append(_start_serve(config, log))
        logs.append(log)
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for url, process, log in zip(ops, processes, logs, strict=True):
            deadline = time.monotonic() + 60  # start-up under coverage on a loaded machine
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    if readyz(url)[0] == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        yield config, urls, ops
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)


def test_a_flip_via_the_cli_is_honoured_by_both_replicas_within_a_second(
    two_replicas: tuple[Path, list[str], list[str]],
) -> None:
    config, urls, ops = two_replicas
    assert [_route_of(url) for url in urls] == ["legacy", "legacy"]
    for url in ops:
        status, report = readyz(url)
        flags = report["checks"]["flags"]
        assert (status, flags["backend"], flags["version"], flags["stale"]) == (
            200,
            "redis",
            0,
            False,
        )

    figures: dict[str, float] = {}
    for action, expected in (("enable", "new"), ("disable", "legacy")):
        done, cli_seconds = _flags_cli(config, action, "hooli", "--reason", f"OPS-7 {action}")
        assert done.returncode == 0, done.stderr
        written_at = time.monotonic()
        latencies = []
        for url in urls:
            wait_until(
                lambda url=url, expected=expected: _route_of(url) == expected,
                deadline=2.0,
                interval=0.01,
            )
            latencies.append(time.monotonic() - written_at)
        figures[f"cli {action} wall time (s)"] = cli_seconds
        figures[f"{action}: slower replica honoured it after (s)"] = max(latencies)
        assert max(latencies) < 1.0, f"{action}: {latencies}"

    status_run, status_seconds = _flags_cli(config, "status")
    assert status_run.returncode == 0 and "override_off" in status_run.stdout
    preview, preview_seconds = _flags_cli(config, "stage", "25", "--preview", "--json")
    token = json.loads(preview.stdout)["token"]
    applied, apply_seconds = _flags_cli(config, "stage", "25", "--apply", token, "--reason", "r")
    assert applied.returncode == 0, applied.stderr
    figures |= {
        "cli status wall time (s)": status_seconds,
        "cli stage --preview wall time (s)": preview_seconds,
        "cli stage --apply wall time (s)": apply_seconds,
    }
    wait_until(lambda: all(readyz(url)[1]["checks"]["flags"]["version"] == 3 for url in ops))
    for url in ops:
        text = httpx.get(url + "/metrics", timeout=5).text
        assert 'authswitch_flags_version{backend="redis"} 3.0' in text
        assert 'authswitch_flags_stale_seconds{backend="redis"} 0.0' in text
        assert "authswitch_redis_up 1.0" in text
    print("\n" + "\n".join(f"  {name}: {value:.3f}" for name, value in figures.items()))


class Callbacks:
    """hooli callbacks through the proxy in a loop on another thread, routes recorded."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.routes: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Callbacks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.routes.append(_route_of(self.base_url))
            except Exception as exc:  # recorded, so the test fails saying what happened
                self.routes.append(f"failed: {exc!r}")
            time.sleep(0.01)


def _redis_proxy(
    directory: Path, providers: dict[str, LoopbackServer], redis_url: str
) -> AuthSwitch:
    config = write_proxy_files(
        directory,
        providers["legacy"].url,
        providers["new"].url,
        flags={
            "backend": "redis",
            "redis": {
                "url": redis_url,
                "key_prefix": "proxy",
                "resync_seconds": 0.2,
                "socket_timeout_seconds": 0.2,
                "stale_error_after_seconds": 0.5,
            },
        },
    )
    return AuthSwitch(load_config(config))


def test_redis_frozen_during_traffic_every_login_still_routes_and_readyz_says_stale(
    tmp_path: Path,
    providers: dict[str, LoopbackServer],
    private_redis: PrivateRedis,  # noqa: F811  (the fixture imported above)
) -> None:
    store = RedisRolloutStore(
        connect(private_redis.url, socket_timeout=2, client_name="t"), RedisKeys("proxy")
    )
    store.write(0, RolloutState(overrides={"hooli": "on"}), actor="a", reason="r", action="x")
    app = _redis_proxy(tmp_path, providers, private_redis.url)

    with (
        LoopbackServer(app, name="authswitch") as server,
        ops_listener(app) as ops,
        Callbacks(server.url) as traffic,
    ):
        time.sleep(0.2)
        private_redis.freeze()
        wait_until(lambda: readyz(ops.url)[1]["checks"]["flags"]["stale"])
        stale_from = len(traffic.routes)
        # Past stale_error_after_seconds, at the next failed attempt: ERROR, still serving.
        wait_until(lambda: readyz(ops.url)[1]["checks"]["flags"]["provider_status"] == "ERROR")
        # Callbacks while the backend is known to be down, however slow this machine is.
        wait_until(lambda: len(traffic.routes) >= stale_from + 5)
        stale_until = len(traffic.routes)
        status, report = readyz(ops.url)
        flags = report["checks"]["flags"]
        # Enough callbacks during the outage to mean something, however loaded the machine is.
        during_outage = len(traffic.routes)
        wait_until(lambda: len(traffic.routes) > during_outage + 20, deadline=30.0)
        private_redis.thaw()
        wait_until(lambda: not readyz(ops.url)[1]["checks"]["flags"]["stale"])
        store.write(1, RolloutState(), actor="a", reason="after the outage", action="clear")
        wait_until(lambda: _route_of(server.url) == "legacy")

    assert status == 200 and report["ready"] is True
    assert flags["provider_status"] == "ERROR" and flags["version"] == 1
    assert flags["stale_seconds"] > 0.5
    assert "TimeoutError" in flags["last_error"]
    during = traffic.routes[: traffic.routes.index("legacy")]
    assert len(during) >= stale_until, "the first legacy answer came after the clearing write"
    assert set(during) == {"new"}, "a callback left the last known route"


def test_cold_start_with_redis_down_routes_legacy_and_is_not_ready_until_it_answers(
    tmp_path: Path,
    providers: dict[str, LoopbackServer],
    private_redis: PrivateRedis,  # noqa: F811  (the fixture imported above)
) -> None:
    store = RedisRolloutStore(
        connect(private_redis.url, socket_timeout=2, client_name="t"), RedisKeys("proxy")
    )
    store.write(0, RolloutState(overrides={"hooli": "on"}), actor="a", reason="r", action="x")
    private_redis.freeze()
    app = _redis_proxy(tmp_path, providers, private_redis.url)

    with LoopbackServer(app, name="authswitch") as server, ops_listener(app) as ops:
        status, report = readyz(ops.url)
        route = _route_of(server.url)
        private_redis.thaw()
        wait_until(lambda: readyz(ops.url)[0] == 200)
        route_after = _route_of(server.url)

    assert (status, report["ready"], report["checks"]["flags"]["has_state"]) == (503, False, False)
    assert route == "legacy"
    assert route_after == "new"
