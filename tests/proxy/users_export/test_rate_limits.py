"""Waiting out rate limits as the vendors document them, with an injected clock and sleeper."""

from __future__ import annotations

import asyncio
from email.utils import formatdate

import httpx
import pytest

from proxy.http.rate_limits import ApiUnavailable, RateLimitedClient, RetryPolicy, retry_after

NOW = 1_700_000_000.0


def test_retry_after_in_seconds_as_a_date_or_a_reset_time() -> None:
    assert retry_after(httpx.Headers({"Retry-After": "7"}), NOW) == 7.0
    date = formatdate(NOW + 20, usegmt=True)
    assert retry_after(httpx.Headers({"Retry-After": date}), NOW) == 20.0
    assert retry_after(httpx.Headers({"X-RateLimit-Reset": str(int(NOW) + 5)}), NOW) == 6.0
    assert retry_after(httpx.Headers({"X-Rate-Limit-Reset": str(int(NOW) - 5)}), NOW) == 1.0
    assert retry_after(httpx.Headers({"Retry-After": "soon"}), NOW) is None
    assert retry_after(httpx.Headers({}), NOW) is None


def _run(
    answers: list[httpx.Response | Exception], policy: RetryPolicy
) -> tuple[httpx.Response | ApiUnavailable, list[float]]:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    def handler(request: httpx.Request) -> httpx.Response:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def go() -> httpx.Response | ApiUnavailable:
        client = RateLimitedClient(
            httpx.AsyncClient(transport=httpx.MockTransport(handler)),
            policy=policy,
            sleep=sleep,
            now=lambda: NOW,
        )
        try:
            return await client.request("GET", "http://source.test/api/v1/users?after=x")
        except ApiUnavailable as exc:
            return exc
        finally:
            await client.close()

    return asyncio.run(go()), waits


def test_back_off_doubles_without_a_header_and_is_capped() -> None:
    answers: list[httpx.Response | Exception] = [
        httpx.Response(503),
        httpx.ConnectError("refused"),
        httpx.Response(429),
        httpx.Response(429, headers={"Retry-After": "9999"}),
        httpx.Response(200, json=[]),
    ]
    policy = RetryPolicy(attempts=5, backoff_seconds=1.0, max_wait_seconds=60.0)
    answer, waits = _run(answers, policy)
    assert isinstance(answer, httpx.Response) and answer.status_code == 200
    assert waits == [1.0, 2.0, 4.0, 60.0]


def test_gives_up_after_the_attempts_with_what_to_do() -> None:
    answer, waits = _run([httpx.Response(429)] * 3, RetryPolicy(attempts=3))
    assert isinstance(answer, ApiUnavailable)
    assert "GET /api/v1/users: HTTP 429 after 3 attempts" in str(answer)
    assert "run the same command again to resume" in str(answer)
    assert len(waits) == 2


def test_other_answers_are_returned_at_once() -> None:
    answer, waits = _run([httpx.Response(401)], RetryPolicy())
    assert isinstance(answer, httpx.Response) and answer.status_code == 401 and waits == []


@pytest.mark.parametrize("status", [502, 504])
def test_gateway_errors_are_retried(status: int) -> None:
    answer, waits = _run([httpx.Response(status), httpx.Response(200)], RetryPolicy())
    assert isinstance(answer, httpx.Response) and answer.status_code == 200 and waits == [1.0]
