"""Outcome webhooks on the public listener: ``POST <prefix>/workos`` and ``<prefix>/generic``.

Each delivery is checked in this order: method, body size, signature (HMAC over timestamp and
raw body, constant-time, tolerance window), replay (the same signature twice is refused), then
parsed. Answers: 200 counted (duplicates included), 400 malformed, 401 bad or stale signature,
409 replay, 413 too large, 503 store unavailable (the sender retries; ids keep it counted once).
Logs and answers carry reason codes only, never the signature, secret or body.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from connection_map import ConnectionMap
from proxy import metrics
from proxy.asgi_types import Receive, Scope, Send
from proxy.config import read_secret_file
from proxy.intake import CallbackRejected, ClientDisconnected, read_body
from proxy.outcomes.counts import Observation, OutcomesUnavailable
from proxy.outcomes.event_intake import EventIntake
from proxy.outcomes.provider_events import (
    EventResult,
    GenericBatch,
    GenericOutcome,
    ProviderConnections,
    WorkosEvent,
    generic_observation,
    workos_observation,
)
from proxy.outcomes.settings import OutcomesSettings
from proxy.outcomes.signatures import SignatureRefused, verify
from proxy.responses import send_json

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
        except CallbackRejected as exc:
            await self._refuse(send, door, exc.status, exc.reason)
            return
        header = _header(scope, door.header)
        now = self._intake.clock()
        try:
            delivery = verify(
                header,
                body,
                door.secret,
                now=now,
                tolerance_seconds=door.tolerance_seconds,
                units_per_second=door.units_per_second,
            )
            results = self._parse(door.source, body, now)
            if results is None:
                await self._refuse(send, door, 400, "malformed")
                return
            tally = await self._intake.ingest_delivery(
                door.source,
                f"{door.source}:{delivery.digest}",
                int(door.tolerance_seconds * 2) + 1,
                results,
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

    def _parse(
        self, source: str, body: bytes, now: float
    ) -> list[tuple[Observation | None, EventResult]] | None:
        try:
            if source == "workos":
                event = WorkosEvent.model_validate_json(body)
                return [
                    workos_observation(
                        event, self._connections, now=now, retention_seconds=self._retention
                    )
                ]
            items = _generic_items(body)
        except (ValidationError, ValueError):
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


def _header(scope: Scope, name: bytes) -> bytes | None:
    values = [value for key, value in scope["headers"] if key == name]
    return values[0] if len(values) == 1 else None


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    return int(value) if value is not None and value.isdigit() else None
