"""Live legacy logins through a real proxy decide whether a connection may move.

Real signed SAML (generated keys), real HTTP over loopback, real Redis, the real CLI.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography import x509
from typer.testing import CliRunner, Result

from connection_map import Connection
from proxy.app import AuthSwitch
from proxy.cli.exit_codes import ExitCode
from proxy.cli.main import app as cli_app
from proxy.config import load_config
from proxy.demo.idp import DemoIdP
from proxy.demo.keys import generate_keypair
from proxy.demo.loopback_server import LoopbackServer
from proxy.ops import metrics
from proxy.shadow.cpu_budget import CpuBudget
from proxy.shadow.saml_check import fingerprint
from tests.conftest import LEGACY_SP_ENTITY_ID, PUBLIC_ACS, write_proxy_files
from tests.flags.redis_support import (
    RedisTarget,
    shared_redis,  # noqa: F401  (registers the fixture for this module)
)

FORM = {"content-type": "application/x-www-form-urlencoded"}
NAME_ID = "grace.hopper@acme.example"


def _config(tmp_path: Path, providers: Any, redis_target: RedisTarget, **shadow: Any) -> Path:
    settings = {
        "default_sample_rate": 1.0,
        "redis": {"url": redis_target.url, "key_prefix": redis_target.prefix},
        "gate": True,
        "min_samples": 3,
        "min_accept_ratio": 0.99,
        **shadow,
    }
    return write_proxy_files(
        tmp_path, providers["legacy"].url, providers["new"].url, shadow=settings
    )


def _set_import(directory: Path, certificates: list[str]) -> None:
    """What `connections import` would have written for acme: its certificates and endpoints."""
    path = directory / "connections.yaml"
    document = yaml.safe_load(path.read_text())
    for entry in document["connections"]:
        if entry["id"] == "acme":
            entry["saml"]["signing_certificates"] = certificates
            entry["saml"]["attributes"] = {"email": "email"}
            entry["legacy"] = {"callback_url": PUBLIC_ACS, "sp_entity_id": LEGACY_SP_ENTITY_ID}
    path.write_text(yaml.safe_dump(document))


def _login(server: LoopbackServer, idp: DemoIdP) -> httpx.Response:
    body = idp.mint_form_body(
        destination=PUBLIC_ACS, audience=LEGACY_SP_ENTITY_ID, name_id=NAME_ID, relay_state="r-1"
    )
    return httpx.post(server.url + "/login/callback", content=body, headers=FORM, timeout=10)


def _cli(*args: str) -> Result:
    return CliRunner().invoke(cli_app, list(args), env={"AUTHSWITCH_ACTOR": "sre@example.com"})


def _readiness(config: Path) -> dict[str, Any]:
    result = _cli("connections", "readiness", "--config", str(config), "--json")
    assert result.exit_code == 0, result.output
    return {row["connection"]: row for row in json.loads(result.stdout)}


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "not reached in 10 s"
        time.sleep(0.01)


def _settle(proxy: AuthSwitch, sampled: int) -> None:
    """Every sample offered (just after its answer) and checked."""
    sampler = proxy.shadow
    assert sampler is not None
    _wait_for(lambda: sampler.queued == sampled)
    sampler.drain()


def _fingerprint(pem: str) -> str:
    return fingerprint(x509.load_pem_x509_certificate(pem.encode()))


def test_a_rolled_over_certificate_blocks_the_move_until_the_import_is_fixed(
    tmp_path: Path,
    providers: Any,
    idps: dict[str, DemoIdP],
    shared_redis: RedisTarget,  # noqa: F811
) -> None:
    acme = idps["acme"]
    exported = generate_keypair("idp-acme-before-rollover")  # what the export still lists
    config = _config(tmp_path, providers, shared_redis)
    _set_import(tmp_path, [exported.cert_pem])
    proxy = AuthSwitch(load_config(config))
    assert proxy.shadow is not None
    signer = _fingerprint(acme.keys.cert_pem)
    with LoopbackServer(proxy, name="authswitch") as server:
        for _ in range(3):
            answer = _login(server, acme)
            assert answer.status_code == 200 and answer.json()["landed"] == "legacy"
        _settle(proxy, 3)
        row = _readiness(config)["acme"]
        assert (row["samples"], row["accepted"], row["accept_ratio"]) == (3, 0, 0.0)
        assert row["reasons"][0]["code"] == "unknown_signing_certificate"
        assert row["reasons"][0]["count"] == 3
        assert signer in row["reasons"][0]["detail"]
        assert row["signing_certificate"]["sha256"] == signer
        assert row["signing_certificate"]["in_import"] is False
        assert row["ready"] is False

        refused = _cli("flags", "enable", "acme", "--config", str(config), "--reason", "go")
        assert refused.exit_code == ExitCode.REFUSED, refused.output
        assert "not ready" in refused.output and signer in refused.output

        _set_import(tmp_path, [exported.cert_pem, acme.keys.cert_pem])  # the import fixed
        for _ in range(3):
            assert _login(server, acme).status_code == 200
        _settle(proxy, 6)
        row = _readiness(config)["acme"]
        assert (row["samples"], row["accept_ratio"], row["reasons"]) == (3, 1.0, [])
        assert row["signing_certificate"]["in_import"] is True
        assert row["ready"] is True
        table = _cli("connections", "readiness", "--config", str(config))
        assert table.exit_code == 0 and "100.0%" in table.output

        enabled = _cli("flags", "enable", "acme", "--config", str(config), "--reason", "go")
        assert enabled.exit_code == 0, enabled.output
    # Nothing of a response anywhere: Redis, the CLI's output, the metrics.
    client = shared_redis.client()
    stored = b"".join(
        json.dumps(repr(client.hgetall(key))).encode()
        for key in client.scan_iter(match=f"{shared_redis.prefix}:shadow:*")
    )
    assert b"unknown_signing_certificate" in stored  # the scan reads what the proxy wrote
    exposition, _ = metrics.exposition()
    for place in (stored, table.output.encode(), exposition):
        assert NAME_ID.encode() not in place
        assert b"PHNhbWxwOlJlc3BvbnNl" not in place  # base64 of "<samlp:Response"


def test_forcing_past_the_gate_is_audited_and_stage_preview_lists_the_unready(
    tmp_path: Path,
    providers: Any,
    shared_redis: RedisTarget,  # noqa: F811
) -> None:
    config = _config(tmp_path, providers, shared_redis)
    preview = _cli("flags", "stage", "100", "--preview", "--config", str(config), "--json")
    assert preview.exit_code == 0, preview.output
    not_ready = json.loads(preview.stdout)["not_ready"]
    # Every connection the stage would move: none has samples yet.
    assert set(not_ready) == {"acme", "globex", "initech", "hooli", "piedpiper"}
    assert "0 checked samples" in not_ready["acme"]

    token = json.loads(preview.stdout)["token"]
    stage = ("flags", "stage", "100", "--config", str(config), "--apply", token)
    refused = _cli(*stage, "--reason", "go")
    assert refused.exit_code == ExitCode.REFUSED, refused.output
    assert "not ready" in refused.output and "hooli" in refused.output

    forced = _cli(
        "flags", "enable", "acme", "--config", str(config), "--reason", "CAB-12", "--force"
    )
    assert forced.exit_code == 0, forced.output
    history = _cli("flags", "history", "--config", str(config), "--json")
    record = json.loads(history.stdout)[0] if history.exit_code == 0 else None
    assert record is not None, history.output
    assert "CAB-12 [forced past the readiness gate - acme: 0 checked samples" in json.dumps(record)


def test_a_flood_never_delays_callbacks_and_dropped_samples_are_counted(
    tmp_path: Path,
    providers: Any,
    idps: dict[str, DemoIdP],
    shared_redis: RedisTarget,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    acme = idps["acme"]
    config = _config(tmp_path, providers, shared_redis, queue_size=4, workers=1)
    _set_import(tmp_path, [acme.keys.cert_pem])
    proxy = AuthSwitch(load_config(config))
    sampler = proxy.shadow
    assert sampler is not None
    # The worker is stuck on its first sample until the flood is over.
    release = threading.Event()
    imports = sampler._imports
    original = imports.get

    def stuck(connection_id: str) -> Connection | None:
        release.wait(30)
        return original(connection_id)

    monkeypatch.setattr(imports, "get", stuck)
    dropped_metric = metrics.SHADOW_DROPPED.labels("acme", "queue_full")
    dropped_before = dropped_metric._value.get()
    flood = 20
    with LoopbackServer(proxy, name="authswitch") as server:
        answers = [_login(server, acme) for _ in range(flood)]
        assert [a.status_code for a in answers] == [200] * flood  # answered while stuck
        # A callback is accounted (and offered) just after its answer: wait for the last one.
        _wait_for(lambda: sampler.queued + sampler.dropped == flood)
        assert sampler.dropped >= flood - 5  # one in the worker's hands, four queued
        release.set()
        sampler.drain()
        row = _readiness(config)["acme"]
    assert row["samples"] + sampler.dropped == flood
    assert row["accept_ratio"] == 1.0
    assert dropped_metric._value.get() - dropped_before == sampler.dropped


def test_shadow_checks_are_off_by_default(tmp_path: Path, providers: Any) -> None:
    config = write_proxy_files(tmp_path, providers["legacy"].url, providers["new"].url)
    assert AuthSwitch(load_config(config)).shadow is None


def test_worker_threads_are_replaced_after_their_byte_budget(
    tmp_path: Path,
    providers: Any,
    idps: dict[str, DemoIdP],
    shared_redis: RedisTarget,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("proxy.shadow.sampler.RECYCLE_AFTER_BYTES", 1)  # a new thread per sample
    acme = idps["acme"]
    config = _config(tmp_path, providers, shared_redis, workers=1)
    _set_import(tmp_path, [acme.keys.cert_pem])
    proxy = AuthSwitch(load_config(config))
    seen: list[threading.Thread] = []  # kept referenced, so identity tells them apart
    with LoopbackServer(proxy, name="authswitch") as server:
        for sampled in range(1, 4):
            assert _login(server, acme).status_code == 200
            _settle(proxy, sampled)
            seen.extend(t for t in threading.enumerate() if "shadow" in t.name and t not in seen)
        assert _readiness(config)["acme"]["samples"] == 3  # every sample checked
    assert len(seen) >= 3  # each sample read on a fresh thread (the first, then successors)
    assert not [t for t in threading.enumerate() if t.name.startswith("authswitch-shadow")]


def test_checks_stay_within_their_cpu_budget_and_skipped_samples_are_counted(
    tmp_path: Path,
    providers: Any,
    idps: dict[str, DemoIdP],
    shared_redis: RedisTarget,  # noqa: F811
) -> None:
    acme = idps["acme"]
    config = _config(tmp_path, providers, shared_redis)
    _set_import(tmp_path, [acme.keys.cert_pem])
    proxy = AuthSwitch(load_config(config))
    sampler = proxy.shadow
    assert sampler is not None
    now = [0.0]
    # 10 % of a core, a burst of 0.1 ms: one check (milliseconds of CPU) empties the bucket.
    sampler._budget = CpuBudget(0.1, burst=0.0001, clock=lambda: now[0])
    skipped = metrics.SHADOW_DROPPED.labels("acme", "cpu_budget")
    skipped_before = skipped._value.get()
    with LoopbackServer(proxy, name="authswitch") as server:
        for _ in range(3):  # one checked, then the bucket is spent: two skipped
            assert _login(server, acme).status_code == 200
            _wait_for(lambda: sampler.queued + sampler.dropped >= 1)
            sampler.drain()
        _wait_for(lambda: sampler.queued + sampler.dropped == 3)
        assert (sampler.queued, sampler.dropped) == (1, 2)
        now[0] += 10.0  # ten seconds later the bucket is full again
        assert _login(server, acme).status_code == 200
        _wait_for(lambda: sampler.queued == 2)
        sampler.drain()
    assert skipped._value.get() - skipped_before == 2
    assert _readiness(config)["acme"]["samples"] == 2


def test_the_cpu_budget_refills_at_its_share_up_to_its_burst() -> None:
    now = [100.0]
    budget = CpuBudget(0.25, burst=0.5, clock=lambda: now[0])
    assert budget.available()
    budget.spend(0.75)  # a check may overdraw: it was already running
    assert not budget.available()
    now[0] += 0.9  # +0.225: still below zero
    assert not budget.available()
    now[0] += 0.2  # +0.05: above zero
    assert budget.available()
    now[0] += 3600  # refills no further than the burst
    budget.spend(0.5)
    assert not budget.available()


def test_checks_compare_with_the_map_pushed_to_redis_when_the_proxy_serves_that(
    tmp_path: Path,
    providers: Any,
    idps: dict[str, DemoIdP],
    shared_redis: RedisTarget,  # noqa: F811
) -> None:
    acme = idps["acme"]
    config = _config(tmp_path, providers, shared_redis)
    settings = yaml.safe_load(config.read_text())
    settings["connection_map_redis"] = {"url": shared_redis.url, "key_prefix": shared_redis.prefix}
    config.write_text(yaml.safe_dump(settings))
    _set_import(tmp_path, [acme.keys.cert_pem])
    pushed = _cli("connections", "push", "--config", str(config), "--reason", "the import")
    assert pushed.exit_code == 0, pushed.output
    # The file beside the config drifts (a stale export): the replicas serve what was pushed.
    _set_import(tmp_path, [generate_keypair("idp-acme-stale-export").cert_pem])
    proxy = AuthSwitch(load_config(config))
    with LoopbackServer(proxy, name="authswitch") as server:
        _wait_for(lambda: proxy.connection_map.health().loaded)
        for _ in range(3):
            assert _login(server, acme).status_code == 200
        _settle(proxy, 3)
    row = _readiness(config)["acme"]
    assert (row["samples"], row["accept_ratio"]) == (3, 1.0)
