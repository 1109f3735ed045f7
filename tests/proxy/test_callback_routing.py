"""Signed SAML and OIDC callbacks over real HTTP: each lands where the map and flags say."""

from __future__ import annotations

import html
import re
import time
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
import yaml

from flags import RolloutState, write_rollout_state
from proxy.config import load_config
from proxy.demo.idp import DemoIdP
from proxy.demo.loopback_server import LoopbackServer
from proxy.ops import metrics
from tests.conftest import (
    LEGACY_SP_ENTITY_ID,
    PUBLIC_ACS,
    ProxyEnv,
    sha256,
    write_proxy_files,
)

FORM = {"content-type": "application/x-www-form-urlencoded"}


def saml_body(idp: DemoIdP, relay_state: str | None = "relay-123") -> bytes:
    return idp.mint_form_body(
        destination=PUBLIC_ACS,
        audience=LEGACY_SP_ENTITY_ID,
        name_id="alice@example.com",
        relay_state=relay_state,
    )


def post(env: ProxyEnv, path: str, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(env.url + path, content=body, headers={**FORM, **headers}, timeout=10)


def browser_follow(response: httpx.Response, body: bytes) -> httpx.Response:
    """What a browser does with a 307: the same method and the same body to Location."""
    assert response.status_code == 307
    return httpx.post(response.headers["location"], content=body, headers=FORM, timeout=10)


def test_unmigrated_connection_falls_through_byte_identical(
    proxy_env: ProxyEnv, idps: dict[str, DemoIdP]
) -> None:
    body = saml_body(idps["acme"])
    before_legacy, before_new = len(proxy_env.received("legacy")), len(proxy_env.received("new"))

    response = post(proxy_env, "/login/callback", body)

    assert response.status_code == 200
    verdict = response.json()
    assert verdict["landed"] == "legacy" and verdict["valid"], verdict
    assert verdict["connection"] == "acme"
    legacy = proxy_env.received("legacy")[before_legacy:]
    assert len(legacy) == 1, "a callback is forwarded exactly once"
    assert legacy[0]["body_sha256"] == sha256(body)
    assert legacy[0]["path"] == "/login/callback"
    assert len(proxy_env.received("new")) == before_new


def test_redirect_mode_sends_a_307_the_browser_replays_to_the_new_provider(
    proxy_env: ProxyEnv, idps: dict[str, DemoIdP]
) -> None:
    proxy_env.set_flags(overrides={"acme": "on"})
    body = saml_body(idps["acme"])

    response = post(proxy_env, "/login/callback?lang=de", body)

    assert response.status_code == 307
    assert response.headers["location"] == f"{proxy_env.new.url}/sso/acme/callback?lang=de"
    assert response.headers["cache-control"] == "no-store"
    landed = browser_follow(response, body)
    verdict = landed.json()
    assert verdict["landed"] == "new" and verdict["valid"], verdict
    assert proxy_env.received("new")[-1]["body_sha256"] == sha256(body)


def test_form_post_mode_renders_an_escaped_auto_submitting_form(
    proxy_env: ProxyEnv, idps: dict[str, DemoIdP]
) -> None:
    proxy_env.set_flags(overrides={"globex": "on"})
    relay = '"><script>alert(1)</script>'
    body = saml_body(idps["globex"], relay_state=relay)

    response = post(proxy_env, "/login/callback", body)

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert f"form-action {proxy_env.new.url}" in csp
    assert re.search(r"script-src 'sha256-[A-Za-z0-9+/=]+'", csp)
    page = response.text
    assert "<script>alert(1)</script>" not in page
    assert "<noscript>" in page and "<button" in page
    action = html.unescape(re.search(r'action="([^"]+)"', page).group(1))  # type: ignore[union-attr]
    fields = {
        html.unescape(name): html.unescape(value)
        for name, value in re.findall(r'name="([^"]*)" value="([^"]*)"', page)
    }
    assert fields["RelayState"] == relay
    assert fields == dict(parse_qsl(body.decode()))
    landed = httpx.post(action, data=fields, timeout=10).json()
    assert landed["landed"] == "new" and landed["valid"], landed


def test_proxy_mode_forwards_raw_bytes_server_side_and_returns_the_answer(
    proxy_env: ProxyEnv, idps: dict[str, DemoIdP]
) -> None:
    proxy_env.set_flags(overrides={"initech": "on"})
    body = saml_body(idps["initech"])
    before = len(proxy_env.received("new"))

    response = post(
        proxy_env,
        "/login/callback",
        body,
        cookie="legacy_sid=secret-cookie-value",
        authorization="Bearer secret-token",
    )

    verdict = response.json()
    assert verdict["landed"] == "new" and verdict["valid"], verdict
    assert "new_session=" in response.headers.get("set-cookie", "")
    received = proxy_env.received("new")[before:]
    assert len(received) == 1
    assert received[0]["body_sha256"] == sha256(body)
    sent = dict(received[0]["headers"])
    assert "cookie" not in sent and "authorization" not in sent
    assert sent["x-forwarded-for"] == "127.0.0.1"
    assert sent["x-forwarded-proto"] == "http"
    assert sent["host"] == proxy_env.new.url.removeprefix("http://")


def test_not_transparent_connection_stays_on_legacy_even_when_flagged_on(
    proxy_env: ProxyEnv, idps: dict[str, DemoIdP]
) -> None:
    proxy_env.set_flags(overrides={"umbrella": "on"}, stage_percent=100)
    verdict = post(proxy_env, "/login/callback", saml_body(idps["umbrella"])).json()
    assert verdict["landed"] == "legacy" and verdict["valid"]


def test_stage_100_moves_every_transparent_connection_and_kill_switch_moves_them_back(
    proxy_env: ProxyEnv, idps: dict[str, DemoIdP]
) -> None:
    proxy_env.set_flags(stage_percent=100)
    response = post(proxy_env, "/login/callback", saml_body(idps["acme"]))
    assert response.status_code == 307

    proxy_env.set_flags(kill_all=True)
    verdict = post(proxy_env, "/login/callback", saml_body(idps["acme"])).json()
    assert verdict["landed"] == "legacy" and verdict["valid"]

    proxy_env.set_flags(kill_all=False, overrides={"acme": "off"})
    verdict = post(proxy_env, "/login/callback", saml_body(idps["acme"])).json()
    assert verdict["landed"] == "legacy"


def test_bounce_back_parameter_sends_the_flow_to_legacy(
    proxy_env: ProxyEnv, idps: dict[str, DemoIdP]
) -> None:
    proxy_env.set_flags(overrides={"acme": "on"})
    body = saml_body(idps["acme"])
    first = post(proxy_env, "/login/callback", body)
    assert first.status_code == 307
    # The new provider can't take it and sends the browser back with the bounce parameter.
    verdict = post(proxy_env, "/login/callback?authswitch_fallback=legacy", body).json()
    assert verdict["landed"] == "legacy" and verdict["valid"], verdict
    assert proxy_env.received("legacy")[-1]["query_string"] == "authswitch_fallback=legacy"


def test_path_identification_must_agree_with_the_issuer(
    proxy_env: ProxyEnv, idps: dict[str, DemoIdP]
) -> None:
    proxy_env.set_flags(overrides={"acme": "on", "globex": "on"})
    ok = post(proxy_env, "/sso/acme/acs", saml_body(idps["acme"]))
    assert ok.status_code == 307
    # globex's IdP posting to acme's ACS path: the votes disagree, so legacy it is.
    mixed = post(proxy_env, "/sso/acme/acs", saml_body(idps["globex"]))
    assert mixed.json()["landed"] == "legacy"


def test_unknown_connection_goes_to_legacy_and_is_counted(
    proxy_env: ProxyEnv, idps: dict[str, DemoIdP]
) -> None:
    proxy_env.set_flags(stage_percent=100)
    stranger = DemoIdP("https://idp.stranger.example/metadata", idps["acme"].keys)
    counter = metrics.CALLBACKS.labels(
        "unknown", "legacy", "unknown_connection", "legacy_proxied", "2xx"
    )
    before = counter._value.get()

    response = post(proxy_env, "/login/callback", saml_body(stranger))

    assert response.json()["landed"] == "legacy"
    # The app counts once the answer is out, so the count may land just after the response.
    deadline = time.monotonic() + 2
    while counter._value.get() < before + 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert counter._value.get() == before + 1


def test_oidc_get_callback_routed_by_path_keeps_its_query(proxy_env: ProxyEnv) -> None:
    query = urlencode({"code": "oidc-code-123", "state": "oidc-state-456"})
    legacy = httpx.get(f"{proxy_env.url}/oidc/hooli/callback?{query}", timeout=10).json()
    assert legacy["landed"] == "legacy" and legacy["oidc"]
    assert legacy["code_sha256"] == sha256(b"oidc-code-123")

    proxy_env.set_flags(overrides={"hooli": "on"})
    response = httpx.get(f"{proxy_env.url}/oidc/hooli/callback?{query}", timeout=10)
    assert response.status_code == 302
    assert response.headers["location"] == f"{proxy_env.new.url}/sso/hooli/callback?{query}"


def test_oidc_form_post_callback_proxied_with_the_raw_body(proxy_env: ProxyEnv) -> None:
    proxy_env.set_flags(overrides={"piedpiper": "on"})
    body = urlencode({"code": "c0de", "state": "st4te"}).encode()
    response = post(proxy_env, "/oidc/piedpiper/callback", body)
    answer = response.json()
    assert answer["landed"] == "new" and answer["oidc"]
    assert answer["body_sha256"] == sha256(body)


def test_oidc_per_connection_callback_path(proxy_env: ProxyEnv) -> None:
    proxy_env.set_flags(overrides={"hooli": "on"})
    response = httpx.get(f"{proxy_env.url}/oidc-callback/hooli-prod?code=a&state=b", timeout=10)
    assert response.status_code == 302
    assert response.headers["location"].startswith(f"{proxy_env.new.url}/sso/hooli/callback")
    other = httpx.get(f"{proxy_env.url}/oidc-callback/nobody?code=a&state=b", timeout=10)
    assert other.json()["landed"] == "legacy"


@pytest.mark.parametrize("path", ["/login/callback", "/sso/acme/acs"])
def test_new_provider_down_in_proxy_mode_falls_back_to_legacy(
    tmp_path_factory: pytest.TempPathFactory,
    providers: dict,  # type: ignore[type-arg]
    idps: dict[str, DemoIdP],
    path: str,
) -> None:
    from proxy.app import AuthSwitch
    from proxy.config import load_config
    from proxy.demo.loopback_server import LoopbackServer
    from tests.conftest import write_proxy_files

    directory = tmp_path_factory.mktemp("down")
    closed = LoopbackServer(name="closed")  # a bound port nobody listens on
    closed.stop()
    config = load_config(write_proxy_files(directory, providers["legacy"].url, closed.url))
    app = AuthSwitch(config)
    with LoopbackServer(app, name="authswitch") as server:
        env = ProxyEnv(directory, server, app, providers["legacy"], providers["new"])
        env.set_flags(overrides={"initech": "on"})
        body = saml_body(idps["initech"])
        target = "/login/callback" if path == "/login/callback" else "/sso/initech/acs"
        verdict = post(env, target, body).json()
    assert verdict["landed"] == "legacy" and verdict["valid"]


def test_unsolicited_response_for_a_connection_without_idp_initiated_login_stays_on_legacy(
    tmp_path_factory: pytest.TempPathFactory,
    providers: dict[str, LoopbackServer],
    idps: dict[str, DemoIdP],
) -> None:
    from proxy.app import AuthSwitch

    directory = tmp_path_factory.mktemp("no-idp-initiated")
    path = write_proxy_files(directory, providers["legacy"].url, providers["new"].url)
    connections_file = directory / "connections.yaml"
    document = yaml.safe_load(connections_file.read_text())
    for connection in document["connections"]:
        if connection["id"] == "acme":
            connection["idp_initiated"] = False
    connections_file.write_text(yaml.safe_dump(document))
    write_rollout_state(directory / "flags.yaml", RolloutState(overrides={"acme": "on"}))
    counter = metrics.CALLBACKS.labels(
        "acme", "legacy", "idp_initiated_not_allowed", "legacy_proxied", "2xx"
    )
    before_count = counter._value.get()
    before_legacy = len(providers["legacy"].app.state.received)  # type: ignore[union-attr]
    unsolicited = saml_body(idps["acme"])
    solicited = idps["acme"].mint_form_body(
        destination=PUBLIC_ACS,
        audience=LEGACY_SP_ENTITY_ID,
        name_id="alice@example.com",
        in_response_to="_authn-request-1",
    )

    with LoopbackServer(AuthSwitch(load_config(path)), name="authswitch") as server:
        response = httpx.post(server.url + "/login/callback", content=unsolicited, headers=FORM)
        started_here = httpx.post(server.url + "/login/callback", content=solicited, headers=FORM)

    verdict = response.json()
    assert verdict["landed"] == "legacy" and verdict["valid"], verdict
    legacy = providers["legacy"].app.state.received[before_legacy:]  # type: ignore[union-attr]
    assert [seen["body_sha256"] for seen in legacy] == [sha256(unsolicited)]
    assert counter._value.get() == before_count + 1
    # The rule is about unsolicited responses only: a login the SP started moves as flagged.
    assert started_here.status_code == 307
