"""The version an operator sees: ``authswitch --version``, the build_info metric, /readyz."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import yaml

from proxy.app import AuthSwitch
from proxy.config import load_config
from proxy.ops import metrics

INSTALLED = version("authswitch")


def test_the_cli_prints_the_installed_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "proxy", "--version"], capture_output=True, text=True, timeout=60
    )

    assert (done.returncode, done.stdout) == (0, f"authswitch {INSTALLED}\n")


def test_the_build_info_metric_carries_the_version() -> None:
    body, _ = metrics.exposition()

    lines = [
        line for line in body.decode().splitlines() if line.startswith("authswitch_build_info")
    ]
    assert len(lines) == 1
    assert f'version="{INSTALLED}"' in lines[0]
    assert lines[0].endswith(" 1.0")


def test_readyz_names_the_version(tmp_path: Path) -> None:
    examples = Path(__file__).resolve().parents[2] / "examples"
    (tmp_path / "flags.yaml").write_text(yaml.safe_dump({"version": 1}))
    config = {
        "legacy": {"url": "http://127.0.0.1:1"},
        "connection_map": str(examples / "connections.yaml"),
        "flags": {"file": "flags.yaml"},
        "routes": [{"path": "/acs", "protocol": "saml", "identify": ["saml_issuer"]}],
    }
    path = tmp_path / "authswitch.yaml"
    path.write_text(yaml.safe_dump(config))
    app = AuthSwitch(load_config(path))
    app.flag_provider.initialize(None)  # type: ignore[arg-type]
    try:
        _, report = app.readiness()
    finally:
        app.flag_provider.shutdown()

    assert report["version"] == INSTALLED
