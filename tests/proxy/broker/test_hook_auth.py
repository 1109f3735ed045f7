"""Hook authentication: a shared secret header, or an HMAC-SHA256 of a timestamp and the body,
refused outside its window and when replayed."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx
import pytest

from proxy.broker.hook_auth import HookAuthenticator, HookRefused, Signed, sign
from tests.flags.redis_support import free_port
from tests.proxy.broker.broker_support import ALICE, BrokerEnv, hook_body
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


def _post_signed(env: BrokerEnv, door: str, body: bytes, signature: str) -> httpx.Response:
    return httpx.post(
        f"{env.url}/_authswitch/broker/{door}",
        content=body,
        headers={"content-type": "application/json", "x-authswitch-signature": signature},
        timeout=10,
    )


def test_a_captured_signed_request_does_not_replay(start_broker: StartBroker) -> None:
    env = start_broker(authentication="hmac")
    body = json.dumps(hook_body("generic", *ALICE)).encode()
    signature = sign(env.secret, body)

    first = _post_signed(env, "generic", body, signature)
    replays = [_post_signed(env, "generic", body, signature) for _ in range(4)]

    assert first.json() == {"verified": True}
    assert [(r.status_code, r.json()) for r in replays] == [(401, {"error": "unauthorized"})] * 4
    # A new signature of the same body (a retry the caller signs again) is a new request.
    assert _post_signed(env, "generic", body, sign(env.secret, body, int(time.time()) - 1)).json()
    assert [u["userName"] for u in env.scim.users()] == [ALICE[0]]


# Clear of the 300 s window: the timestamp is whole seconds and the request takes time, so
# one second past it can land inside. The window's exact edges are tested with an injected clock.
@pytest.mark.parametrize("offset", [-310, 310])
def test_a_signature_outside_the_window_is_refused(start_broker: StartBroker, offset: int) -> None:
    env = start_broker(authentication="hmac")
    body = json.dumps(hook_body("generic", *ALICE)).encode()

    answer = _post_signed(env, "generic", body, sign(env.secret, body, int(time.time()) + offset))

    assert answer.status_code == 401
    assert env.scim.users() == []


@pytest.mark.parametrize(
    "signature",
    [
        "sha256={body_only}",  # the former scheme: no timestamp, replayable forever
        "{body_only}",
        "t={now},v1=",
        "t=soon,v1={body_only}",
        "v1={body_only}",
        "t={now},t={now},v1={body_only}",
    ],
)
def test_signatures_without_a_signed_timestamp_are_refused(
    start_broker: StartBroker, signature: str
) -> None:
    env = start_broker(authentication="hmac")
    body = json.dumps(hook_body("generic", *ALICE)).encode()
    body_only = hmac.new(env.secret, body, hashlib.sha256).hexdigest()

    answer = _post_signed(
        env, "generic", body, signature.format(body_only=body_only, now=int(time.time()))
    )

    assert answer.status_code == 401
    assert env.scim.users() == []


def test_the_window_and_how_long_a_signature_is_remembered() -> None:
    now = [1_800_000_000.0]
    check = HookAuthenticator(
        "hmac",
        b"s" * 16,
        secret_header="x-secret",
        signature_header="x-signature",
        tolerance_seconds=300,
        clock=lambda: now[0],
    ).check

    def headers(timestamp: int, secret: bytes = b"s" * 16) -> list[tuple[bytes, bytes]]:
        return [(b"x-signature", sign(secret, b"{}", timestamp).encode())]

    signed = check(headers(1_800_000_000), b"{}")
    assert signed is not None and signed.valid_for_seconds == 300
    # Signed 300 s ago: still inside the window, remembered until it leaves it.
    old = check(headers(1_800_000_000 - 300), b"{}")
    assert isinstance(old, Signed) and old.valid_for_seconds == 1
    assert old.signature_id != signed.signature_id
    for refused in (
        headers(1_800_000_000 - 301),
        headers(1_800_000_000 + 301),
        headers(1_800_000_000, b"t" * 16),
        [*headers(1_800_000_000), *headers(1_800_000_000)],
    ):
        with pytest.raises(HookRefused):
            check(refused, b"{}")
    # Two v1 while a secret is rotated: either matches.
    rotated = sign(b"s" * 16, b"{}", 1_800_000_000) + ",v1=" + "0" * 64
    assert check([(b"x-signature", rotated.encode())], b"{}") is not None


def test_hmac_mode_with_redis_unreachable_denies(start_broker: StartBroker) -> None:
    env = start_broker(authentication="hmac", redis={"url": f"redis://127.0.0.1:{free_port()}/0"})

    answer = env.signed_call("okta", *ALICE)

    assert answer.status_code == 200
    assert answer.json()["commands"][0]["value"] == {"credential": "UNVERIFIED"}
    assert env.scim.users() == []
