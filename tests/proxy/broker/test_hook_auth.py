"""Hook authentication: a shared secret header, or an HMAC-SHA256 of the body."""

from __future__ import annotations

import json

import httpx
import pytest

from proxy.broker.hook_auth import sign
from tests.proxy.broker.broker_support import ALICE, hook_body
from tests.proxy.broker.conftest import StartBroker


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-authswitch-broker-secret": "not-the-secret-at-all"}],
    ids=["missing", "wrong"],
)
def test_without_the_shared_secret_nothing_is_verified(
    start_broker: StartBroker, headers: dict[str, str]
) -> None:
    env = start_broker()
    body = json.dumps(hook_body("generic", *ALICE)).encode()

    answer = httpx.post(f"{env.url}/_authswitch/broker/generic", content=body, headers=headers)

    assert answer.status_code == 401
    assert answer.json() == {"error": "unauthorized"}
    assert env.scim.users() == []


def test_hmac_mode_accepts_a_signed_body_and_refuses_a_tampered_one(
    start_broker: StartBroker,
) -> None:
    env = start_broker(authentication="hmac")
    url = f"{env.url}/_authswitch/broker/okta"
    body = json.dumps(hook_body("okta", *ALICE)).encode()
    signature = sign(env.secret, body)

    tampered = httpx.post(
        url, content=body.replace(b"alice", b"alicf"), headers={"x-authswitch-signature": signature}
    )
    secret_only = httpx.post(
        url, content=body, headers={"x-authswitch-broker-secret": env.secret.decode()}
    )
    signed = env.signed_call("okta", *ALICE)

    assert tampered.status_code == secret_only.status_code == 401
    assert signed.status_code == 200
    assert signed.json()["commands"][0]["value"] == {"credential": "VERIFIED"}
