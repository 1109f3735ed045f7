"""Metrics after a scripted set of callbacks show exactly those counts, across workers."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from proxy.demo.idp import DemoIdP
from proxy.demo.loopback_server import LoopbackServer
from proxy.ops.metrics import ConnectionLabels
from tests.conftest import LEGACY_SP_ENTITY_ID, PUBLIC_ACS, free_port, write_proxy_files
from tests.proxy.test_serve_command import _wait_ready

FORM = {"content-type": "application/x-www-form-urlencoded"}


def _callback_counts(text: str) -> dict[tuple[str, str, str], float]:
    counts: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "authswitch_callbacks":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                key = (
                    sample.labels["connection"],
                    sample.labels["destination"],
                    sample.labels["outcome"],
                )
                counts[key] = counts.get(key, 0) + sample.value
    return counts


@pytest.mark.parametrize("workers", [1, 2])
def test_scripted_callbacks_are_counted_exactly_on_the_ops_listener(
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
    )
    (tmp_path / "flags.yaml").write_text("version: 1\noverrides: {acme: 'on'}\n")
    log = tmp_path / "serve.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "proxy",
            "serve",
            "--config",
            str(config),
            "--workers",
            str(workers),
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(f"http://127.0.0.1:{ops_port}", process, log)
        script = {"acme": 5, "globex": 3}
        with httpx.Client(timeout=10) as client:
            for cid, times in script.items():
                for _ in range(times):
                    body = idps[cid].mint_form_body(
                        destination=PUBLIC_ACS,
                        audience=LEGACY_SP_ENTITY_ID,
                        name_id="dan@example.com",
                    )
                    client.post(url + "/login/callback", content=body, headers=FORM)
            for _ in range(2):
                client.get(
                    url
                    + "/oidc/nobody/callback?"
                    + urlencode({"code": "code-METRIC-SECRET", "state": "st-METRIC-SECRET"})
                )
            client.get(url + "/oidc/hooli/callback?state=a&state=b")
        # Each callback is counted once its answer is out: poll briefly for the last ones.
        deadline = time.monotonic() + 5
        while True:
            text = httpx.get(f"http://127.0.0.1:{ops_port}/metrics", timeout=10).text
            if sum(_callback_counts(text).values()) >= 11 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    counts = _callback_counts(text)
    assert counts == {
        ("acme", "new", "new_redirect"): 5,
        ("globex", "legacy", "legacy_proxied"): 3,
        ("unknown", "legacy", "legacy_proxied"): 2,
        ("unknown", "rejected", "rejected"): 1,
    }
    assert "code" not in {
        label
        for f in text_string_to_metric_families(text)
        for s in f.samples
        for label in s.labels.values()
    }


def test_connection_labels_are_capped_with_an_other_bucket() -> None:
    labels = ConnectionLabels(limit=2)
    assert [labels(c) for c in ("a", "b", "c", "a", "d", None)] == [
        "a",
        "b",
        "other",
        "a",
        "other",
        "unknown",
    ]
