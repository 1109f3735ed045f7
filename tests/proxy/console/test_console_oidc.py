"""OpenID Connect sign-in against a real OP on loopback: code + PKCE, state and nonce checked,
the ID token verified; roles from the token's groups; nothing of the flow in logs or audit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from flags import FileRolloutStore
from proxy.demo.loopback_server import LoopbackServer
from tests.proxy.console.console_env import (
    Browserless,
    ConsoleEnv,
    hidden,
    oidc_console,
    running_console,
)
from tests.proxy.console.oidc_provider import OidcProvider


@pytest.fixture
def env(
    tmp_path: Path, providers: dict[str, LoopbackServer], op: OidcProvider
) -> Iterator[ConsoleEnv]:
    with running_console(tmp_path, providers, oidc_console(op)) as running:
        yield running


def sign_in(env: ConsoleEnv, op: OidcProvider, client: Browserless) -> str:
    """Follow the redirects a browser would; the console's answer after sign-in."""
    first = client.get("/console/connections")
    assert first.status_code == 303 and first.headers["location"].startswith("/console/sign-in")
    start = client.get(first.headers["location"])
    assert start.status_code == 302
    at_op = Browserless(op.issuer).get(start.headers["location"].removeprefix(op.issuer))
    assert at_op.status_code == 302, at_op.text
    back = urlsplit(at_op.headers["location"])
    assert back.netloc == urlsplit(env.url).netloc
    done = client.get(f"{back.path}?{back.query}")
    assert done.status_code == 303, done.text
    return client.get(done.headers["location"]).text


def test_sign_in_with_pkce_state_and_nonce_then_act_as_the_person(
    env: ConsoleEnv, op: OidcProvider, captured_logs: pytest.LogCaptureFixture
) -> None:
    op.user = {"email": "lead@example.com", "groups": ["sre-operators"], "sub": "u-17"}
    client = Browserless(env.url)
    page = sign_in(env, op, client)
    assert "Signed in as <strong>lead@example.com</strong> (operator)" in page
    sent = op.authorize_requests[-1]
    assert sent["code_challenge_method"] == "S256" and sent["nonce"] and sent["state"]
    assert "openid" in sent["scope"].split()
    assert op.token_requests[-1]["code_verifier"]

    preview = client.get("/console/actions/preview?action=disable&connection=acme")
    applied = client.post(
        "/console/actions/apply",
        data={
            "csrf_token": hidden(preview.text, "csrf_token"),
            "action": "disable",
            "connection": "acme",
            "percent": "",
            "token": hidden(preview.text, "token"),
            "reason": "sign-in test",
            "confirm": "yes",
        },
    )
    assert applied.status_code == 200, applied.text
    record = FileRolloutStore(env.dir / "flags.yaml").history(1)[0]
    assert record.actor == "lead@example.com"

    secrets = [*op.issued_codes, *op.issued_tokens, sent["state"], sent["nonce"]]
    secrets.append(op.token_requests[-1]["code_verifier"])
    secrets.append(client.cookie or "")
    # What the console and authlib log. Left out: the test's own HTTP client, which logs the
    # URLs it calls, and the test server's access log, which `serve` disables (json_logging).
    logged = "\n".join(
        r.getMessage() + str(r.__dict__)
        for r in captured_logs.records
        if not r.name.startswith(("httpx", "httpcore", "uvicorn.access"))
    )
    assert any(r.name == "authswitch.console" for r in captured_logs.records)
    trail = record.model_dump_json()
    for secret in secrets:
        assert secret and secret not in logged and secret not in trail


def test_a_replayed_or_forged_callback_is_refused(env: ConsoleEnv, op: OidcProvider) -> None:
    op.user = {"email": "ops@example.com"}
    client = Browserless(env.url)
    start = client.get("/console/sign-in")
    at_op = Browserless(op.issuer).get(start.headers["location"].removeprefix(op.issuer))
    query = parse_qs(urlsplit(at_op.headers["location"]).query)
    forged_state = client.get(f"/console/auth/callback?code={query['code'][0]}&state=forged")
    assert forged_state.status_code == 401
    assert query["code"][0] not in forged_state.text
    # another browser (no session holding the state) can't use the code either
    stranger = Browserless(env.url)
    answer = stranger.get(
        f"/console/auth/callback?code={query['code'][0]}&state={query['state'][0]}"
    )
    assert answer.status_code == 401
    assert stranger.get("/console/connections").status_code == 303


def test_an_id_token_with_the_wrong_nonce_does_not_sign_in(
    env: ConsoleEnv, op: OidcProvider
) -> None:
    op.user = {"email": "ops@example.com"}
    op.wrong_nonce = True
    client = Browserless(env.url)
    start = client.get("/console/sign-in")
    at_op = Browserless(op.issuer).get(start.headers["location"].removeprefix(op.issuer))
    back = urlsplit(at_op.headers["location"])
    answer = client.get(f"{back.path}?{back.query}")
    assert answer.status_code == 401
    assert client.get("/console/connections").status_code == 303


def test_a_person_without_a_role_gets_nothing(env: ConsoleEnv, op: OidcProvider) -> None:
    op.user = {"email": "intern@example.com", "groups": ["interns"]}
    client = Browserless(env.url)
    first = client.get("/console/sign-in")
    at_op = Browserless(op.issuer).get(first.headers["location"].removeprefix(op.issuer))
    back = urlsplit(at_op.headers["location"])
    client.get(f"{back.path}?{back.query}")
    answer = client.get("/console/connections")
    assert answer.status_code == 403
    assert "acme" not in answer.text


def test_the_session_expires(
    tmp_path: Path, providers: dict[str, LoopbackServer], op: OidcProvider
) -> None:
    from proxy.config import load_config
    from proxy.console.app import build_console_app
    from tests.proxy.console.console_env import write_console_files

    now = [1_000_000.0]
    settings = {**oidc_console(op), "session_max_age_seconds": 600}
    config = load_config(
        write_console_files(tmp_path, providers["legacy"].url, providers["new"].url, settings)
    )
    with LoopbackServer(build_console_app(config, clock=lambda: now[0]), name="console") as server:
        op.user = {"email": "ops@example.com"}
        env = ConsoleEnv(config, tmp_path, server, server, None)  # type: ignore[arg-type]
        client = Browserless(server.url)
        assert "Signed in as" in sign_in(env, op, client)
        now[0] += 601
        assert client.get("/console/connections").status_code == 303


def test_sign_out_ends_the_session(env: ConsoleEnv, op: OidcProvider) -> None:
    op.user = {"email": "ops@example.com"}
    client = Browserless(env.url)
    page = sign_in(env, op, client)
    out = client.post("/console/sign-out", data={"csrf_token": hidden(page, "csrf_token")})
    assert out.status_code == 200 and "signed out" in out.text
    assert client.get("/console/connections").status_code == 303
