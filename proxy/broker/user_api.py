"""A new provider's JSON user API over aiohttp, as the WorkOS and Kratos provisioners use it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from proxy.broker.http_client import HttpClient
from proxy.broker.provisioning import ProvisioningFailed


class UserApi(HttpClient):
    """One session per provider; every call has a total deadline; failures name no payload."""

    def __init__(
        self,
        base_url: str,
        *,
        name: str,
        token: str | None,
        timeout_seconds: float,
        headers: dict[str, str] | None = None,  # e.g. an Authorization of another scheme
    ) -> None:
        super().__init__(
            timeout_seconds, token=token, headers={"Accept": "application/json", **(headers or {})}
        )
        self._base = base_url.rstrip("/")
        self._name = name

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """The status and the parsed JSON answer (None when it is not JSON)."""
        assert self._session is not None, "start() first"
        try:
            async with (
                asyncio.timeout(self._timeout),
                self._session.request(
                    method, self._base + path, json=body, params=params, allow_redirects=False
                ) as response,
            ):
                status, raw = response.status, await response.read()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            # aiohttp's messages can quote the request, the password included.
            raise ProvisioningFailed(
                f"{self._name} unreachable ({type(exc).__name__})", unreachable=True
            ) from None
        try:
            return status, json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            return status, None

    def failed(self, what: str, status: int) -> ProvisioningFailed:
        return ProvisioningFailed(f"{self._name} {what} answered {status}", status=status)
