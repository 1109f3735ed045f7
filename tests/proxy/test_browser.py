"""A real browser (headless Chromium) signs in through authswitch: the IdP's auto-posting page,
then authswitch's 307 or its own auto-posting form (script allowed only by its CSP hash), then
the new provider, which validates the signed SAML Response.

Chromium is a system package: CI installs it (.ci/run) and this test fails there without it;
on a developer machine without Chromium it is reported as skipped, with how to install it.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from proxy.demo.runner import Demo, Step

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is required in CI (apt-get install chromium)")
        pytest.skip("Chromium not installed here (apt-get install chromium); CI runs this test")
    with Demo(tmp_path_factory.mktemp("browser")) as running:
        running.apply(Step("everyone on the new provider", {"stage_percent": 100}))
        yield running


def _browser_login(demo: Demo, connection: str, directory: Path) -> dict[str, object]:
    body = demo.idps[connection].mint_form_body(
        destination=demo.acs_url,
        audience=demo.sp_entity_id,
        name_id=f"browser@{connection}.example",
        relay_state='/after?x=<1>&y="2"',
    )
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in parse_qsl(body.decode())
    )
    page = directory / f"idp-{connection}.html"
    page.write_text(
        f'<html><body><form id="f" method="post" action="{demo.acs_url}">{inputs}</form>'
        '<script>document.getElementById("f").submit()</script></body></html>'
    )
    result = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={directory / ('profile-' + connection)}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    found = re.search(r"<pre[^>]*>(\{.*?\})</pre>", result.stdout, re.S)
    assert found, f"the browser did not end at a provider's answer:\n{result.stdout[:2000]}"
    answer: dict[str, object] = json.loads(html.unescape(found.group(1)))
    return answer


@pytest.mark.parametrize("connection", ["globex", "acme"], ids=["form_post", "redirect_307"])
def test_a_browser_lands_at_the_new_provider_and_the_login_validates(
    demo: Demo, connection: str, tmp_path: Path
) -> None:
    answer = _browser_login(demo, connection, tmp_path)
    assert answer["landed"] == "new"
    assert answer["valid"] is True, answer
    assert answer["connection"] == connection
