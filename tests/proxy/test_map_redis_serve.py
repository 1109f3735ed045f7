"""The connection map shared through Redis: a push under traffic, a refused push, a bad doc.

Real parts throughout: two `python -m proxy serve` processes following one Redis key prefix,
`authswitch connections push` as a process, signed SAML Responses from a demo IdP, real HTTP on
loopback. The figures (CLI wall time, propagation to the slower replica) are printed
(`pytest -s`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from connection_map.redis_store import MapKeys
from flags import RolloutState, write_rollout_state
from proxy.demo.idp import DemoIdP
from proxy.demo.loopback_server import LoopbackServer
from tests.conftest import LEGACY_SP_ENTITY_ID, PUBLIC_ACS, write_proxy_files
from tests.flags.redis_support import (
    RedisTarget,
    free_port,
    shared_redis,  # noqa: F401  (registers the fixture for this module)
    wait_until,
)

FORM = {"content-type": "application/x-www-form-urlencoded"}


@dataclass
class Deployment:
    config: Path
    map_file: Path
    urls: list[str]
    ops: list[str]  # each replica's ops listener
    redis: RedisTarget
    new_url: str

    def readyz(self, ops_url: str) -> dict[str, Any]:
        report: dict[str, Any] = httpx.get(ops_url + "/readyz", timeout=5).json()
        return report

    def map_versions(self) -> list[int | None]:
        return [self.readyz(url)["checks"]["connection_map"]["version"] for url in self.ops]


def _push(config: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, "AUTHSWITCH_ACTOR": "sre-on-call"}
    command = [sys.executable, "-m", "proxy", "connections", "push", "--config", str(config)]
    started = time.monotonic()
    done = subprocess.run([*command, *args], capture_output=True, text=True, env=env, timeout=60)
    return done, time.monotonic() - started


def _map_with(map_file: Path, version: int, **acme_changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(map_file.read_text())
    document["version"] = version
    for entry in document["connections"]:
        if entry["id"] == "acme":
            entry.update(acme_changes)
    return document


@pytest.fixture
def deployment(
    tmp_path: Path,
    providers: dict[str, LoopbackServer],
    shared_redis: RedisTarget,  # noqa: F811  (the fixture imported above)
) -> Iterator[Deployment]:
    """Version 1 of the map pushed to Redis, then two replicas following it; acme flagged on."""
    urls, ops, processes, logs = [], [], [], []
    config = map_file = Path()
    for number in (1, 2):
        directory = tmp_path / f"replica{number}"
        directory.mkdir()
        port, ops_port = free_port(), free_port()
        config = write_proxy_files(
            directory,
            providers["legacy"].url,
            providers["new"].url,
            listen={"host": "127.0.0.1", "port": port},
            ops={"port": ops_port},
            connection_map_redis={
                "url": shared_redis.url,
                "key_prefix": shared_redis.prefix,
                "resync_seconds": 1,
            },
        )
        write_rollout_state(directory / "flags.yaml", RolloutState(overrides={"acme": "on"}))
        map_file = directory / "connections.yaml"
        if number == 1:
            # acme is flagged on: the first map moves it to the new provider, so the push is
            # previewed and applied with the preview's token.
            refused, _ = _push(config, "--reason", "first map")
            assert refused.returncode == 5 and "acme: legacy (not_in_map) -> new" in refused.stdout
            preview, _ = _push(config, "--preview", "--json")
            token = json.loads(preview.stdout)["token"]
            done, _ = _push(config, "--apply", token, "--reason", "first map")
            assert done.returncode == 0, done.stderr
        else:  # a replica needs no map file: it serves what Redis holds
            map_file.unlink()
        log = directory / "serve.log"
        command = [sys.executable, "-m", "proxy", "serve", "--config", str(config)]
        processes.append(subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT))
        logs.append(log)
        urls.append(f"http://127.0.0.1:{port}")
        ops.append(f"http://127.0.0.1:{ops_port}")
    push_config = tmp_path / "replica1" / "authswitch.yaml"
    push_map = tmp_path / "replica1" / "connections.yaml"
    env = Deployment(push_config, push_map, urls, ops, shared_redis, providers["new"].url)
    try:
        for url, process, log in zip(ops, processes, logs, strict=True):
            deadline = time.monotonic() + 60  # start-up under coverage on a loaded machine
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    if httpx.get(url + "/readyz", timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        yield env
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)


class SamlTraffic:
    """Signed acme SAML Responses posted to one replica in a loop; each answer recorded."""

    def __init__(self, base_url: str, bodies: list[bytes]) -> None:
        self.base_url = base_url
        self.bodies = bodies
        self.answers: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SamlTraffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            n = 0
            while not self._stop.is_set():
                body = self.bodies[n % len(self.bodies)]
                n += 1
                try:
                    response = client.post(
                        self.base_url + "/login/callback", content=body, headers=FORM
                    )
                    location = response.headers.get("location", "")
                    self.answers.append(f"{response.status_code} {location}")
                except Exception as exc:  # recorded, so the test says what happened
                    self.answers.append(f"failed: {exc!r}")
                time.sleep(0.005)


def test_a_push_under_traffic_swaps_both_replicas_without_a_failed_callback(
    deployment: Deployment, idps: dict[str, DemoIdP]
) -> None:
    bodies = [
        idps["acme"].mint_form_body(
            destination=PUBLIC_ACS, audience=LEGACY_SP_ENTITY_ID, name_id=f"user{n}@acme.example"
        )
        for n in range(4)
    ]
    old = f"307 {deployment.new_url}/sso/acme/callback"
    new = f"307 {deployment.new_url}/sso/acme-eu/callback"
    assert deployment.map_versions() == [1, 1]
    moved = deployment.map_file.parent / "connections-v2.yaml"
    moved.write_text(
        yaml.safe_dump(
            _map_with(
                deployment.map_file,
                2,
                new_provider={"url": f"{deployment.new_url}/sso/acme-eu/callback"},
            )
        )
    )

    traffic = [SamlTraffic(url, bodies) for url in deployment.urls]
    with traffic[0], traffic[1]:
        time.sleep(0.3)
        done, cli_seconds = _push(deployment.config, "--from", str(moved), "--reason", "OPS-9")
        assert done.returncode == 0, done.stderr
        pushed_at = time.monotonic()
        propagation = wait_until(lambda: deployment.map_versions() == [2, 2], deadline=3.0)
        assert propagation < 1.0, propagation
        waited_for_traffic = time.monotonic() - pushed_at
        time.sleep(max(0.0, 0.3 - waited_for_traffic))

    for replica in traffic:
        assert len(replica.answers) > 20
        assert set(replica.answers) <= {old, new}, set(replica.answers) - {old, new}
        first_new = replica.answers.index(new)
        assert old not in replica.answers[first_new:], "a replica went back to the old map"
        assert replica.answers[0] == old and replica.answers[-1] == new
    for url in deployment.ops:
        text = httpx.get(url + "/metrics", timeout=5).text
        assert 'authswitch_connection_map_version{backend="redis"} 2.0' in text
        assert 'authswitch_connection_map_connections{backend="redis"} 6.0' in text
    print(
        f"\n  connections push wall time (s): {cli_seconds:.3f}"
        f"\n  push -> both replicas report version 2 (s): {propagation:.3f}"
        f"\n  callbacks during the push: {[len(t.answers) for t in traffic]}"
    )


def test_a_bad_push_is_refused_and_a_corrupted_doc_is_not_served(
    deployment: Deployment, idps: dict[str, DemoIdP]
) -> None:
    body = idps["acme"].mint_form_body(
        destination=PUBLIC_ACS, audience=LEGACY_SP_ENTITY_ID, name_id="bob@acme.example"
    )
    expected = f"307 {deployment.new_url}/sso/acme/callback"
    bad = deployment.map_file.parent / "connections-bad.yaml"
    bad.write_text(yaml.safe_dump(_map_with(deployment.map_file, 2, new_provider={"url": "x"})))
    stale = deployment.map_file.parent / "connections-stale.yaml"
    stale.write_text(yaml.safe_dump(_map_with(deployment.map_file, 1, name="Acme")))

    with SamlTraffic(deployment.urls[0], [body]) as traffic:
        refused, _ = _push(deployment.config, "--from", str(bad), "--reason", "typo")
        not_newer, _ = _push(deployment.config, "--from", str(stale), "--reason", "old file")
        conflict, _ = _push(deployment.config, "--expect-version", "0", "--reason", "r")

        # Written straight into Redis, bypassing the CLI: garbage, then a doc that fails
        # validation. Replicas refuse both, keep version 1 and say why.
        client = deployment.redis.client()
        keys = MapKeys(deployment.redis.prefix)
        invalid = yaml.safe_load(bad.read_text())
        invalid["version"] = 3
        corrupted: list[tuple[bytes, str]] = [
            (b"not zlib at all", "not a zlib-compressed JSON document"),
            (zlib.compress(yaml.safe_dump(invalid).encode()), "not a JSON document"),
            (
                zlib.compress(json.dumps(invalid).encode()),
                "connections[0] (id 'acme').new_provider.url",
            ),
        ]
        reports = []
        for data, problem in corrupted:
            client.set(keys.served, data)
            client.set(keys.version, 3)
            client.publish(keys.changed, 3)
            for url in deployment.ops:
                wait_until(
                    lambda url=url, problem=problem: (
                        problem
                        in (deployment.readyz(url)["checks"]["connection_map"]["last_error"] or "")
                    ),
                    deadline=3.0,
                )
                reports.append(deployment.readyz(url))
        client.close()

    assert refused.returncode == 1 and "new_provider.url" in refused.stderr
    assert "connections[0] (id 'acme')" in refused.stderr and "nothing pushed" in refused.stderr
    assert not_newer.returncode == 1 and "not newer than the live version 1" in not_newer.stderr
    assert conflict.returncode == 1 and "version 1 is live, not 0" in conflict.stderr
    for report in reports:
        assert report["ready"] is True
        assert report["checks"]["connection_map"]["version"] == 1
        assert "refused; keeping version 1" in report["checks"]["connection_map"]["last_error"]
    assert len(traffic.answers) > 10 and set(traffic.answers) == {expected}
