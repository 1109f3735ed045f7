"""Flag and map files change under a running proxy: new state without a restart, a broken
file never replaces a good one."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import yaml

from proxy.demo.idp import DemoIdP
from tests.conftest import LEGACY_SP_ENTITY_ID, PUBLIC_ACS, ProxyEnv

FORM = {"content-type": "application/x-www-form-urlencoded"}


def _status_for(env: ProxyEnv, idp: DemoIdP) -> int:
    body = idp.mint_form_body(
        destination=PUBLIC_ACS, audience=LEGACY_SP_ENTITY_ID, name_id="bob@example.com"
    )
    return httpx.post(
        env.url + "/login/callback", content=body, headers=FORM, timeout=10
    ).status_code


def _eventually(check: Callable[[], bool], deadline: float = 3.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        if check():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"not true within {deadline} s")


def test_flag_file_edit_takes_effect_without_restart(
    proxy_env: ProxyEnv, idps: dict[str, DemoIdP]
) -> None:
    assert _status_for(proxy_env, idps["acme"]) == 200  # legacy answers
    flags = proxy_env.dir / "flags.yaml"
    flags.write_text("version: 2\noverrides:\n  acme: on\n")
    _eventually(lambda: _status_for(proxy_env, idps["acme"]) == 307)


def test_broken_flag_file_keeps_the_last_good_state(
    proxy_env: ProxyEnv, idps: dict[str, DemoIdP]
) -> None:
    proxy_env.set_flags(overrides={"acme": "on"})
    assert _status_for(proxy_env, idps["acme"]) == 307
    (proxy_env.dir / "flags.yaml").write_text("stage_percent: 250\noverrides: [oops\n")
    provider = proxy_env.app.flag_provider
    _eventually(lambda: provider.last_error is not None)  # type: ignore[attr-defined]
    assert _status_for(proxy_env, idps["acme"]) == 307
    ready = httpx.get(proxy_env.ops_url + "/readyz", timeout=5)
    assert ready.status_code == 200


def test_connection_map_edit_takes_effect_and_a_bad_map_is_refused(
    proxy_env: ProxyEnv, idps: dict[str, DemoIdP]
) -> None:
    proxy_env.set_flags(overrides={"acme": "on"})
    assert _status_for(proxy_env, idps["acme"]) == 307
    path = proxy_env.dir / "connections.yaml"
    document = yaml.safe_load(path.read_text())
    for entry in document["connections"]:
        if entry["id"] == "acme":
            entry["assessment"] = "blocked"
    document["version"] = 2
    path.write_text(yaml.safe_dump(document))
    _eventually(lambda: _status_for(proxy_env, idps["acme"]) == 200)

    path.write_text("connections: [{id: acme}]\n")  # no protocol: invalid
    _eventually(lambda: proxy_env.app.connection_map.last_error is not None)
    assert proxy_env.app.connection_map.current.version == 2
    assert _status_for(proxy_env, idps["acme"]) == 200
