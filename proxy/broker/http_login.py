"""The legacy verifier over the legacy system's own HTTP login endpoint."""

from __future__ import annotations

import asyncio

import aiohttp

from proxy.broker.credential import Credential
from proxy.broker.http_client import HttpClient
from proxy.broker.verifier import LegacyUnavailable, Profile


class HttpLoginVerifier(HttpClient):
    """POSTs the credential as the legacy login form or JSON API expects it.

    The configured statuses mean "verified"; any other 4xx means "not verified"; a 5xx, a
    refused connection or no complete answer within `timeout_seconds` (a total deadline, not
    aiohttp's inactivity timeout) means legacy could not answer.
    """

    def __init__(
        self,
        url: str,
        *,
        body: str,
        template: dict[str, str],
        success_status: tuple[int, ...],
        timeout_seconds: float,
    ) -> None:
        self._url = url
        self._json = body == "json"
        self._template = template
        self._success = frozenset(success_status)
        super().__init__(timeout_seconds)

    async def verify(self, credential: Credential) -> Profile | None:
        assert self._session is not None, "start() first"
        fields = {
            name: value.replace("{identifier}", credential.identifier).replace(
                "{password}", credential.password.reveal()
            )
            for name, value in self._template.items()
        }
        json_body, form_body = (fields, None) if self._json else (None, fields)
        try:
            async with (
                asyncio.timeout(self._timeout),
                self._session.post(
                    self._url, json=json_body, data=form_body, allow_redirects=False
                ) as response,
            ):
                await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientError, OSError):
            # aiohttp's messages can quote the request; only the kind of failure goes on.
            raise LegacyUnavailable("legacy login endpoint unreachable or too slow") from None
        if status in self._success:
            return Profile()  # the answer's body is not read for attributes
        if status >= 500:
            raise LegacyUnavailable(f"legacy login endpoint answered {status}")
        return None
