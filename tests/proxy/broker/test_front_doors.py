"""Each front door, end to end: the provider's documented request in, its documented answer
out, and the user at the SCIM server exactly when the password was right."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.proxy.broker.broker_support import (
    ALICE,
    AUTH0_DENIED,
    BOB,
    COGNITO_DENIED,
    UNKNOWN,
    WRONG,
    LegacyLogin,
    cognito_answer,
    cognito_event,
    hash_file_lines,
    okta_answer,
    serve,
)
from tests.proxy.broker.conftest import StartBroker

DOORS = ["generic", "okta", "kratos", "cognito", "auth0"]

VERIFIED = {
    "generic": (200, {"verified": True}),
    "okta": (200, okta_answer(True)),
    "kratos": (200, {"status": "password_match"}),
    # The identifier is an address and the hash file has no profile: email from it.
    "cognito": (200, cognito_answer(ALICE[0], email=ALICE[0], email_verified="true")),
    "auth0": (200, {"user_id": ALICE[0], "email": ALICE[0], "email_verified": True}),
}
DENIED = {
    "generic": (200, {"verified": False}),
    "okta": (200, okta_answer(False)),
    "kratos": (403, {"error": "invalid_credentials"}),
    "cognito": (401, COGNITO_DENIED),
    "auth0": (401, AUTH0_DENIED),
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


@pytest.mark.parametrize("door", ["okta", "kratos", "cognito", "auth0"])
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


def test_cognito_forgot_password_is_denied_without_a_look_up(
    start_broker: StartBroker, tmp_path: Path
) -> None:
    legacy = LegacyLogin(users={ALICE[0]: ALICE[1]})
    server = serve(legacy, "legacy-login")
    try:
        env = start_broker(
            {
                "type": "http_login",
                "url": f"{server.url}/login",
                "template": {"login": "{identifier}", "secret": "{password}"},
            }
        )
        headers = {"x-authswitch-broker-secret": env.secret.decode()}
        url = f"{env.url}/_authswitch/broker/cognito"

        known = httpx.post(url, json=cognito_event(ALICE[0], None), headers=headers)
        unknown = httpx.post(url, json=cognito_event(UNKNOWN, None), headers=headers)
    finally:
        server.stop()

    assert (known.status_code, known.json()) == (401, COGNITO_DENIED)
    assert known.content == unknown.content
    assert legacy.received == []  # legacy never asked: nothing to tell a user's existence by
    assert env.scim.users() == []


def test_cognito_event_without_a_password_on_sign_in_is_a_400(start_broker: StartBroker) -> None:
    env = start_broker()
    event = cognito_event(ALICE[0], None)
    event["triggerSource"] = "UserMigration_Authentication"

    answer = httpx.post(
        f"{env.url}/_authswitch/broker/cognito",
        json=event,
        headers={"x-authswitch-broker-secret": env.secret.decode()},
    )

    assert answer.status_code == 400
    assert env.scim.users() == []


def test_the_legacy_profile_reaches_cognito_auth0_and_the_directory(
    start_broker: StartBroker, tmp_path: Path
) -> None:
    (_, alice_hash), _ = hash_file_lines()
    record = {
        "identifier": "alice",
        "hash": alice_hash,
        "email": ALICE[0],
        "email_verified": False,
        "name": "Alice Liddell",
        "given_name": "Alice",
        "family_name": "Liddell",
    }
    (tmp_path / "users.ndjson").write_text(json.dumps(record) + "\n")
    env = start_broker({"type": "hash_file", "path": "users.ndjson"})
    headers = {"x-authswitch-broker-secret": env.secret.decode()}

    auth0 = httpx.post(
        f"{env.url}/_authswitch/broker/auth0",
        json={"username": "Alice", "password": ALICE[1]},
        headers=headers,
    )
    cognito = env.call("cognito", "alice", ALICE[1])

    names = {"name": "Alice Liddell", "given_name": "Alice", "family_name": "Liddell"}
    assert (auth0.status_code, auth0.json()) == (
        200,
        {"user_id": "alice", "username": "Alice", "email": ALICE[0], "email_verified": False}
        | names,
    )
    assert (cognito.status_code, cognito.json()) == (
        200,
        cognito_answer("alice", email=ALICE[0], email_verified="false", **names),
    )
    assert ALICE[1] not in cognito.text
    [user] = env.scim.users()
    assert user["userName"] == "Alice"
    assert user["emails"] == [{"value": ALICE[0], "primary": True}]
    assert user["name"] == {
        "formatted": "Alice Liddell",
        "givenName": "Alice",
        "familyName": "Liddell",
    }


def test_auth0_with_a_username_that_is_not_an_address_has_no_email(
    start_broker: StartBroker, tmp_path: Path
) -> None:
    (_, alice_hash), _ = hash_file_lines()
    (tmp_path / "users.csv").write_text(f"alice,{alice_hash}\n")
    env = start_broker({"type": "hash_file", "path": "users.csv"})

    answer = httpx.post(
        f"{env.url}/_authswitch/broker/auth0",
        json={"username": "alice", "password": ALICE[1]},
        headers={"x-authswitch-broker-secret": env.secret.decode()},
    )

    assert (answer.status_code, answer.json()) == (200, {"user_id": "alice", "username": "alice"})


def test_cognito_gets_standard_attributes_only_even_with_no_address_known(
    start_broker: StartBroker, tmp_path: Path
) -> None:
    """Cognito refuses attribute names outside its schema and needs at least one attribute."""
    (_, alice_hash), _ = hash_file_lines()
    (tmp_path / "users.csv").write_text(f"alice,{alice_hash}\n")
    env = start_broker({"type": "hash_file", "path": "users.csv"})

    answer = env.call("cognito", "alice", ALICE[1])

    assert answer.status_code == 200
    assert answer.json()["response"]["userAttributes"] == {"preferred_username": "alice"}
    assert answer.json() == cognito_answer("alice")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[" * 5000 + b"]" * 5000, "the body's JSON is nested too deeply"),
        (
            b'{"identifier": {"a": ' * 2000 + b"1" + b"}" * 2000 + b', "password": "x"}',
            "the body's JSON is nested too deeply",
        ),
        (
            b'{"identifier": "\\ud800@example.com", "password": "SEEKRIT-pw"}',
            "the identifier is not valid Unicode (a lone surrogate)",
        ),
        (
            b'{"identifier": "alice@example.com", "password": "SEEKRIT-\\udfff"}',
            "the password is not valid Unicode (a lone surrogate)",
        ),
    ],
    ids=["nested-array", "nested-identifier", "surrogate-identifier", "surrogate-password"],
)
def test_hostile_json_is_a_400_with_its_reason_never_a_500(
    start_broker: StartBroker, body: bytes, message: str
) -> None:
    env = start_broker(max_body_bytes=64 * 1024)

    answer = httpx.post(
        f"{env.url}/_authswitch/broker/generic",
        content=body,
        headers={"x-authswitch-broker-secret": env.secret.decode()},
    )

    assert answer.status_code == 400
    assert answer.json() == {"error": "bad_request", "message": message}
    # The broker goes on answering.
    assert env.call("generic", *ALICE).json() == {"verified": True}
