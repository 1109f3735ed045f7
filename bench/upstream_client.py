"""The forwarder's upstream client against aiohttp, in one process, side by side.

Both send the same 8.3 KB POST (a callback's size) to the bench upstream over kept-alive
loopback connections and read the answer to its end: authswitch's `HttpForwarder` (its own
client, `proxy/http/upstream_connection.py`) and an `aiohttp.ClientSession` used as the
raw-ASGI reference proxy uses it (`bench/reference_proxies.py`). Rounds alternate between them;
the figure is the process's CPU time (user and system apart) per forward, and the ratio.

Run: ``python -m bench.upstream_client [--rounds 7] [--requests 3000]``. The process is pinned
to CPU 0 and the upstream to CPU 1 (`taskset`), like the main benchmark.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import uvloop

from bench.processes import PinnedServer, free_port
from proxy.http.asgi_types import Message
from proxy.http.forwarder import HttpForwarder

BODY = b"SAMLResponse=" + b"A" * 8200 + b"&RelayState=bench"
HEADERS = [
    (b"host", b"legacy.example"),
    (b"content-type", b"application/x-www-form-urlencoded"),
    (b"content-length", b"%d" % len(BODY)),
    (b"user-agent", b"bench"),
    (b"x-forwarded-for", b"127.0.0.1"),
    (b"x-forwarded-proto", b"https"),
]
Forward = Callable[[], Awaitable[None]]


async def _discard(message: Message) -> None:
    return None


def _authswitch(forwarder: HttpForwarder, url: str) -> Forward:
    async def forward() -> None:
        await forwarder.forward(
            _discard, method="POST", url=url, headers=HEADERS, body=BODY, resend=False
        )

    return forward


def _aiohttp(session: aiohttp.ClientSession, url: str) -> Forward:
    headers = [(name.decode(), value.decode()) for name, value in HEADERS if name != b"host"]

    async def forward() -> None:
        async with session.request(
            "POST", url, headers=headers, data=BODY, allow_redirects=False
        ) as response:
            async for _ in response.content.iter_any():
                pass

    return forward


async def _cpu_per_forward(forward: Forward, requests: int) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(requests):
        await forward()
    after = resource.getrusage(resource.RUSAGE_SELF)
    user = (after.ru_utime - before.ru_utime) / requests * 1e6
    system = (after.ru_stime - before.ru_stime) / requests * 1e6
    return user, system


async def _measure(url: str, rounds: int, requests: int) -> dict[str, list[tuple[float, float]]]:
    forwarder = HttpForwarder(connect_seconds=3, read_seconds=30, keepalive_seconds=30)
    await forwarder.start()
    session = aiohttp.ClientSession(
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        timeout=aiohttp.ClientTimeout(total=30, connect=3),
    )
    clients = {"authswitch": _authswitch(forwarder, url), "aiohttp": _aiohttp(session, url)}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
    try:
        for forward in clients.values():  # warm up: connections, caches
            await _cpu_per_forward(forward, 300)
        for index in range(rounds):
            order = list(clients.items())
            if index % 2:
                order.reverse()
            for name, forward in order:
                results[name].append(await _cpu_per_forward(forward, requests))
    finally:
        await forwarder.close()
        await session.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="authswitch-bench-") as log_dir:
        return _run(args, port, Path(log_dir))


def _run(args: argparse.Namespace, port: int, log_dir: Path) -> int:
    upstream = PinnedServer(
        "upstream",
        [sys.executable, "-m", "bench.upstream", "--port", str(port)],
        cpu=1,
        port=port,
        log_dir=log_dir,
    )
    upstream.start()
    try:
        os.sched_setaffinity(0, {0})
        results = uvloop.run(
            _measure(f"http://127.0.0.1:{port}/login/callback", args.rounds, args.requests)
        )
    finally:
        upstream.stop()
    print(
        f"CPU µs per forward of an {len(BODY)}-byte POST, {args.rounds} rounds of {args.requests}"
    )
    print("| client | user (median) | system (median) | total (median) | rounds (total) |")
    print("|---|---:|---:|---:|---|")
    totals: dict[str, list[float]] = {}
    for name, rounds in results.items():
        totals[name] = [user + system for user, system in rounds]
        print(
            f"| {name} | {statistics.median(u for u, _ in rounds):.1f} "
            f"| {statistics.median(s for _, s in rounds):.1f} "
            f"| {statistics.median(totals[name]):.1f} "
            f"| {' '.join(f'{t:.0f}' for t in totals[name])} |"
        )
    ratios = [a / b for a, b in zip(totals["authswitch"], totals["aiohttp"], strict=True)]
    print(
        f"authswitch / aiohttp, per round: median {statistics.median(ratios):.2f}"
        f" (range {min(ratios):.2f}-{max(ratios):.2f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
