"""Rate limits per identifier, per client IP and global, counted in Redis: 429 + Retry-After."""

from __future__ import annotations

import time

import pytest

from tests.flags.redis_support import RedisTarget, free_port
from tests.proxy.broker.broker_support import ALICE, BOB, WRONG
from tests.proxy.broker.conftest import StartBroker


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


@pytest.mark.parametrize("limit", ["per_ip", "global"])
def test_per_ip_and_global_limits_answer_429_after_the_burst(
    start_broker: StartBroker, limit: str
) -> None:
    env = start_broker(rate_limits={limit: "4/minute"})

    statuses = [env.call("okta", f"user{i}@example.com", WRONG).status_code for i in range(5)]

    assert statuses == [200, 200, 200, 200, 429]


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
