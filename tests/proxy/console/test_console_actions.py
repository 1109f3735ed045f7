"""The console over real HTTP, signed in by trusted headers from the auth proxy's address:
the connections table, a kill previewed and confirmed that the running proxy obeys on the next
callback, roles, CSRF, stale previews, headers and cookie flags, the audit trail and its export."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flags import FileRolloutStore, RolloutState
from proxy.demo.idp import DemoIdP
from proxy.demo.loopback_server import LoopbackServer
from tests.conftest import LEGACY_SP_ENTITY_ID, PUBLIC_ACS
from tests.proxy.console.console_env import (
    OPERATOR,
    VIEWER,
    Browserless,
    ConsoleEnv,
    hidden,
    running_console,
    trusted_header_console,
)

FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
def env(tmp_path: Path, providers: dict[str, LoopbackServer]) -> Iterator[ConsoleEnv]:
    with running_console(tmp_path, providers, trusted_header_console()) as running:
        yield running


def as_person(env: ConsoleEnv, email: str, groups: str = "") -> Browserless:
    headers = {"x-forwarded-email": email, "x-forwarded-user": email.split("@")[0]}
    if groups:
        headers["x-forwarded-groups"] = groups
    return Browserless(env.url, headers)


def stored(env: ConsoleEnv) -> RolloutState:
    return FileRolloutStore(env.dir / "flags.yaml").read()


def callback_lands(env: ConsoleEnv, idp: DemoIdP) -> str:
    body = idp.mint_form_body(
        destination=PUBLIC_ACS, audience=LEGACY_SP_ENTITY_ID, name_id="alice@example.com"
    )
    answer = httpx.post(env.proxy.url + "/login/callback", content=body, headers=FORM, timeout=10)
    if answer.status_code == 307:
        answer = httpx.post(answer.headers["location"], content=body, headers=FORM, timeout=10)
    assert answer.status_code == 200, answer.text[:300]
    landed: str = answer.json()["landed"]
    return landed


def preview_and_apply(
    client: Browserless, query: str, reason: str = "incident 42"
) -> httpx.Response:
    page = client.get(f"/console/actions/preview?{query}")
    assert page.status_code == 200, page.text
    return client.post(
        "/console/actions/apply",
        data={
            "csrf_token": hidden(page.text, "csrf_token"),
            "action": hidden(page.text, "action"),
            "connection": hidden(page.text, "connection"),
            "percent": hidden(page.text, "percent"),
            "token": hidden(page.text, "token"),
            "reason": reason,
            "confirm": "yes",
        },
    )


def wait_for_route(env: ConsoleEnv, idp: DemoIdP, expected: str) -> str:
    """The proxy reads the flag file every 0.1 s: the next callbacks after that land here."""
    import time

    deadline = time.monotonic() + 5
    landed = callback_lands(env, idp)
    while landed != expected and time.monotonic() < deadline:
        time.sleep(0.1)
        landed = callback_lands(env, idp)
    return landed


def test_the_table_shows_every_connection_with_its_route_triage_and_honest_no_data(
    env: ConsoleEnv,
) -> None:
    client = as_person(env, VIEWER)
    page = client.get("/console/connections")
    assert page.status_code == 200
    rows = re.findall(
        r'<tr data-route="(\w+)"><th scope="row"><a href="[^"]+">(\w+)</a>', page.text
    )
    assert sorted(cid for _, cid in rows) == sorted(
        ["acme", "globex", "hooli", "initech", "piedpiper", "umbrella"]
    )
    assert {route for route, _ in rows} == {"legacy"}  # stage 0, nothing enabled
    assert "outside the stage" in page.text
    assert "needs_idp_change" in page.text  # umbrella's triage class
    assert "no data" in page.text and "outcomes are not kept here" in page.text
    assert "Kill" not in page.text, "a viewer is offered no action"

    filtered = client.get("/console/connections?protocol=oidc&sort=id&dir=desc")
    ids = re.findall(r'<th scope="row"><a href="[^"]+">(\w+)</a>', filtered.text)
    assert ids == ["piedpiper", "hooli"]
    searched = client.get("/console/connections?q=Globex")
    assert re.findall(r'<th scope="row"><a href="[^"]+">(\w+)</a>', searched.text) == ["globex"]

    api = client.get("/console/api/connections").json()
    acme = next(c for c in api["connections"] if c["id"] == "acme")
    assert acme["route"] == "legacy" and acme["reason"] == "stage_out"
    assert acme["legacy"] is None and api["outcomes_missing"]


def test_an_operator_enables_then_kills_a_connection_and_the_running_proxy_follows(
    env: ConsoleEnv, idps: dict[str, DemoIdP]
) -> None:
    operator = as_person(env, OPERATOR)
    assert callback_lands(env, idps["acme"]) == "legacy"

    preview = operator.get("/console/actions/preview?action=enable&connection=acme")
    assert "Would move to the new provider (1): <strong>acme</strong>" in preview.text
    assert "I confirm: this moves acme" in preview.text
    applied = preview_and_apply(operator, "action=enable&connection=acme", "canary for acme")
    assert applied.status_code == 200, applied.text
    assert "Moved to the new provider: acme" in applied.text
    assert wait_for_route(env, idps["acme"], "new") == "new"

    killed = preview_and_apply(operator, "action=disable&connection=acme", "login errors")
    assert killed.status_code == 200, killed.text
    assert "Moved to legacy: acme" in killed.text
    assert wait_for_route(env, idps["acme"], "legacy") == "legacy"

    state = stored(env)
    assert state.overrides == {"acme": "off"}
    history = FileRolloutStore(env.dir / "flags.yaml").history(10)
    assert [(r.action, r.actor, r.reason) for r in history[:2]] == [
        ("disable", OPERATOR, "login errors"),
        ("enable", OPERATOR, "canary for acme"),
    ]


def test_a_viewer_cannot_preview_or_apply(env: ConsoleEnv) -> None:
    viewer = as_person(env, VIEWER)
    page = viewer.get("/console/connections")
    assert viewer.get("/console/actions/preview?action=disable&connection=acme").status_code == 403
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    answer = viewer.post(
        "/console/actions/apply",
        data={
            "csrf_token": token.group(1),
            "action": "kill_all",
            "token": f"{stored(env).version}-0000000000000000",
            "reason": "x",
            "confirm": "yes",
        },
    )
    assert answer.status_code == 403
    assert stored(env).kill_all is False


def test_unknown_people_get_nothing_and_groups_give_roles(env: ConsoleEnv) -> None:
    stranger = as_person(env, "someone@example.com", "engineering")
    answer = stranger.get("/console/connections")
    assert answer.status_code == 403
    assert "acme" not in answer.text
    grouped = as_person(env, "lead@example.com", "engineering, sre-operators")
    assert "Global kill switch" in grouped.get("/console/connections").text


def test_a_forged_post_without_the_csrf_token_is_refused(env: ConsoleEnv) -> None:
    operator = as_person(env, OPERATOR)
    page = operator.get("/console/actions/preview?action=kill_all")
    fields = {
        "action": "kill_all",
        "token": hidden(page.text, "token"),
        "reason": "forged",
        "confirm": "yes",
    }
    assert operator.post("/console/actions/apply", data=fields).status_code == 403
    wrong = {**fields, "csrf_token": "not-the-token"}
    assert operator.post("/console/actions/apply", data=wrong).status_code == 403
    # another browser (no session cookie) with the right token is refused as well
    other = as_person(env, OPERATOR)
    with_token = {**fields, "csrf_token": hidden(page.text, "csrf_token")}
    assert other.post("/console/actions/apply", data=with_token).status_code == 403
    assert stored(env).kill_all is False
    assert FileRolloutStore(env.dir / "flags.yaml").history(5) == []


def test_a_stale_preview_is_refused_and_nothing_is_written(env: ConsoleEnv) -> None:
    operator = as_person(env, OPERATOR)
    page = operator.get("/console/actions/preview?action=stage&percent=100")
    assert "Would move to the new provider (5)" in page.text  # umbrella is held
    assert "Kept on legacy by their assessment: umbrella" in page.text
    # someone else changes the state in between
    assert preview_and_apply(operator, "action=canary_add&connection=globex").status_code == 200
    version = stored(env).version
    answer = operator.post(
        "/console/actions/apply",
        data={
            "csrf_token": hidden(page.text, "csrf_token"),
            "action": "stage",
            "percent": "100",
            "token": hidden(page.text, "token"),
            "reason": "go",
            "confirm": "yes",
        },
    )
    assert answer.status_code == 409
    assert "the state changed since the preview" in answer.text
    assert stored(env).version == version and stored(env).stage_percent == 0


def test_stage_preview_token_is_the_cli_token(env: ConsoleEnv) -> None:
    from typer.testing import CliRunner

    from proxy.cli.main import app

    page = as_person(env, OPERATOR).get("/console/actions/preview?action=stage&percent=25")
    result = CliRunner().invoke(
        app,
        [
            "flags",
            "stage",
            "25",
            "--preview",
            "--json",
            "--config",
            str(env.dir / "authswitch.yaml"),
        ],
    )
    assert json.loads(result.output)["token"] == hidden(page.text, "token")


def test_apply_needs_the_confirmation_and_a_reason(env: ConsoleEnv) -> None:
    operator = as_person(env, OPERATOR)
    page = operator.get("/console/actions/preview?action=kill_all")
    base = {
        "csrf_token": hidden(page.text, "csrf_token"),
        "action": "kill_all",
        "token": hidden(page.text, "token"),
    }
    assert operator.post("/console/actions/apply", data={**base, "reason": "x"}).status_code == 400
    no_reason = operator.post(
        "/console/actions/apply", data={**base, "reason": " ", "confirm": "yes"}
    )
    assert no_reason.status_code == 400 and "reason must not be empty" in no_reason.text
    assert stored(env).kill_all is False


def test_moving_a_connection_that_cannot_move_is_refused(env: ConsoleEnv) -> None:
    operator = as_person(env, OPERATOR)
    held = operator.get("/console/actions/preview?action=enable&connection=umbrella")
    assert held.status_code == 409 and "stays on legacy" in held.text
    assert operator.get("/console/actions/preview?action=enable&connection=nope").status_code == 404
    assert operator.get("/console/actions/preview?action=drop_tables").status_code == 400
    bad_stage = operator.get("/console/actions/preview?action=stage&percent=250")
    assert bad_stage.status_code == 400


def test_headers_are_honoured_only_from_the_configured_proxy(
    tmp_path: Path, providers: dict[str, LoopbackServer]
) -> None:
    settings = trusted_header_console(trusted_header={"proxies": ["10.1.0.0/16"]})
    with running_console(tmp_path, providers, settings) as env:
        answer = as_person(env, OPERATOR).get("/console/connections")
        assert answer.status_code == 403
        assert "only through the configured auth proxy" in answer.text
        assert "acme" not in answer.text


def test_no_user_header_is_not_signed_in(env: ConsoleEnv) -> None:
    assert Browserless(env.url).get("/console/connections").status_code == 401
    unnameable = as_person(env, "o" * 200 + "@example.com")  # too long for the audit trail
    answer = unnameable.get("/console/connections")
    assert answer.status_code == 403 and "be used as an actor" in answer.text


def test_security_headers_and_cookie_flags(env: ConsoleEnv) -> None:
    client = as_person(env, OPERATOR)
    for path in ("/console/connections", "/console/connections/nope", "/console/audit"):
        answer = client.get(path)
        csp = answer.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["cache-control"] == "no-store"
        assert "<script>" not in answer.text and " style=" not in answer.text
    assert (
        re.search(
            r"https?://(?!login\.legacy\.example|idp\.)", client.get("/console/connections").text
        )
        is None
    )
    cookie = next(c for c in client.set_cookies if c.startswith("authswitch_console="))
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "secure", "samesite", "max-age", "path"} <= flags
    assert "samesite=lax" in cookie.lower()
    static = client.get("/console/static/console.css")
    assert static.status_code == 200 and "text/css" in static.headers["content-type"]


def test_detail_explains_the_route_and_lists_its_flag_history(env: ConsoleEnv) -> None:
    operator = as_person(env, OPERATOR)
    assert (
        preview_and_apply(operator, "action=canary_add&connection=acme", "canary").status_code
        == 200
    )
    page = operator.get("/console/connections/acme").text
    assert "Identified as acme by its saml_issuer strategy." in page
    assert "The flag says new (canary" in page and "goes to the new provider at" in page
    assert "canary_add" in page and OPERATOR in page
    held = operator.get("/console/connections/umbrella").text
    assert "the map keeps it on legacy" in held or "it goes to legacy" in held
    assert operator.get("/console/connections/nope").status_code == 404
    hooli = operator.get("/console/connections/hooli").text
    assert "Identified as hooli by its callback_path strategy." in hooli
    piedpiper = operator.get("/console/connections/piedpiper").text
    assert "Identified as piedpiper by its path strategy." in piedpiper
    assert "The flag says legacy (stage_out" in piedpiper


def test_audit_page_filters_and_exports_jsonl(env: ConsoleEnv) -> None:
    operator = as_person(env, OPERATOR)
    preview_and_apply(operator, "action=canary_add&connection=acme", "reason-one")
    preview_and_apply(operator, "action=disable&connection=globex", "reason-two")
    page = operator.get("/console/audit?connection=globex").text
    assert "reason-two" in page and "reason-one" not in page
    export = operator.get("/console/api/audit.jsonl?actor=ops")
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert [line["action"] for line in lines] == ["disable", "canary_add"]
    assert all(line["actor"] == OPERATOR for line in lines)
    assert "attachment" in export.headers["content-disposition"]


def test_global_kill_switch_from_the_console(env: ConsoleEnv, idps: dict[str, DemoIdP]) -> None:
    operator = as_person(env, OPERATOR)
    assert preview_and_apply(operator, "action=stage&percent=100", "all in").status_code == 200
    assert wait_for_route(env, idps["acme"], "new") == "new"
    killed = preview_and_apply(operator, "action=kill_all", "outage")
    assert killed.status_code == 200
    assert "Moved to legacy: acme, globex, hooli, initech, piedpiper" in killed.text
    assert wait_for_route(env, idps["acme"], "legacy") == "legacy"
