"""`authswitch users import` into the broker's WorkOS or Kratos provisioner: the in-test
providers over loopback, the real command in-process."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from proxy.demo.loopback_server import LoopbackServer
from tests.conftest import write_proxy_files
from tests.proxy.broker.broker_support import serve
from tests.proxy.broker.provider_apis import API_KEY, UserStore, kratos_app, workos_app
from tests.proxy.users_import.import_support import adds_up, run_import, user_line, write_ndjson

USERS = 300
LEGACY = "http://127.0.0.1:9"


@dataclass
class Provider:
    kind: str
    store: UserStore
    server: LoopbackServer
    config: Path

    def by_login(self) -> dict[str, dict[str, Any]]:
        """Every user by its login, checking that none is there twice."""
        logins = [self.login(user) for user in self.store.users]
        assert [login for login, n in Counter(logins).items() if n > 1] == []
        return dict(zip(logins, self.store.users, strict=True))

    def login(self, user: dict[str, Any]) -> str:
        return str(user["email"] if self.kind == "workos" else user["traits"]["email"])

    def password(self, user: dict[str, Any]) -> str | None:
        if self.kind == "workos":
            return user.get("password")
        credentials = user.get("credentials")
        return None if credentials is None else credentials["password"]["config"]["password"]


def provider_config(directory: Path, kind: str, url: str, key: str = API_KEY) -> Path:
    if kind == "workos":
        (directory / "workos-key").write_text(key + "\n")
        provisioner = {"type": "workos", "url": url, "api_key_file": "workos-key"}
    else:
        provisioner = {"type": "kratos", "url": url, "schema_id": "customer"}
    return write_proxy_files(directory, LEGACY, LEGACY, broker={"provisioner": provisioner})


@pytest.fixture(params=["workos", "kratos"])
def provider(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Provider]:
    store = UserStore()
    app = workos_app(store) if request.param == "workos" else kratos_app(store)
    server = serve(app, request.param)
    config = provider_config(tmp_path, request.param, server.url)
    yield Provider(request.param, store, server, config)
    server.stop()


def secrets_in(text: str) -> list[str]:
    return [secret for secret in ("SEEKRIT", API_KEY) if secret in text]


def test_import_creates_every_user_once_then_ignore_skips_them(
    tmp_path: Path, provider: Provider
) -> None:
    lines = [user_line(i) for i in range(USERS)]
    for i in range(0, USERS, 10):
        del lines[i]["password"]  # a profile-only user: the new provider sets a password later
    lines[7]["email_verified"] = False
    lines[8]["username"] = "grace"  # the login is still the address (WorkOS; Kratos `email`)
    file = write_ndjson(tmp_path / "users.ndjson", lines)
    options = ("--batch-size", "40", "--parallel", "4")

    result, report = run_import(file, provider.config, *options)

    assert result.exit_code == 0, result.output
    users = provider.by_login()
    assert len(users) == USERS
    assert provider.password(users["user00007@example.com"]) == "SEEKRIT-pw-7"
    assert provider.password(users["user00008@example.com"]) == "SEEKRIT-pw-8"
    assert provider.password(users["user00010@example.com"]) is None
    no_password = [login for login, user in users.items() if provider.password(user) is None]
    assert len(no_password) == USERS // 10
    if provider.kind == "workos":
        assert {k: v for k, v in users["user00007@example.com"].items() if k != "id"} == {
            "email": "user00007@example.com",
            "password": "SEEKRIT-pw-7",
            "email_verified": False,
            "first_name": "Given7",
            "last_name": "Family7",
        }
        assert "password" not in users["user00010@example.com"]  # left out, not null
        assert users["user00010@example.com"]["email_verified"] is True
    else:
        # Kratos gets the identifier trait only, as from the broker (the schema is its own).
        assert users["user00007@example.com"]["traits"] == {"email": "user00007@example.com"}
        assert {user["schema_id"] for user in users.values()} == {"customer"}
        assert "credentials" not in users["user00010@example.com"]
    assert report is not None and adds_up(report)
    assert (report["created"], report["skipped_already_present"]) == (USERS, 0)
    assert report["transport"] == provider.kind
    assert not file.with_name(file.name + ".checkpoint").exists()

    again, report = run_import(file, provider.config, *options, "--on-existing", "ignore")

    assert again.exit_code == 0, again.output
    assert len(provider.by_login()) == USERS
    assert report is not None and adds_up(report)
    assert (report["created"], report["skipped_already_present"]) == (0, USERS)
    assert secrets_in(result.output + again.output) == []


def test_eight_parallel_batches_keep_at_most_16_creates_in_flight(
    tmp_path: Path, provider: Provider
) -> None:
    provider.store.delay_seconds = 0.01  # slow enough for the requests to overlap
    file = write_ndjson(tmp_path / "users.ndjson", [user_line(i) for i in range(200)])

    result, report = run_import(file, provider.config, "--batch-size", "25", "--parallel", "8")

    assert result.exit_code == 0, result.output
    assert report is not None and report["created"] == 200
    assert 8 <= provider.store.most_in_flight <= 16


def test_update_is_refused_before_anything_is_sent(tmp_path: Path, provider: Provider) -> None:
    file = write_ndjson(tmp_path / "users.ndjson", [user_line(i) for i in range(3)])

    result, report = run_import(file, provider.config, "--on-existing", "update")

    assert result.exit_code == 2
    assert f"--on-existing update needs a SCIM target: the {provider.kind} provisioner" in (
        result.output
    )
    assert report is None and provider.store.posts == 0
    assert not file.with_name(file.name + ".checkpoint").exists()


def test_fail_stops_at_a_user_the_provider_already_has(tmp_path: Path, provider: Provider) -> None:
    early = write_ndjson(tmp_path / "early.ndjson", [user_line(25)])
    assert run_import(early, provider.config)[0].exit_code == 0
    file = write_ndjson(tmp_path / "users.ndjson", [user_line(i) for i in range(1, 41)])

    result, report = run_import(
        file, provider.config, "--on-existing", "fail", "--batch-size", "10", "--parallel", "1"
    )

    assert result.exit_code == 1
    assert report is not None and adds_up(report)
    # Lines 1-10 and 11-20 went in; 21-30 holds user 25: the stop, nothing of it created.
    assert (report["created"], report["failed"], report["not_attempted"]) == (20, 1, 19)
    assert report["failure_reasons"] == {"already exists (--on-existing fail)": 1}
    assert len(provider.by_login()) == 21


def test_a_provider_answering_503_for_a_while_gets_the_batch_again(
    tmp_path: Path, provider: Provider
) -> None:
    provider.store.unavailable_creates = 30
    file = write_ndjson(tmp_path / "users.ndjson", [user_line(i) for i in range(100)])

    result, report = run_import(file, provider.config, "--batch-size", "50", "--parallel", "2")

    assert result.exit_code == 0, result.output
    assert len(provider.by_login()) == 100
    assert provider.store.posts > 100  # some were sent again
    assert report is not None and adds_up(report)
    # Users created by an attempt that then failed count as created, not as already there.
    assert (report["created"], report["skipped_already_present"], report["failed"]) == (100, 0, 0)


def test_a_provider_that_stays_down_fails_the_batch_after_the_retries(tmp_path: Path) -> None:
    store = UserStore(fail_create_with=503)
    server = serve(workos_app(store), "workos")
    try:
        config = provider_config(tmp_path, "workos", server.url)
        file = write_ndjson(tmp_path / "users.ndjson", [user_line(i) for i in range(5)])

        result, report = run_import(file, config)
    finally:
        server.stop()

    assert result.exit_code == 1
    assert store.posts == 5 * 4  # the first attempt and 3 retries
    assert report is not None and adds_up(report)
    assert report["failed"] == 5
    assert report["failure_reasons"] == {"WorkOS user creation answered 503": 5}
    assert file.with_name(file.name + ".checkpoint").exists()  # a re-run does what is left
    assert secrets_in(result.output) == []


def test_a_user_the_provider_refuses_fails_alone(tmp_path: Path) -> None:
    store = UserStore()
    server = serve(kratos_app(store), "kratos")
    try:
        config = provider_config(tmp_path, "kratos", server.url)
        file = write_ndjson(tmp_path / "users.ndjson", [user_line(i) for i in range(4)])
        store.fail_create_with = 400

        result, report = run_import(file, config)
    finally:
        server.stop()

    assert result.exit_code == 1
    assert store.posts == 4  # a refusal is the user's: not retried
    assert report is not None and adds_up(report)
    assert report["failure_reasons"] == {"Kratos identity creation answered 400": 4}
    assert secrets_in(result.output + str(report)) == []


def test_a_wrong_api_key_stops_the_import_at_start(tmp_path: Path) -> None:
    store = UserStore()
    server = serve(workos_app(store), "workos")
    try:
        config = provider_config(tmp_path, "workos", server.url, key="sk_test_SEEKRIT-revoked")
        file = write_ndjson(tmp_path / "users.ndjson", [user_line(i) for i in range(3)])

        result, report = run_import(file, config)
    finally:
        server.stop()

    assert result.exit_code == 2
    assert "the import target can't be used: WorkOS user search answered 401" in result.output
    assert store.posts == 0 and report is None
    assert secrets_in(result.output) == []


def test_bulk_options_are_refused_for_a_provisioner_target(
    tmp_path: Path, provider: Provider
) -> None:
    file = write_ndjson(tmp_path / "users.ndjson", [user_line(i) for i in range(3)])

    result, _ = run_import(file, provider.config, "--bulk")

    assert result.exit_code == 2
    assert f"--bulk/--no-bulk apply to a SCIM target, not to {provider.kind}" in result.output
    assert provider.store.posts == 0
