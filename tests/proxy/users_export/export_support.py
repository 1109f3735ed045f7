"""Running an export source into a state file in-process, with an injected clock and sleeper."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from proxy.http.rate_limits import RateLimitedClient, RetryPolicy
from proxy.users_export import ExportState, ExportSummary, UserSource, export_users

NOW = 1_700_000_000.0  # the injected wall clock, in epoch seconds


class Sleeper:
    """Records each wait instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def client(
    sleeper: Sleeper, *, headers: dict[str, str] | None = None, **kwargs: Any
) -> RateLimitedClient:
    return RateLimitedClient(
        httpx.AsyncClient(headers=headers or {}, timeout=10, auth=kwargs.pop("auth", None)),
        policy=RetryPolicy(attempts=4),
        sleep=sleeper,
        now=lambda: NOW,
        **kwargs,
    )


def export(source: UserSource, out: Path) -> ExportSummary:
    async def run() -> ExportSummary:
        state = ExportState.open(out, source.identity)
        try:
            return await export_users(source, state)
        finally:
            await source.close()

    return asyncio.run(run())


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(text) for text in path.read_text().splitlines() if text.strip()]
