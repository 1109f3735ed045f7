"""Each front door, end to end: the provider's documented request in, its documented answer
out, and the user at the SCIM server exactly when the password was right."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.proxy.broker.broker_support import ALICE, BOB, UNKNOWN, WRONG, okta_answer
from tests.proxy.broker.conftest import StartBroker

DOORS = ["generic", "okta", "kratos"]

VERIFIED = {
    "generic": (200, {"verified": True}),
    "okta": (200, okta_answer(True)),
    "kratos": (200, {"status": "password_match"}),
}
DENIED = {
    "generic": (200, {"verified": False}),
    "okta": (200, okta_answer(False)),
    "kratos": (403, {"error": "invalid_credentials"}),
}


@pytest.mark.parametrize("door", DOORS)
def test_right_password_is_verified_and_the_user_is_provisioned_once(
    start_broker: StartBroker, door: str
) -> None:
    env = start_broker()

    answer = env.call(door, *ALICE)

    assert (answer.status_code, answer.json()) == VERIFIED[door]
    users = env.scim.users()
    assert [u["userName"] for u in users] == [ALICE[0]]
    assert users[0]["emails"] == [{"value": ALICE[0], "primary": True}]
    assert users[0]["active"] is True
    # The password reached the new provider unchanged (SCIM never returns it over HTTP).
    assert "password" not in users[0]
    assert env.scim.stored_password(ALICE[0]) == ALICE[1]

    # The next login through the hook finds the user there and creates nothing.
    again = env.call(door, *ALICE)
    assert (again.status_code, again.json()) == VERIFIED[door]
    assert len(env.scim.users()) == 1


@pytest.mark.parametrize("door", DOORS)
def test_wrong_password_is_denied_and_nothing_is_created(
    start_broker: StartBroker, door: str
) -> None:
    env = start_broker()

    answer = env.call(door, ALICE[0], WRONG)

    assert (answer.status_code, answer.json()) == DENIED[door]
    assert env.scim.users() == []


@pytest.mark.parametrize("door", DOORS)
def test_unknown_user_gets_the_same_answer_as_a_wrong_password(
    start_broker: StartBroker, door: str
) -> None:
    env = start_broker()

    wrong = env.call(door, ALICE[0], WRONG)
    unknown = env.call(door, UNKNOWN, WRONG)

    assert unknown.status_code == wrong.status_code
    assert unknown.content == wrong.content
    assert env.scim.users() == []


def test_identifier_is_matched_case_insensitively_and_argon2id_verifies(
    start_broker: StartBroker,
) -> None:
    env = start_broker()

    answer = env.call("generic", BOB[0].upper(), BOB[1])

    assert answer.json() == {"verified": True}
    assert [u["userName"] for u in env.scim.users()] == [BOB[0].upper()]


@pytest.mark.parametrize("door", ["okta", "kratos"])
def test_twenty_concurrent_calls_for_a_new_user_create_it_exactly_once(
    start_broker: StartBroker, door: str
) -> None:
    env = start_broker()

    with (
        httpx.Client(timeout=10, limits=httpx.Limits(max_connections=20)) as client,
        ThreadPoolExecutor(20) as pool,
    ):
        answers = list(pool.map(lambda _: env.call(door, *ALICE, client=client), range(20)))

    assert [(a.status_code, a.json()) for a in answers] == [VERIFIED[door]] * 20
    assert [u["userName"] for u in env.scim.users()] == [ALICE[0]]


def test_doors_not_configured_and_other_methods_are_refused(start_broker: StartBroker) -> None:
    env = start_broker(doors=["okta"])

    assert env.call("generic", *ALICE).status_code == 404
    assert httpx.get(f"{env.url}/_authswitch/broker/okta").status_code == 405
    assert env.scim.users() == []


def test_a_body_that_is_not_the_doors_request_is_a_400_without_its_content(
    start_broker: StartBroker,
) -> None:
    env = start_broker()

    answer = httpx.post(
        f"{env.url}/_authswitch/broker/okta",
        content=b'{"identifier": "a@example.com", "password": "SEEKRIT-flat"}',
        headers={"x-authswitch-broker-secret": env.secret.decode()},
    )

    assert answer.status_code == 400
    assert answer.json()["error"] == "bad_request"
    assert "SEEKRIT" not in answer.text
