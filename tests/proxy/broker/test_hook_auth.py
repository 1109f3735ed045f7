"""Hook authentication: a shared secret header, or an HMAC-SHA256 of the body."""

from __future__ import annotations

import json

import httpx
import pytest

from proxy.broker.hook_auth import sign
from tests.proxy.broker.broker_support import ALICE, hook_body
from tests.proxy.broker.conftest import StartBroker


@pytest.mark.parametrize("door", ["generic", "cognito", "auth0"])
@pytest.mark.parametrize(
    "headers",
    [{}, {"x-authswitch-broker-secret": "not-the-secret-at-all"}],
    ids=["missing", "wrong"],
)
def test_without_the_shared_secret_nothing_is_verified(
    start_broker: StartBroker, headers: dict[str, str], door: str
) -> None:
    env = start_broker()
    body = json.dumps(hook_body(door, *ALICE)).encode()

    answer = httpx.post(f"{env.url}/_authswitch/broker/{door}", content=body, headers=headers)

    assert answer.status_code == 401
    assert answer.json() == {"error": "unauthorized"}
    assert env.scim.users() == []


@pytest.mark.parametrize("door", ["okta", "cognito", "auth0"])
def test_hmac_mode_accepts_a_signed_body_and_refuses_a_tampered_one(
    start_broker: StartBroker, door: str
) -> None:
    env = start_broker(authentication="hmac")
    url = f"{env.url}/_authswitch/broker/{door}"
    body = json.dumps(hook_body(door, *ALICE)).encode()
    signature = sign(env.secret, body)

    tampered = httpx.post(
        url, content=body.replace(b"alice", b"alicf"), headers={"x-authswitch-signature": signature}
    )
    secret_only = httpx.post(
        url, content=body, headers={"x-authswitch-broker-secret": env.secret.decode()}
    )
    signed = env.signed_call(door, *ALICE)

    assert tampered.status_code == secret_only.status_code == 401
    assert tampered.json() == {"error": "unauthorized"}
    assert signed.status_code == 200
    verified = {
        "okta": lambda a: a["commands"][0]["value"] == {"credential": "VERIFIED"},
        "cognito": lambda a: a["response"]["finalUserStatus"] == "CONFIRMED",
        "auth0": lambda a: a["user_id"] == ALICE[0],
    }
    assert verified[door](signed.json())
    assert [u["userName"] for u in env.scim.users()] == [ALICE[0]]


@pytest.mark.parametrize(
    ("authentication", "name", "values"),
    [
        ("shared_secret", "x-authswitch-broker-secret", ["secret", "secret"]),
        ("shared_secret", "x-authswitch-broker-secret", ["secret", "not-the-secret-at-all"]),
        ("shared_secret", "x-authswitch-broker-secret", ["not-the-secret-at-all", "secret"]),
        ("hmac", "x-authswitch-signature", ["signature", "signature"]),
        ("hmac", "x-authswitch-signature", ["signature", "sha256=00"]),
        ("hmac", "x-authswitch-signature", ["sha256=00", "signature"]),
    ],
    ids=[
        "secret-twice",
        "secret-then-wrong",
        "wrong-then-secret",
        "signature-twice",
        "signature-then-wrong",
        "wrong-then-signature",
    ],
)
def test_a_repeated_authentication_header_is_refused(
    start_broker: StartBroker, authentication: str, name: str, values: list[str]
) -> None:
    """Which copy would a front proxy or the provider have checked? Neither is trusted."""
    env = start_broker(authentication=authentication)
    body = json.dumps(hook_body("cognito", *ALICE)).encode()
    real = {"secret": env.secret.decode(), "signature": sign(env.secret, body)}
    headers = [(name, real.get(value, value)) for value in values]

    answer = httpx.post(f"{env.url}/_authswitch/broker/cognito", content=body, headers=headers)

    assert answer.status_code == 401
    assert answer.json() == {"error": "unauthorized"}
    assert env.scim.users() == []
