"""The outcome webhooks over real HTTP: WorkOS signatures, replays, the generic webhook."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from proxy.app import AuthSwitch
from proxy.config import load_config
from proxy.demo.loopback_server import LoopbackServer
from proxy.outcomes.signatures import signature_header
from tests.proxy.outcomes.outcome_env import (
    AUTH0_TOKEN,
    CONNECTIONS,
    GENERIC_SECRET,
    write_outcome_files,
)
from tests.proxy.outcomes.workos_fake import WEBHOOK_SECRET, send_webhook, sso_event

WORKOS = "/_authswitch/outcomes/workos"
GENERIC = "/_authswitch/outcomes/generic"


@pytest.fixture
def proxy(tmp_path: Path, providers: dict[str, LoopbackServer]) -> Iterator[tuple[str, AuthSwitch]]:
    outcomes = {
        "workos": {"enabled": True, "webhook_secret_file": "webhook-secret"},
        "generic": {"enabled": True, "secret_file": "generic-secret"},
        "auth0": {
            "enabled": True,
            "token_file": "auth0-token",
            "connections": {"Fabrikam-SAML": "fabrikam"},
        },
        "guard": {"mode": "off"},
    }
    config = write_outcome_files(
        tmp_path, providers["legacy"].url, providers["new"].url, outcomes=outcomes
    )
    app = AuthSwitch(load_config(config))
    with LoopbackServer(app, name="authswitch") as server:
        yield server.url, app


def _new_side(app: AuthSwitch, connection: str) -> tuple[int, int]:
    assert app._outcomes is not None
    minute = int(time.time() // 60)
    tally = app._outcomes.store.tally(connection, minute - 10, minute + 2)
    return tally.judged("new", "events")


def test_a_signed_workos_event_is_counted_once_for_its_connection(
    proxy: tuple[str, AuthSwitch],
) -> None:
    url, app = proxy
    event = sso_event("event_01A", CONNECTIONS["contoso"], succeeded=False)

    first = send_webhook(url + WORKOS, event)
    again = send_webhook(url + WORKOS, event)  # WorkOS redelivers: a new signature, same id

    assert first.status_code == 200 and first.json()["counted"] == 1
    assert again.status_code == 200 and again.json() == {
        "status": "ok",
        "duplicate": 1,
        "counted": 0,
    }
    assert _new_side(app, "contoso") == (0, 1)


def test_wrong_signature_stale_timestamp_and_replay_are_refused(
    proxy: tuple[str, AuthSwitch],
) -> None:
    url, app = proxy
    event = sso_event("event_01B", CONNECTIONS["northwind"], succeeded=True)

    wrong = send_webhook(url + WORKOS, event, secret=b"not-the-secret")
    stale = send_webhook(url + WORKOS, event, timestamp_ms=int((time.time() - 600) * 1000))
    future = send_webhook(url + WORKOS, event, timestamp_ms=int((time.time() + 600) * 1000))
    missing = httpx.post(url + WORKOS, json=event, timeout=5)
    garbage = send_webhook(url + WORKOS, event, header="t=abc, v1=00")
    assert (wrong.status_code, wrong.json()) == (401, {"error": "bad_signature"})
    assert (stale.status_code, stale.json()) == (401, {"error": "stale"})
    assert (future.status_code, future.json()) == (401, {"error": "stale"})
    assert (missing.status_code, garbage.status_code) == (401, 401)
    assert _new_side(app, "northwind") == (0, 0)

    body = json.dumps(event).encode()
    header = signature_header(WEBHOOK_SECRET, int(time.time() * 1000), body)
    accepted = send_webhook(url + WORKOS, event, body=body, header=header)
    replayed = send_webhook(url + WORKOS, event, body=body, header=header)
    assert accepted.status_code == 200
    assert (replayed.status_code, replayed.json()) == (409, {"error": "replay"})
    # The same signature over another body does not pass either.
    tampered = body.replace(b"sso_succeeded", b"sso_failed")
    forged = send_webhook(url + WORKOS, event, body=tampered, header=header)
    assert forged.status_code == 401
    assert _new_side(app, "northwind") == (1, 0)


def test_malformed_unmapped_and_oversized_deliveries(proxy: tuple[str, AuthSwitch]) -> None:
    url, app = proxy
    not_json = send_webhook(url + WORKOS, {}, body=b"{not json")
    unknown = send_webhook(url + WORKOS, sso_event("event_01C", "conn_UNKNOWN", succeeded=True))
    other = sso_event("event_01D", CONNECTIONS["contoso"], succeeded=True)
    other["event"] = "user.created"
    ignored = send_webhook(url + WORKOS, other)
    huge = send_webhook(url + WORKOS, {}, body=b"{" + b" " * (2 * 1024 * 1024) + b"}")
    get = httpx.get(url + WORKOS, timeout=5)

    assert (not_json.status_code, not_json.json()) == (400, {"error": "malformed"})
    assert unknown.status_code == 200 and unknown.json()["unmapped"] == 1
    assert ignored.status_code == 200 and ignored.json()["ignored"] == 1
    assert huge.status_code == 413
    assert get.status_code == 405
    assert _new_side(app, "contoso") == (0, 0)


def _generic(url: str, payload: Any, *, secret: bytes = GENERIC_SECRET) -> httpx.Response:
    body = json.dumps(payload).encode()
    header = signature_header(secret, int(time.time()), body)
    return httpx.post(
        url + GENERIC,
        content=body,
        headers={"content-type": "application/json", "x-authswitch-signature": header},
        timeout=5,
    )


def test_generic_webhook_counts_outcomes_by_either_connection_id(
    proxy: tuple[str, AuthSwitch],
) -> None:
    url, app = proxy
    now = time.time()
    batch = {
        "events": [
            {"id": "g-1", "connection": "fabrikam", "outcome": "succeeded", "timestamp": now},
            {
                "id": "g-2",
                "provider_connection_id": CONNECTIONS["fabrikam"],
                "outcome": "failed",
                "timestamp": now,
            },
            {"id": "g-3", "connection": "nobody", "outcome": "failed", "timestamp": now},
        ]
    }
    response = _generic(url, batch)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "unmapped": 1, "counted": 2, "duplicate": 0}
    assert _new_side(app, "fabrikam") == (1, 1)

    assert _generic(url, batch, secret=b"wrong-secret-wrong-secret").status_code == 401
    bad = _generic(
        url, {"id": "g-4", "connection": "fabrikam", "outcome": "maybe", "timestamp": now}
    )
    assert bad.status_code == 400
    assert _new_side(app, "fabrikam") == (1, 1)


def _auth0_record(log_id: str, kind: str, connection: str) -> dict[str, Any]:
    """A log record as an Auth0 log stream (custom webhook) delivers it."""
    return {
        "log_id": log_id,
        "data": {
            "date": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "type": kind,
            "description": "Login",
            "connection": connection,
            "connection_id": "con_2cd3Fnl8IeHnh0Oi",
            "client_id": "AaiyAPdpYdesoKnqjj8HJqRn4T5titww",
            "ip": "192.0.2.1",
            "user_id": "samlp|acme|alice",
            "user_name": "alice@example.com",
        },
    }


def test_auth0_log_stream_counts_the_legacy_side(proxy: tuple[str, AuthSwitch]) -> None:
    url, app = proxy
    records = [
        _auth0_record("900001", "s", "contoso"),
        _auth0_record("900002", "f", "contoso"),
        _auth0_record("900003", "s", "Fabrikam-SAML"),
        _auth0_record("900004", "sapi", "contoso"),  # not a login
        _auth0_record("900005", "s", "unknown-connection"),
    ]
    headers = {"authorization": AUTH0_TOKEN.decode(), "content-type": "application/json"}
    first = httpx.post(url + "/_authswitch/outcomes/auth0", json=records, headers=headers)
    assert first.json() == {
        "status": "ok",
        "ignored": 1,
        "unmapped": 1,
        "counted": 3,
        "duplicate": 0,
    }
    # Redelivered, as JSON lines this time: nothing counted twice.
    lines = "\n".join(json.dumps(r) for r in records[:2])
    again = httpx.post(url + "/_authswitch/outcomes/auth0", content=lines, headers=headers)
    assert again.json()["duplicate"] == 2 and again.json()["counted"] == 0
    wrong = httpx.post(
        url + "/_authswitch/outcomes/auth0", json=records, headers={"authorization": "Bearer x"}
    )
    assert wrong.status_code == 401

    minute = int(time.time() // 60)
    assert app._outcomes is not None
    store = app._outcomes.store
    assert store.tally("contoso", minute - 5, minute + 2).judged("legacy", "events") == (1, 1)
    assert store.tally("fabrikam", minute - 5, minute + 2).judged("legacy", "events") == (1, 0)


def test_hostile_signature_headers_and_deep_json_get_a_4xx_not_a_500(
    proxy: tuple[str, AuthSwitch],
) -> None:
    """A superscript digit in the timestamp (int() refuses what str.isdigit() takes), and a
    validly signed but deeply nested body, are refusals like any other malformed delivery."""
    url, _ = proxy
    superscript = httpx.post(
        url + GENERIC,
        content=b"{}",
        headers={"x-authswitch-signature": "t=\u00b2, v1=00".encode("latin-1")},
        timeout=5,
    )
    workos = httpx.post(
        url + WORKOS,
        content=b"{}",
        headers={"workos-signature": "t=\u00b9\u00b2, v1=00".encode("latin-1")},
        timeout=5,
    )
    body = b"[" * 50_000 + b"]" * 50_000
    header = signature_header(GENERIC_SECRET, int(time.time()), body)
    deep = httpx.post(
        url + GENERIC,
        content=body,
        headers={"content-type": "application/json", "x-authswitch-signature": header},
        timeout=5,
    )
    assert superscript.status_code == 401
    assert workos.status_code == 401
    assert (deep.status_code, deep.json()) == (400, {"error": "malformed"})
