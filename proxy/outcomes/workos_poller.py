"""The WorkOS Events API poller: SSO outcomes since a persisted cursor.

``GET <api_url>/events?events=authentication.sso_succeeded&events=authentication.sso_failed
&limit=100&after=<cursor>`` with the API key as bearer token. Each page is stored first and its
last event id saved as the cursor after: a restart resumes at the cursor (nothing lost), and a
page fetched twice (a crash between the two steps, two replicas) counts nothing twice because
every event id is counted once. Without a cursor the poll starts `FIRST_LOOKBACK` ago.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import aiohttp
import redis
from pydantic import ValidationError

from connection_map import ConnectionMap
from proxy.config import read_secret_file
from proxy.outcomes.counts import OutcomesUnavailable
from proxy.outcomes.event_intake import EventIntake
from proxy.outcomes.provider_events import (
    WORKOS_OUTCOMES,
    ProviderConnections,
    WorkosEventList,
    workos_observation,
)
from proxy.outcomes.settings import WorkosEvents

log = logging.getLogger("authswitch.outcomes")

PAGE_LIMIT = 100
MAX_PAGES_PER_POLL = 50
FIRST_LOOKBACK_SECONDS = 3600.0
SOURCE = "workos"


class PollFailed(Exception):
    """The Events API did not give a usable page; the message has no secret."""


class CursorStore(Protocol):
    def load(self) -> str | None: ...

    def save(self, cursor: str) -> None: ...


class RedisCursor:
    def __init__(self, client: redis.Redis, key: str) -> None:
        self._client, self._key = client, key

    def load(self) -> str | None:
        try:
            raw = self._client.get(self._key)
        except redis.RedisError as exc:
            raise OutcomesUnavailable(f"poller cursor: {type(exc).__name__}: {exc}") from None
        return raw.decode() if isinstance(raw, bytes) else None

    def save(self, cursor: str) -> None:
        try:
            self._client.set(self._key, cursor)
        except redis.RedisError as exc:
            raise OutcomesUnavailable(f"poller cursor: {type(exc).__name__}: {exc}") from None


class FileCursor:
    """The cursor in a small file, replaced atomically."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def load(self) -> str | None:
        try:
            text = self._path.read_text().strip()
        except FileNotFoundError:
            return None
        return text or None

    def save(self, cursor: str) -> None:
        fd, temp = tempfile.mkstemp(dir=self._path.parent, prefix=f".{self._path.name}.")
        with os.fdopen(fd, "w") as handle:
            handle.write(cursor + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, self._path)


class MemoryCursor:
    def __init__(self) -> None:
        self._cursor: str | None = None

    def load(self) -> str | None:
        return self._cursor

    def save(self, cursor: str) -> None:
        self._cursor = cursor


class WorkosPoller:
    def __init__(
        self,
        settings: WorkosEvents,
        intake: EventIntake,
        cursor: CursorStore,
        current_map: Callable[[], ConnectionMap],
        *,
        retention_seconds: float,
    ) -> None:
        assert settings.api_key_file is not None
        self._settings = settings
        self._intake = intake
        self._cursor = cursor
        self._connections = ProviderConnections(current_map)
        self._retention = retention_seconds
        self._url = str(settings.api_url).rstrip("/") + "/events"
        key = read_secret_file(settings.api_key_file, "outcomes.workos.api_key_file", min_bytes=1)
        self._headers = {"Authorization": f"Bearer {key.decode()}", "Accept": "application/json"}
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            headers=self._headers,
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=self._settings.timeout_seconds),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def poll_once(self) -> int:
        """Fetch and count every page after the cursor; returns the number of events read."""
        cursor = await self._intake.call(self._cursor.load)
        assert cursor is None or isinstance(cursor, str)
        read = 0
        for _ in range(MAX_PAGES_PER_POLL):
            page = await self._page(cursor)
            now = self._intake.clock()
            results = [
                workos_observation(
                    event, self._connections, now=now, retention_seconds=self._retention
                )
                if event is not None
                else (None, "ignored")
                for event in page.events()
            ]
            await self._intake.ingest(SOURCE, results)
            read += len(page.data)
            last = page.last_id()
            if last is not None:
                cursor = last
                await self._intake.call(self._cursor.save, cursor)
            if len(page.data) < PAGE_LIMIT:
                break
        await self._intake.source_alive(SOURCE)
        return read

    async def _page(self, cursor: str | None) -> WorkosEventList:
        if self._session is None:
            raise RuntimeError("WorkosPoller.start() was not awaited")
        params: list[tuple[str, str]] = [("events", name) for name in WORKOS_OUTCOMES]
        params.append(("limit", str(PAGE_LIMIT)))
        if cursor is not None:
            params.append(("after", cursor))
        else:
            start = datetime.fromtimestamp(self._intake.clock() - FIRST_LOOKBACK_SECONDS, UTC)
            params.append(("range_start", start.isoformat().replace("+00:00", "Z")))
        try:
            async with self._session.get(self._url, params=params) as response:
                if response.status != 200:
                    raise PollFailed(f"GET {self._url}: HTTP {response.status}")
                body = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PollFailed(f"GET {self._url}: {type(exc).__name__}") from None
        try:
            return WorkosEventList.model_validate_json(body)
        except ValidationError:
            raise PollFailed(f"GET {self._url}: not an event list") from None
