"""Rate limits per identifier, per end-user address (from the payload) and global, counted in
Redis: 429 + Retry-After. Never per address of the hook's caller."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from tests.flags.redis_support import RedisTarget, free_port
from tests.proxy.broker.broker_support import ALICE, BOB, WRONG, BrokerEnv, hook_body
from tests.proxy.broker.conftest import StartBroker

DEFAULT_LIMITS = {"per_ip": "60/minute", "per_identifier": "10/minute", "global": "100/second"}


def _call_from(
    env: BrokerEnv, door: str, identifier: str, password: str, end_user: str | None
) -> httpx.Response:
    """A hook call whose payload carries the end user's address where the door has one."""
    body: dict[str, Any] = hook_body(door, identifier, password)
    if end_user is not None and door == "okta":
        body["data"]["context"]["request"]["ipAddress"] = end_user
    elif end_user is not None:
        body["client_ip"] = end_user
    return httpx.post(
        f"{env.url}/_authswitch/broker/{door}",
        content=json.dumps(body).encode(),
        headers={"x-authswitch-broker-secret": env.secret.decode()},
        timeout=10,
    )


def test_per_identifier_limit_answers_429_after_the_burst(start_broker: StartBroker) -> None:
    env = start_broker(rate_limits={"per_identifier": "3/minute", "per_ip": "100/minute"})

    answers = [env.call("generic", ALICE[0], WRONG) for _ in range(3)]
    limited = env.call("kratos", ALICE[0], ALICE[1])  # even the right password now waits

    assert [a.json() for a in answers] == [{"verified": False}] * 3
    assert limited.status_code == 429
    assert limited.json() == {"error": "rate_limited"}
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert env.scim.users() == []
    # Another account from the same client is not held back by alice's limit.
    assert env.call("generic", *BOB).json() == {"verified": True}


def test_identifier_limit_ignores_case(start_broker: StartBroker) -> None:
    env = start_broker(rate_limits={"per_identifier": "2/minute"})

    env.call("generic", ALICE[0], WRONG)
    env.call("generic", ALICE[0].upper(), WRONG)

    assert env.call("generic", ALICE[0].title(), WRONG).status_code == 429


def test_global_limit_answers_429_after_the_burst(start_broker: StartBroker) -> None:
    env = start_broker(rate_limits={"global": "4/minute"})

    statuses = [env.call("okta", f"user{i}@example.com", WRONG).status_code for i in range(5)]

    assert statuses == [200, 200, 200, 200, 429]


def test_wrong_passwords_for_other_users_never_lock_a_user_out(start_broker: StartBroker) -> None:
    # The review's attack: 70 wrong passwords through one provider (one caller address) gave
    # 429 to everyone for half a minute. With the default limits, 80 from one caller:
    env = start_broker(rate_limits=DEFAULT_LIMITS)
    attacker = "203.0.113.66"

    flood = [
        _call_from(env, door, f"victim{n}@example.com", WRONG, attacker if n % 4 else None)
        for n in range(40)
        for door in ("okta", "generic")
    ]

    assert {answer.status_code for answer in flood} == {200}
    assert env.call("generic", *ALICE).json() == {"verified": True}
    assert _call_from(env, "okta", *BOB, "198.51.100.7").json()["commands"][0]["value"] == {
        "credential": "VERIFIED"
    }


def test_per_address_limit_counts_the_end_user_the_payload_names(
    start_broker: StartBroker,
) -> None:
    env = start_broker(rate_limits={"per_ip": "4/minute"})

    same_user = [
        _call_from(env, door, f"user{n}@example.com", WRONG, "203.0.113.9").status_code
        for n, door in enumerate(["okta", "generic", "kratos", "okta", "generic"])
    ]
    # An IPv6 address counts as its /64.
    ipv6 = [
        _call_from(env, "generic", f"v6-{n}@example.com", WRONG, f"2001:db8:1:2::{n + 1}")
        for n in range(5)
    ]

    assert same_user == [200, 200, 403, 200, 429]  # kratos answers a wrong password with 403
    assert [a.status_code for a in ipv6] == [200, 200, 200, 200, 429]
    # Another end user, and a payload without an address (Cognito, Auth0), are not held back.
    assert _call_from(env, "okta", *ALICE, "198.51.100.7").status_code == 200
    assert env.call("auth0", *BOB).status_code == 200
    assert _call_from(env, "generic", "x@example.com", WRONG, "not-an-address").status_code == 200


def test_counters_live_in_redis_under_the_deployments_prefix(
    start_broker: StartBroker, shared_redis: RedisTarget
) -> None:
    env = start_broker()
    env.call("generic", ALICE[0], WRONG)

    keys = [k.decode() for k in shared_redis.client().scan_iter(match=f"{env.prefix}:*")]

    assert keys and all(k.startswith(f"{env.prefix}:broker:rl") for k in keys)
    # The identifier is hashed in key names: Redis holds no email address.
    assert not any(ALICE[0] in k for k in keys)


def test_redis_unreachable_denies_without_waiting_for_the_budget(
    start_broker: StartBroker,
) -> None:
    env = start_broker(redis={"url": f"redis://127.0.0.1:{free_port()}/0"})

    started = time.monotonic()
    answer = env.call("okta", *ALICE)

    assert answer.status_code == 200
    assert answer.json()["commands"][0]["value"] == {"credential": "UNVERIFIED"}
    assert time.monotonic() - started < 1.5
    assert env.scim.users() == []
