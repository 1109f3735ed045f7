"""authlib's httpx OAuth 2.0 client vs a plain aiohttp POST, for the password grant.

    .venv/bin/pip install authlib          # bench-only
    .venv/bin/python -m bench.oauth2_clients

Both ask the same local aiohttp token endpoint (same process) 400 times in a row, 3 rounds;
prints the medians of p50, p99 and CPU µs per call (client and endpoint together).
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import time
import warnings
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

CALLS = 400
ROUNDS = 3


async def _token(request: web.Request) -> web.Response:
    form = await request.post()
    if form.get("password") == "pw":
        return web.json_response({"access_token": "t", "token_type": "Bearer"})
    return web.json_response({"error": "invalid_grant"}, status=400)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _measure(call: Callable[[], Awaitable[None]]) -> tuple[float, float, float]:
    for _ in range(30):
        await call()
    latencies = []
    cpu = _cpu()
    for _ in range(CALLS):
        started = time.perf_counter()
        await call()
        latencies.append(time.perf_counter() - started)
    used = (_cpu() - cpu) / CALLS
    latencies.sort()
    return latencies[CALLS // 2] * 1e6, latencies[int(CALLS * 0.99)] * 1e6, used * 1e6


async def main() -> None:
    warnings.simplefilter("ignore")  # authlib 1.9 warns that its httpx path is deprecated
    from authlib.integrations.httpx_client import AsyncOAuth2Client

    app = web.Application()
    app.router.add_post("/token", _token)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    url = f"http://127.0.0.1:{port}/token"
    form = {"grant_type": "password", "username": "u", "password": "pw"}
    async with (
        AsyncOAuth2Client("cid", "csecret", timeout=2) as client,
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session,
    ):

        async def with_authlib() -> None:
            await client.fetch_token(url, username="u", password="pw", grant_type="password")

        async def with_aiohttp() -> None:
            headers = {"authorization": "Basic Y2lkOmNzZWNyZXQ="}
            async with session.post(url, data=form, headers=headers) as response:
                assert "access_token" in await response.json()

        results: dict[str, list[tuple[float, float, float]]] = {}
        for _ in range(ROUNDS):
            for name, call in (("authlib+httpx", with_authlib), ("aiohttp", with_aiohttp)):
                results.setdefault(name, []).append(await _measure(call))
    await runner.cleanup()
    medians = {
        name: [statistics.median(row[i] for row in rows) for i in range(3)]
        for name, rows in results.items()
    }
    for name, (p50, p99, cpu) in medians.items():
        ratio = cpu / medians["aiohttp"][2]
        print(f"{name:14} p50 {p50:6.0f} µs  p99 {p99:6.0f} µs  ", end="")
        print(f"CPU {cpu:6.0f} µs/call  x{ratio:.1f}")


if __name__ == "__main__":
    asyncio.run(main())
