"""Calling another service (legacy, the new provider): one aiohttp session per client, no
cookie jar, a total deadline per request, the bearer token when there is one."""

from __future__ import annotations

import aiohttp


class HttpClient:
    """`start()` opens the session, `close()` closes it; subclasses call `self._session`."""

    def __init__(
        self,
        timeout_seconds: float,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        connections: int = 100,  # aiohttp's default connection limit
    ) -> None:
        self._timeout = timeout_seconds
        self._headers = dict(headers or {})
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            headers=self._headers,
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            connector=aiohttp.TCPConnector(limit=self._connections),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
