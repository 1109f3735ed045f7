"""Outcome webhooks on the public listener: ``POST <prefix>/workos`` and ``<prefix>/generic``.

Each delivery is checked in this order: method, body size, signature (HMAC over timestamp and
raw body, constant-time, tolerance window), replay (the same signature twice is refused), then
parsed. Answers: 200 counted (duplicates included), 400 malformed, 401 bad or stale signature,
409 replay, 413 too large, 503 store unavailable (the sender retries; ids keep it counted once).
Logs and answers carry reason codes only, never the signature, secret or body.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from connection_map import ConnectionMap
from proxy.config import read_secret_file
from proxy.http.asgi_types import Receive, Scope, Send
from proxy.http.request_body import ClientDisconnected, RequestRejected, read_body
from proxy.http.responses import send_json
from proxy.ops import metrics
from proxy.outcomes.counts import Observation, Outcome, OutcomesUnavailable
from proxy.outcomes.event_intake import EventIntake
from proxy.outcomes.provider_events import (
    Auth0LogRecord,
    EventResult,
    GenericBatch,
    GenericOutcome,
    ProviderConnections,
    WorkosEvent,
    auth0_observation,
    generic_observation,
    workos_observation,
)
from proxy.outcomes.settings import OutcomesSettings
from proxy.outcomes.signatures import SignatureRefused, verify

log = logging.getLogger("authswitch.outcomes")

WORKOS_SIGNATURE_HEADER = b"workos-signature"
GENERIC_SIGNATURE_HEADER = b"x-authswitch-signature"
_BODY_SECONDS = 10.0


@dataclass(frozen=True)
class _Door:
    source: str
    header: bytes
    secret: bytes
    tolerance_seconds: float
    units_per_second: int
    # "hmac": t=..., v1=... over timestamp and body; "token": the header is the secret (Auth0
    # log streams sign nothing; their record ids keep a redelivery counted once).
    scheme: str = "hmac"


class OutcomeWebhooks:
    """Raw ASGI endpoint for the configured webhook sources."""

    def __init__(
        self,
        settings: OutcomesSettings,
        intake: EventIntake,
        current_map: Callable[[], ConnectionMap],
    ) -> None:
        self.prefix = settings.path_prefix + "/"
        self._settings = settings
        self._intake = intake
        self._connections = ProviderConnections(current_map)
        self._retention = settings.retention_days * 86_400
        self._doors: dict[str, _Door] = {}
        workos, generic = settings.workos, settings.generic
        if workos.enabled and workos.webhook_secret_file is not None:
            secret = read_secret_file(
                workos.webhook_secret_file, "outcomes.workos.webhook_secret_file", min_bytes=8
            )
            self._doors["workos"] = _Door(
                "workos", WORKOS_SIGNATURE_HEADER, secret, workos.tolerance_seconds, 1000
            )
        if generic.enabled and generic.secret_file is not None:
            secret = read_secret_file(
                generic.secret_file, "outcomes.generic.secret_file", min_bytes=16
            )
            self._doors["generic"] = _Door(
                "generic", GENERIC_SIGNATURE_HEADER, secret, generic.tolerance_seconds, 1
            )
        auth0 = settings.auth0
        if auth0.enabled and auth0.token_file is not None:
            token = read_secret_file(auth0.token_file, "outcomes.auth0.token_file", min_bytes=16)
            self._doors["auth0"] = _Door("auth0", b"authorization", token, 0, 1, "token")
            self._auth0_outcomes: dict[str, Outcome] = {
                **{name: "failed" for name in auth0.failure_types},
                **{name: "succeeded" for name in auth0.success_types},
            }
            self._auth0_names = dict(auth0.connections)

    @property
    def enabled(self) -> bool:
        return bool(self._doors)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        door = self._doors.get(scope["path"][len(self.prefix) :])
        if door is None:
            await send_json(send, 404, {"error": "not_found"})
            return
        if scope["method"] != "POST":
            await send_json(send, 405, {"error": "method_not_allowed"}, [(b"allow", b"POST")])
            return
        try:
            body = await read_body(
                receive, _content_length(scope), self._settings.max_body_bytes, _BODY_SECONDS
            )
        except ClientDisconnected:
            return
        except RequestRejected as exc:
            await self._refuse(send, door, exc.status, exc.reason)
            return
        header = _header(scope, door.header)
        now = self._intake.clock()
        try:
            replay_key = self._authenticate(door, header, body, now)
            results = self._parse(door.source, body, now)
            if results is None:
                await self._refuse(send, door, 400, "malformed")
                return
            tally = await self._intake.ingest_delivery(
                door.source, replay_key, int(door.tolerance_seconds * 2) + 1, results
            )
            if tally is None:
                await self._refuse(send, door, 409, "replay")
                return
        except SignatureRefused as exc:
            await self._refuse(send, door, 401, exc.problem)
            return
        except OutcomesUnavailable as exc:
            log.warning("outcome webhook not stored: %s", exc)
            await self._refuse(send, door, 503, "unavailable")
            return
        metrics.OUTCOME_WEBHOOK_REQUESTS.labels(door.source, "accepted").inc()
        await send_json(send, 200, {"status": "ok", **tally})

    @staticmethod
    def _authenticate(door: _Door, header: bytes | None, body: bytes, now: float) -> str | None:
        """The replay key of a verified delivery (None for token doors); else refused."""
        if door.scheme == "token":
            if header is None or not hmac.compare_digest(header, door.secret):
                raise SignatureRefused("bad_signature")
            return None
        delivery = verify(
            header,
            body,
            door.secret,
            now=now,
            tolerance_seconds=door.tolerance_seconds,
            units_per_second=door.units_per_second,
        )
        return f"{door.source}:{delivery.digest}"

    def _parse(
        self, source: str, body: bytes, now: float
    ) -> list[tuple[Observation | None, EventResult]] | None:
        try:
            if source == "auth0":
                return [
                    auth0_observation(
                        record,
                        self._connections,
                        outcomes=self._auth0_outcomes,
                        names=self._auth0_names,
                        now=now,
                        retention_seconds=self._retention,
                    )
                    for record in _auth0_records(body)
                ]
            if source == "workos":
                event = WorkosEvent.model_validate_json(body)
                return [
                    workos_observation(
                        event, self._connections, now=now, retention_seconds=self._retention
                    )
                ]
            items = _generic_items(body)
        except (ValidationError, ValueError, RecursionError):  # deep nesting: malformed, not 500
            return None
        return [
            generic_observation(item, self._connections, now=now, retention_seconds=self._retention)
            for item in items
        ]

    async def _refuse(self, send: Send, door: _Door, status: int, reason: str) -> None:
        metrics.OUTCOME_WEBHOOK_REQUESTS.labels(door.source, reason).inc()
        log.info(
            "outcome webhook refused", extra={"fields": {"source": door.source, "reason": reason}}
        )
        await send_json(send, status, {"error": reason})


def _generic_items(body: bytes) -> list[GenericOutcome]:
    """One outcome object, or ``{"events": [...]}`` (at most 1000)."""
    document = json.loads(body)
    if isinstance(document, dict) and "events" in document:
        return list(GenericBatch.model_validate(document).events)
    return [GenericOutcome.model_validate(document)]


def _auth0_records(body: bytes) -> list[Auth0LogRecord]:
    """A JSON array, JSON lines or one JSON object (the stream's "content format")."""
    text = body.strip()
    if text.startswith(b"["):
        items = json.loads(text)
        if not isinstance(items, list) or len(items) > 10_000:
            raise ValueError("not a log array")
        return [Auth0LogRecord.model_validate(item) for item in items]
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > 10_000:
        raise ValueError("too many log lines")
    return [Auth0LogRecord.model_validate_json(line) for line in lines]


def _header(scope: Scope, name: bytes) -> bytes | None:
    values = [value for key, value in scope["headers"] if key == name]
    return values[0] if len(values) == 1 else None


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    return int(value) if value is not None and value.isdigit() else None
