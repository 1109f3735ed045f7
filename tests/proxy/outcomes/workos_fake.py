"""A WorkOS stand-in for the tests: events in WorkOS's documented shapes, a signed webhook
sender, and an Events API (`GET /events`) served over loopback."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import httpx

from proxy.outcomes.signatures import signature_header
from tests.conftest import answer_lifespan

API_KEY = "sk_test_SEEKRIT_api_key_0123456789"
WEBHOOK_SECRET = b"whsec_SEEKRIT_webhook_secret"


def sso_event(
    event_id: str, connection_id: str, *, succeeded: bool, at: float | None = None
) -> dict[str, Any]:
    """An `authentication.sso_succeeded` / `sso_failed` event as WorkOS sends it."""
    created = datetime.fromtimestamp(at if at is not None else time.time(), UTC)
    data: dict[str, Any] = {
        "type": "sso",
        "status": "succeeded" if succeeded else "failed",
        "user_id": "user_01E4ZCR3C5A4QZ2Z2JQXGKZJ9E",
        "email": "todd@example.com",
        "ip_address": "192.0.2.1",
        "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)",
        "sso": {
            "organization_id": "org_01EHWNCE74X7JSDV0X3SZ3KJNY",
            "connection_id": connection_id,
            "session_id": "sso_session_01HBS4FSHF4MRE4YRXTDTTJQ8N",
        },
    }
    if not succeeded:
        data["error"] = {"code": "invalid_saml_response", "message": "The SAML response failed"}
    return {
        "object": "event",
        "id": event_id,
        "event": "authentication.sso_succeeded" if succeeded else "authentication.sso_failed",
        "data": data,
        "created_at": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "context": {},
    }


def send_webhook(
    url: str,
    event: dict[str, Any],
    *,
    secret: bytes = WEBHOOK_SECRET,
    timestamp_ms: int | None = None,
    body: bytes | None = None,
    header: str | None = None,
) -> httpx.Response:
    """POST one event the way WorkOS delivers it (`WorkOS-Signature: t=<ms>, v1=<hex>`)."""
    raw = body if body is not None else json.dumps(event).encode()
    stamp = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
    signature = header if header is not None else signature_header(secret, stamp, raw)
    return httpx.post(
        url,
        content=raw,
        headers={"content-type": "application/json", "workos-signature": signature},
        timeout=5,
    )


class FakeEventsApi:
    """`GET /events` with `events`, `after`, `limit`, `range_start`; bearer API key required."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.requests: list[dict[str, list[str]]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        headers = dict(scope["headers"])
        query = parse_qs(scope["query_string"].decode())
        self.requests.append(query)
        if headers.get(b"authorization") != f"Bearer {API_KEY}".encode():
            await _json(send, 401, {"message": "Unauthorized"})
            return
        if scope["path"] != "/events" or not query.get("events"):
            await _json(send, 422, {"message": "events is required"})
            return
        wanted = set(query["events"])
        limit = int(query.get("limit", ["10"])[0])
        matching = [event for event in self.events if event["event"] in wanted]
        after = query.get("after", [None])[0]
        if after is not None:
            ids = [event["id"] for event in matching]
            matching = matching[ids.index(after) + 1 :] if after in ids else []
        page = matching[:limit]
        await _json(
            send,
            200,
            {
                "object": "list",
                "data": page,
                "list_metadata": {"after": page[-1]["id"] if page else None},
            },
        )


async def _json(send: Any, status: int, payload: object) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
