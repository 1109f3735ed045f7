"""`authswitch serve` mounts the console on the ops listener, and only there."""

from __future__ import annotations

from pathlib import Path

import httpx
import yaml

from proxy.demo.loopback_server import LoopbackServer
from tests.conftest import free_port
from tests.proxy.console.console_env import OPERATOR, trusted_header_console, write_console_files
from tests.proxy.test_serve_command import serving


def test_serve_answers_the_console_on_the_ops_port_and_never_on_the_public_one(
    tmp_path: Path, providers: dict[str, LoopbackServer]
) -> None:
    port, ops_port = free_port(), free_port()
    config = write_console_files(
        tmp_path, providers["legacy"].url, providers["new"].url, trusted_header_console()
    )
    settings = yaml.safe_load(config.read_text())
    settings["ops"] = {"port": ops_port}
    settings["listen"] = {"host": "127.0.0.1", "port": port}
    config.write_text(yaml.safe_dump(settings))
    log = tmp_path / "serve.log"
    person = {"x-forwarded-email": OPERATOR, "x-forwarded-user": "sre"}
    with serving(config, log, f"http://127.0.0.1:{ops_port}"):
        page = httpx.get(
            f"http://127.0.0.1:{ops_port}/console/connections", headers=person, timeout=10
        )
        public = httpx.get(f"http://127.0.0.1:{port}/console/connections", headers=person)
    assert page.status_code == 200, log.read_text()
    assert "acme" in page.text and "default-src 'self'" in page.headers["content-security-policy"]
    # The public listener is the legacy host's: legacy answered, not the console.
    assert "acme" not in public.text
    assert "content-security-policy" not in public.headers
