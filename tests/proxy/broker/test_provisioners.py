"""The WorkOS and Kratos provisioners against in-test providers over loopback: the user
created once with the password unchanged, "already exists" as success, failures fail closed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from proxy.config import ConfigError
from proxy.demo.loopback_server import LoopbackServer
from tests.proxy.broker.broker_support import ALICE, WRONG, hash_file_lines, serve
from tests.proxy.broker.conftest import StartBroker
from tests.proxy.broker.provider_apis import API_KEY, UserStore, kratos_app, workos_app
from tests.proxy.broker.test_legacy_http_login import _counter


@dataclass
class Provider:
    kind: str
    store: UserStore
    server: LoopbackServer
    config: dict[str, Any]

    def passwords(self) -> list[str]:
        if self.kind == "workos":
            return [u["password"] for u in self.store.users]
        return [u["credentials"]["password"]["config"]["password"] for u in self.store.users]

    def logins(self) -> list[str]:
        if self.kind == "workos":
            return [u["email"] for u in self.store.users]
        return [u["traits"]["email"] for u in self.store.users]


@pytest.fixture(params=["workos", "kratos"])
def provider(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Provider]:
    store = UserStore()
    if request.param == "workos":
        (tmp_path / "workos-key").write_text(API_KEY + "\n")
        server = serve(workos_app(store), "workos")
        config = {"type": "workos", "url": server.url, "api_key_file": "workos-key"}
    else:
        server = serve(kratos_app(store), "kratos")
        config = {"type": "kratos", "url": server.url, "schema_id": "customer"}
    yield Provider(request.param, store, server, config)
    server.stop()


def test_a_verified_user_is_created_with_the_password_unchanged(
    start_broker: StartBroker, provider: Provider
) -> None:
    env = start_broker(provisioner=provider.config)

    first = env.call("generic", *ALICE)
    again = env.call("generic", *ALICE)
    wrong = env.call("generic", ALICE[0], WRONG)

    assert first.json() == again.json() == {"verified": True}
    assert wrong.json() == {"verified": False}
    assert provider.logins() == [ALICE[0]]
    assert provider.passwords() == [ALICE[1]]
    assert provider.store.posts == 1  # the second login found the user: no second create
    [user] = provider.store.users
    if provider.kind == "workos":
        assert user["email_verified"] is True
    else:
        assert user["schema_id"] == "customer"
    assert env.scim.users() == []  # the configured provisioner is the only one


def test_twenty_concurrent_hooks_for_a_new_user_create_it_exactly_once(
    start_broker: StartBroker, provider: Provider
) -> None:
    provider.store.delay_seconds = 0.05  # a slow create: the others wait on the lock
    # What is tested is the lock, not Redis's latency: on a loaded machine twenty hooks at once
    # can starve the loop past the default 0.5 s Redis budget, and the broker fails closed.
    env = start_broker(provisioner=provider.config, redis_settings={"socket_timeout_seconds": 5})

    with (
        httpx.Client(timeout=10, limits=httpx.Limits(max_connections=20)) as client,
        ThreadPoolExecutor(20) as pool,
    ):
        answers = list(pool.map(lambda _: env.call("kratos", *ALICE, client=client), range(20)))

    assert [(a.status_code, a.json()) for a in answers] == [
        (200, {"status": "password_match"})
    ] * 20
    assert provider.store.posts == 1
    assert provider.logins() == [ALICE[0]]
    assert provider.passwords() == [ALICE[1]]


def test_already_exists_from_the_provider_counts_as_present(
    start_broker: StartBroker, provider: Provider
) -> None:
    env = start_broker(provisioner=provider.config)
    assert env.call("generic", *ALICE).json() == {"verified": True}
    # Someone else created the user between our search and our create: the search misses it,
    # the create answers 409 (Kratos) or 422 email_not_available (WorkOS).
    provider.store.hidden.add(ALICE[0])
    before = _counter(env.ops_url, "authswitch_broker_provisioning_total", 'door="okta"')

    answer = env.call("okta", *ALICE)

    assert answer.json()["commands"][0]["value"] == {"credential": "VERIFIED"}
    assert provider.store.posts == 2 and len(provider.store.users) == 1
    after = _counter(env.ops_url, "authswitch_broker_provisioning_total", 'door="okta"')
    assert after["already_present"] - before.get("already_present", 0.0) == 1.0


@pytest.mark.parametrize("status", [500, 400])
def test_a_provider_refusing_the_user_is_denied(
    start_broker: StartBroker, provider: Provider, status: int
) -> None:
    provider.store.fail_create_with = status
    env = start_broker(provisioner=provider.config)
    before = _counter(env.ops_url, "authswitch_broker_hook_calls_total", 'door="cognito"')

    answer = env.call("cognito", *ALICE)

    assert answer.status_code == 401
    after = _counter(env.ops_url, "authswitch_broker_hook_calls_total", 'door="cognito"')
    assert after["provision_error"] - before.get("provision_error", 0.0) == 1.0
    assert provider.store.users == []


def test_workos_needs_the_right_api_key(start_broker: StartBroker, tmp_path: Path) -> None:
    store = UserStore()
    (tmp_path / "workos-key").write_text("sk_test_SEEKRIT-revoked\n")
    server = serve(workos_app(store), "workos")
    try:
        env = start_broker(
            provisioner={"type": "workos", "url": server.url, "api_key_file": "workos-key"}
        )
        answer = env.call("generic", *ALICE)
    finally:
        server.stop()

    assert answer.json() == {"verified": False}
    assert store.users == []


def test_workos_creates_nothing_when_no_email_is_known(
    start_broker: StartBroker, tmp_path: Path
) -> None:
    store = UserStore()
    (tmp_path / "workos-key").write_text(API_KEY)
    server = serve(workos_app(store), "workos")
    (_, alice_hash), _ = hash_file_lines()
    (tmp_path / "users.csv").write_text(f"alice,{alice_hash}\n")
    try:
        env = start_broker(
            {"type": "hash_file", "path": "users.csv"},
            provisioner={"type": "workos", "url": server.url, "api_key_file": "workos-key"},
        )
        answer = env.call("generic", "alice", ALICE[1])
    finally:
        server.stop()

    # "alice" is not an address and legacy gave no email: WorkOS can't hold the user.
    assert answer.json() == {"verified": False}
    assert store.posts == 0


def test_workos_gets_the_legacy_profile(start_broker: StartBroker, tmp_path: Path) -> None:
    store = UserStore()
    (tmp_path / "workos-key").write_text(API_KEY)
    server = serve(workos_app(store), "workos")
    (_, alice_hash), _ = hash_file_lines()
    record = {
        "identifier": "alice",
        "hash": alice_hash,
        "email": ALICE[0],
        "email_verified": False,
        "given_name": "Alice",
        "family_name": "Liddell",
    }
    (tmp_path / "users.ndjson").write_text(json.dumps(record))
    try:
        env = start_broker(
            {"type": "hash_file", "path": "users.ndjson"},
            provisioner={"type": "workos", "url": server.url, "api_key_file": "workos-key"},
        )
        answer = env.call("auth0", "alice", ALICE[1])
    finally:
        server.stop()

    assert answer.status_code == 200
    [user] = store.users
    assert {k: v for k, v in user.items() if k != "id"} == {
        "email": ALICE[0],
        "password": ALICE[1],
        "email_verified": False,
        "first_name": "Alice",
        "last_name": "Liddell",
    }


def test_kratos_identifier_trait_holds_a_username(
    start_broker: StartBroker, tmp_path: Path
) -> None:
    store = UserStore()
    server = serve(kratos_app(store, trait="username"), "kratos")
    (_, alice_hash), _ = hash_file_lines()
    (tmp_path / "users.csv").write_text(f"alice,{alice_hash}\n")
    try:
        env = start_broker(
            {"type": "hash_file", "path": "users.csv"},
            provisioner={"type": "kratos", "url": server.url, "identifier_trait": "username"},
        )
        first = env.call("kratos", "alice", ALICE[1])
        second = env.call("kratos", "ALICE", ALICE[1])
    finally:
        server.stop()

    assert first.status_code == second.status_code == 200
    assert [i["traits"] for i in store.users] == [{"username": "alice"}]
    assert store.posts == 1


def test_a_provisioner_type_that_does_not_exist_names_the_key(
    start_broker: StartBroker,
) -> None:
    with pytest.raises(ConfigError, match=r"key 'broker\.provisioner'.*'okta'"):
        start_broker(provisioner={"type": "okta", "url": "http://127.0.0.1:9"})
