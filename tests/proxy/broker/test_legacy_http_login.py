"""The legacy login endpoint as verifier: request template, success by status, fail closed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from proxy.demo.loopback_server import LoopbackServer
from tests.flags.redis_support import free_port
from tests.proxy.broker.broker_support import (
    ALICE,
    UNKNOWN,
    WRONG,
    LegacyLogin,
    okta_answer,
    serve,
)
from tests.proxy.broker.conftest import StartBroker

TEMPLATE = {"login": "{identifier}", "secret": "{password}", "client": "authswitch"}


@pytest.fixture
def legacy() -> Iterator[tuple[LegacyLogin, LoopbackServer]]:
    app = LegacyLogin(users={ALICE[0]: ALICE[1]})
    server = serve(app, "legacy-login")
    yield app, server
    server.stop()


def _verifier(url: str, **extra: object) -> dict[str, object]:
    return {"type": "http_login", "url": url, "template": TEMPLATE, **extra}


@pytest.mark.parametrize("body", ["json", "form"])
def test_the_credential_is_sent_as_the_template_says_and_a_200_verifies(
    start_broker: StartBroker, legacy: tuple[LegacyLogin, LoopbackServer], body: str
) -> None:
    app, server = legacy
    env = start_broker(_verifier(f"{server.url}/login", body=body))

    right = env.call("generic", *ALICE)
    wrong = env.call("generic", ALICE[0], WRONG)
    unknown = env.call("generic", UNKNOWN, WRONG)

    assert right.json() == {"verified": True}
    assert wrong.json() == unknown.json() == {"verified": False}
    assert wrong.content == unknown.content
    assert app.received[0] == {"login": ALICE[0], "secret": ALICE[1], "client": "authswitch"}
    assert [u["userName"] for u in env.scim.users()] == [ALICE[0]]


def test_legacy_too_slow_is_denied_within_the_hooks_budget(
    start_broker: StartBroker, legacy: tuple[LegacyLogin, LoopbackServer]
) -> None:
    app, server = legacy
    app.delay_seconds = 1.0
    env = start_broker(
        _verifier(f"{server.url}/login", timeout_seconds=10),
        budget_seconds={"okta": 0.5},
    )

    started = time.monotonic()
    answer = env.call("okta", *ALICE)
    took = time.monotonic() - started

    assert (answer.status_code, answer.json()) == (200, okta_answer(False))
    assert took < 0.5 + 0.4
    assert env.scim.users() == []


def test_legacy_verifier_timeout_is_a_total_deadline(
    start_broker: StartBroker, legacy: tuple[LegacyLogin, LoopbackServer]
) -> None:
    app, server = legacy
    app.delay_seconds = 1.0
    env = start_broker(_verifier(f"{server.url}/login", timeout_seconds=0.3))

    started = time.monotonic()
    answer = env.call("kratos", *ALICE)

    assert answer.status_code == 403
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("failure", ["status_500", "connection_refused"])
def test_legacy_failing_is_denied_never_verified(
    start_broker: StartBroker, legacy: tuple[LegacyLogin, LoopbackServer], failure: str
) -> None:
    app, server = legacy
    url = f"{server.url}/login"
    if failure == "status_500":
        app.status_override = 500
    else:
        url = f"http://127.0.0.1:{free_port()}/login"
    env = start_broker(_verifier(url))
    before = _counter(env.ops_url, "authswitch_broker_hook_calls_total", 'door="okta"')

    answer = env.call("okta", *ALICE)

    assert (answer.status_code, answer.json()) == (200, okta_answer(False))
    assert env.scim.users() == []
    after = _counter(env.ops_url, "authswitch_broker_hook_calls_total", 'door="okta"')
    changed = {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}
    assert changed == {"legacy_error": 1.0}


def _counter(url: str, name: str, selector: str) -> dict[str, float]:
    """Outcome -> value of one door's series in the metrics exposition (process-wide)."""
    values: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(name + "{") and selector in line:
            outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
            values[outcome] = float(line.rsplit(" ", 1)[1])
    return values


def test_a_malformed_hash_in_the_file_is_a_legacy_error_not_a_crash(
    start_broker: StartBroker, tmp_path: Path
) -> None:
    # Well formed (the load-time check passes it), but no scrypt has N=3 (not a power of 2).
    (tmp_path / "broken.csv").write_text(f"{ALICE[0]},scrypt:3:8:1$salt$00\n")
    env = start_broker({"type": "hash_file", "path": "broken.csv"})
    before = _counter(env.ops_url, "authswitch_broker_hook_calls_total", 'door="generic"')

    answer = env.call("generic", *ALICE)

    assert answer.json() == {"verified": False}
    after = _counter(env.ops_url, "authswitch_broker_hook_calls_total", 'door="generic"')
    assert after["legacy_error"] - before.get("legacy_error", 0.0) == 1.0
