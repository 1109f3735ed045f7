"""The legacy OAuth 2.0 token endpoint as verifier (password grant): a token verifies,
invalid_grant denies, anything else fails closed within the door's budget."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

import pytest

from proxy.broker.credential import Credential, Password
from proxy.broker.oauth2_password import OAuth2PasswordVerifier
from proxy.broker.verifier import LegacyUnavailable, Profile
from proxy.config import ConfigError
from proxy.demo.loopback_server import LoopbackServer
from tests.conftest import answer_lifespan, free_port, request_body
from tests.proxy.broker.broker_support import ALICE, UNKNOWN, WRONG, okta_answer, serve
from tests.proxy.broker.conftest import StartBroker
from tests.proxy.broker.test_legacy_http_login import _counter

CLIENT_ID = "legacy-app:web"  # a colon: form-urlencoded before HTTP Basic (RFC 6749 2.3.1)
CLIENT_SECRET = "SEEKRIT-client-secret/+="


@dataclass
class TokenEndpoint:
    """A legacy token endpoint: the password grant for one confidential client."""

    users: dict[str, str]
    delay_seconds: float = 0.0
    status_override: int | None = None
    received: list[dict[str, str]] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        body = await request_body(receive)
        form = dict(parse_qsl(body.decode()))
        headers = dict(scope["headers"])
        if b"authorization" in headers:
            user, _, secret = (
                base64.b64decode(headers[b"authorization"][6:]).decode().partition(":")
            )
            form["basic_client_id"], form["basic_client_secret"] = unquote(user), unquote(secret)
        self.received.append(form)
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        client_ok = (
            form.get("basic_client_id", form.get("client_id")) == CLIENT_ID
            and form.get("basic_client_secret", form.get("client_secret")) == CLIENT_SECRET
        )
        if self.status_override:
            status, answer = self.status_override, b"<html>oops</html>"
        elif not client_ok:
            status, answer = 401, b'{"error": "invalid_client"}'
        elif self.users.get(form.get("username", "")) == form.get("password"):
            status, answer = 200, b'{"access_token": "at-1", "token_type": "Bearer"}'
        else:
            status, answer = 400, b'{"error": "invalid_grant", "error_description": "bad"}'
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": answer})


@pytest.fixture
def token_endpoint() -> Iterator[tuple[TokenEndpoint, LoopbackServer]]:
    app = TokenEndpoint(users={ALICE[0]: ALICE[1]})
    server = serve(app, "legacy-token")
    yield app, server
    server.stop()


def _verifier(directory: Path, url: str, **extra: object) -> dict[str, object]:
    (directory / "client-secret").write_text(CLIENT_SECRET + "\n")
    return {
        "type": "oauth2_password",
        "token_url": url,
        "client_id": CLIENT_ID,
        "client_secret_file": "client-secret",
        "scope": "openid email",
        **extra,
    }


@pytest.mark.parametrize("client_auth", ["client_secret_basic", "client_secret_post"])
def test_a_token_verifies_and_invalid_grant_denies_unknown_and_wrong_alike(
    start_broker: StartBroker,
    token_endpoint: tuple[TokenEndpoint, LoopbackServer],
    tmp_path: Path,
    client_auth: str,
) -> None:
    app, server = token_endpoint
    env = start_broker(_verifier(tmp_path, f"{server.url}/token", client_auth=client_auth))

    right = env.call("auth0", *ALICE)
    wrong = env.call("auth0", ALICE[0], WRONG)
    unknown = env.call("auth0", UNKNOWN, WRONG)

    assert (right.status_code, right.json()["email"]) == (200, ALICE[0])
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.content == unknown.content
    sent = app.received[0]
    assert sent["grant_type"] == "password"
    assert (sent["username"], sent["password"], sent["scope"]) == (*ALICE, "openid email")
    if client_auth == "client_secret_basic":
        assert (sent["basic_client_id"], sent["basic_client_secret"]) == (CLIENT_ID, CLIENT_SECRET)
        assert "client_secret" not in sent
    else:
        assert (sent["client_id"], sent["client_secret"]) == (CLIENT_ID, CLIENT_SECRET)
    assert [u["userName"] for u in env.scim.users()] == [ALICE[0]]
    assert env.scim.stored_password(ALICE[0]) == ALICE[1]


def test_a_slow_token_endpoint_is_denied_within_the_doors_budget(
    start_broker: StartBroker, token_endpoint: tuple[TokenEndpoint, LoopbackServer], tmp_path: Path
) -> None:
    app, server = token_endpoint
    app.delay_seconds = 2.0
    env = start_broker(
        _verifier(tmp_path, f"{server.url}/token", timeout_seconds=10),
        budget_seconds={"okta": 0.5},
    )

    started = time.monotonic()
    answer = env.call("okta", *ALICE)
    took = time.monotonic() - started

    assert (answer.status_code, answer.json()) == (200, okta_answer(False))
    assert took < 0.5 + 0.4
    assert env.scim.users() == []


@pytest.mark.parametrize("failure", ["status_503", "connection_refused", "wrong_client_secret"])
def test_a_failing_token_endpoint_is_a_legacy_error_never_verified(
    start_broker: StartBroker,
    token_endpoint: tuple[TokenEndpoint, LoopbackServer],
    tmp_path: Path,
    failure: str,
) -> None:
    app, server = token_endpoint
    url = f"{server.url}/token"
    verifier = _verifier(tmp_path, url)
    if failure == "status_503":
        app.status_override = 503
    elif failure == "connection_refused":
        verifier["token_url"] = f"http://127.0.0.1:{free_port()}/token"
    else:  # invalid_client: the configuration is wrong, not the user's password
        (tmp_path / "client-secret").write_text("SEEKRIT-not-the-client-secret\n")
    env = start_broker(verifier)
    before = _counter(env.ops_url, "authswitch_broker_hook_calls_total", 'door="cognito"')

    answer = env.call("cognito", *ALICE)

    assert answer.status_code == 401
    assert env.scim.users() == []
    after = _counter(env.ops_url, "authswitch_broker_hook_calls_total", 'door="cognito"')
    changed = {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}
    assert changed == {"legacy_error": 1.0}


@pytest.mark.parametrize("failure", ["timeout", "invalid_client", "status_500"])
def test_the_verifiers_errors_name_no_credential(
    token_endpoint: tuple[TokenEndpoint, LoopbackServer], failure: str
) -> None:
    app, server = token_endpoint
    secret = CLIENT_SECRET if failure != "invalid_client" else "SEEKRIT-wrong-client"
    if failure == "timeout":
        app.delay_seconds = 1.0
    elif failure == "status_500":
        app.status_override = 500

    async def verify() -> Profile | None:
        verifier = OAuth2PasswordVerifier(
            f"{server.url}/token",
            client_id=CLIENT_ID,
            client_secret=secret,
            client_auth="client_secret_basic",
            scope=None,
            timeout_seconds=0.3,
        )
        await verifier.start()
        try:
            return await verifier.verify(Credential(ALICE[0], Password(ALICE[1])))
        finally:
            await verifier.close()

    with pytest.raises(LegacyUnavailable) as failed:
        asyncio.run(verify())

    message = str(failed.value)
    for secret_value in (ALICE[1], secret, ALICE[0], "SEEKRIT"):
        assert secret_value not in message
    assert failed.value.__suppress_context__ or failed.value.__context__ is None
    expected = {
        "timeout": "unreachable or too slow",
        "invalid_client": "401 with error invalid_client",
        "status_500": "answered 500",
    }
    assert expected[failure] in message


def test_the_client_secret_is_read_from_its_file_and_a_missing_one_names_the_key(
    tmp_path: Path, start_broker: StartBroker
) -> None:
    verifier = _verifier(tmp_path, "http://127.0.0.1:9/token")
    (tmp_path / "client-secret").unlink()

    with pytest.raises(ConfigError, match=r"broker\.verifier\.client_secret_file .*cannot read"):
        start_broker(verifier)
