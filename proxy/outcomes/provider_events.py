"""Provider events as outcome observations: WorkOS events and the generic outcome webhook.

Only the fields a count needs are read (type, id, time, connection); the models ignore the
rest, so a user's email, id or IP address in an event never gets past parsing.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
    model_validator,
)

from connection_map import ConnectionMap
from proxy.outcomes.counts import MAX_EVENT_ID_LENGTH, Observation, Outcome, Side

WORKOS_OUTCOMES: dict[str, Outcome] = {
    "authentication.sso_succeeded": "succeeded",
    "authentication.sso_failed": "failed",
}
# How far in the future an event's time may be (clock skew) before it is refused.
FUTURE_SKEW_SECONDS = 300


def _plain_id(value: str) -> str:
    if any(ch.isspace() or unicodedata.category(ch)[0] == "C" for ch in value):
        raise ValueError("must not contain whitespace or control characters")
    return value


PlainId = Annotated[
    StrictStr, Field(min_length=1, max_length=MAX_EVENT_ID_LENGTH), AfterValidator(_plain_id)
]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class WorkosSso(_Lenient):
    connection_id: PlainId | None = None


class WorkosEventData(_Lenient):
    sso: WorkosSso | None = None


class WorkosEvent(_Lenient):
    """A WorkOS event object (``object: "event"``), as the Events API and webhooks send it."""

    id: PlainId
    event: Annotated[StrictStr, Field(max_length=200)]
    created_at: datetime
    data: WorkosEventData = WorkosEventData()


class WorkosEventList(_Lenient):
    """``GET /events``: ``{"object": "list", "data": [...], "list_metadata": {...}}``.

    Items stay raw here: one odd event must not stop the poller (`events()` skips it)."""

    data: list[dict[str, Any]]

    def events(self) -> list[WorkosEvent | None]:
        """Each item as an event, or None where it isn't one."""
        parsed: list[WorkosEvent | None] = []
        for item in self.data:
            try:
                parsed.append(WorkosEvent.model_validate(item))
            except ValidationError:
                parsed.append(None)
        return parsed

    def last_id(self) -> str | None:
        """The cursor after this page: the last item's id."""
        last = self.data[-1].get("id") if self.data else None
        return last if isinstance(last, str) and 0 < len(last) <= MAX_EVENT_ID_LENGTH else None


class GenericOutcome(BaseModel):
    """One outcome reported by the generic webhook."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: PlainId
    connection: PlainId | None = None
    provider_connection_id: PlainId | None = None
    side: Literal["legacy", "new"] = "new"
    outcome: Literal["succeeded", "failed"]
    timestamp: datetime

    @model_validator(mode="after")
    def _one_connection(self) -> GenericOutcome:
        if (self.connection is None) == (self.provider_connection_id is None):
            raise ValueError("give one of 'connection' and 'provider_connection_id'")
        return self


class GenericBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    events: Annotated[list[GenericOutcome], Field(min_length=1, max_length=1000)]


class ProviderConnections:
    """The new provider's connection ids -> authswitch's, rebuilt when the map is swapped."""

    def __init__(self, current_map: Callable[[], ConnectionMap]) -> None:
        self._current = current_map
        self._built_for: ConnectionMap | None = None
        self._index: dict[str, str] = {}

    def resolve(self, provider_connection_id: str) -> str | None:
        current = self._current()
        if current is not self._built_for:
            self._index = {
                c.new_provider.connection_id: c.id
                for c in current
                if c.new_provider is not None and c.new_provider.connection_id
            }
            self._built_for = current
        return self._index.get(provider_connection_id)

    def known(self, connection_id: str) -> bool:
        return self._current().get(connection_id) is not None


def _minute(moment: datetime, now: float, retention_seconds: float) -> int | None:
    stamp = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    if stamp > now + FUTURE_SKEW_SECONDS or stamp < now - retention_seconds:
        return None
    return int(stamp // 60)


EventResult = Literal["counted", "unmapped", "ignored"]


def workos_observation(
    event: WorkosEvent, connections: ProviderConnections, *, now: float, retention_seconds: float
) -> tuple[Observation | None, EventResult]:
    """The new-side observation an SSO event stands for, or why there is none."""
    outcome = WORKOS_OUTCOMES.get(event.event)
    minute = _minute(event.created_at, now, retention_seconds)
    if outcome is None or minute is None:
        return None, "ignored"
    provider_id = event.data.sso.connection_id if event.data.sso else None
    connection = connections.resolve(provider_id) if provider_id else None
    if connection is None:
        return None, "unmapped"
    return Observation(connection, "new", "events", outcome, minute, f"workos:{event.id}"), (
        "counted"
    )


def generic_observation(
    item: GenericOutcome, connections: ProviderConnections, *, now: float, retention_seconds: float
) -> tuple[Observation | None, EventResult]:
    minute = _minute(item.timestamp, now, retention_seconds)
    if minute is None:
        return None, "ignored"
    if item.connection is not None:
        connection = item.connection if connections.known(item.connection) else None
    else:
        assert item.provider_connection_id is not None
        connection = connections.resolve(item.provider_connection_id)
    if connection is None:
        return None, "unmapped"
    side: Side = item.side
    return Observation(connection, side, "events", item.outcome, minute, f"generic:{item.id}"), (
        "counted"
    )


class Auth0LogData(_Lenient):
    date: datetime
    type: Annotated[StrictStr, Field(max_length=32)]
    connection: PlainId | None = None


class Auth0LogRecord(_Lenient):
    """One record of an Auth0 log stream (custom webhook): ``{"log_id", "data": {...}}``."""

    log_id: PlainId
    data: Auth0LogData


def auth0_observation(
    record: Auth0LogRecord,
    connections: ProviderConnections,
    *,
    outcomes: dict[str, Outcome],
    names: dict[str, str],
    now: float,
    retention_seconds: float,
) -> tuple[Observation | None, EventResult]:
    """The legacy-side observation of a login log record, or why there is none."""
    outcome = outcomes.get(record.data.type)
    minute = _minute(record.data.date, now, retention_seconds)
    if outcome is None or minute is None:
        return None, "ignored"
    name = record.data.connection
    connection = names.get(name, name) if name is not None else None
    if connection is None or not connections.known(connection):
        return None, "unmapped"
    observation = Observation(
        connection, "legacy", "events", outcome, minute, f"auth0:{record.log_id}"
    )
    return observation, "counted"
