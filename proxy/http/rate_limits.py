"""Requests to a vendor's API that wait out its rate limit, as the vendors document it (the
users export and diff, the connections export).

A 429 is retried after `Retry-After` (seconds or an HTTP date), else after the reset time the
vendor sends (`X-RateLimit-Reset` at Auth0, `X-Rate-Limit-Reset` at Okta: epoch seconds), else
after an exponential back-off; a source can also name answers that mean "throttled" in its own
protocol (Cognito: HTTP 400 `TooManyRequestsException`). Connection errors and 502/503/504 are
retried with the back-off: every request here only reads. The clock and the sleeper are
injected, so tests run a whole rate-limit episode without waiting for it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx


class ApiUnavailable(Exception):
    """The API can't be read (unreachable, refused the credentials, a rate limit that never
    lifts, a malformed answer); the message says what and never carries a credential."""


Sleeper = Callable[[float], Awaitable[None]]
_RESET_HEADERS = ("x-ratelimit-reset", "x-rate-limit-reset")
_RETRIED_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 8  # per request, the first included
    backoff_seconds: float = 1.0  # doubled per attempt
    max_wait_seconds: float = 300.0  # a reset further away than this is waited this long


class RateLimitedClient:
    """An httpx client whose requests wait out 429s and transient failures."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        policy: RetryPolicy | None = None,
        sleep: Sleeper = asyncio.sleep,
        now: Callable[[], float] = time.time,
        throttled: Callable[[httpx.Response], bool] = lambda response: False,
    ) -> None:
        self.client = client
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._now = now
        self._throttled = throttled
        self.waits: list[float] = []  # every wait, in seconds: reported, and checked in tests

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """The answer to the request, after as many waits as the policy allows."""
        what = f"{method} {httpx.URL(url).path}"
        for attempt in range(self.policy.attempts):
            try:
                response = await self.client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                failure = f"{what}: {type(exc).__name__}"
                wait = self._backoff(attempt)
            else:
                if response.status_code not in _RETRIED_STATUSES and not self._throttled(response):
                    return response
                failure = f"{what}: HTTP {response.status_code}"
                wait = self._wait_for(response, attempt)
            if attempt + 1 == self.policy.attempts:
                break
            self.waits.append(wait)
            await self._sleep(wait)
        raise ApiUnavailable(
            f"{failure} after {self.policy.attempts} attempts (rate limited or unavailable); "
            "the state file keeps what was exported: run the same command again to resume"
        )

    async def close(self) -> None:
        await self.client.aclose()

    def _wait_for(self, response: httpx.Response, attempt: int) -> float:
        wait = retry_after(response.headers, self._now())
        return self._backoff(attempt) if wait is None else min(wait, self.policy.max_wait_seconds)

    def _backoff(self, attempt: int) -> float:
        return min(self.policy.backoff_seconds * 2.0**attempt, self.policy.max_wait_seconds)


def retry_after(headers: httpx.Headers, now: float) -> float | None:
    """Seconds to wait, from `Retry-After` or a reset time in epoch seconds; None if neither."""
    value = headers.get("retry-after")
    if value is not None:
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - now)
        except (TypeError, ValueError):
            pass
    for name in _RESET_HEADERS:
        reset = headers.get(name)
        if reset is not None and reset.strip().isdigit():
            # One second more: the vendors' reset is whole seconds, and the window turns after it.
            return max(0.0, int(reset) - now) + 1.0
    return None
