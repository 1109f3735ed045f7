"""Where a verified `generic` hook's time goes, in-process: rate limits, verify, provision.

    python -m bench.broker_phases           # from the repository root, ~10 s

The broker runs in this process (no HTTP in front), with the same upstream as
`bench/broker_latency.py` in the same event loop and the machine's Redis (db 11, a key prefix of
its own, deleted after). Each phase is timed by wrapping the broker's own objects; 300 hooks,
each with a new identifier, the first 50 dropped; p50 and mean per phase.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis
from aiohttp import web

from bench.broker_latency import _SECRET, _hook_body, _upstream_app, _write_files
from bench.processes import free_port
from proxy.app import AuthSwitch
from proxy.config import load_config

CALLS = 300
WARM_UP = 50
REDIS_URL = "redis://127.0.0.1:6379/11"


def _timed(owner: Any, name: str, label: str, times: dict[str, list[float]]) -> None:
    original: Callable[..., Awaitable[Any]] = getattr(owner, name)

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            times[label].append(time.perf_counter() - started)

    setattr(owner, name, wrapper)


async def _hook(app: AuthSwitch, identifier: str) -> bytes:
    body = json.dumps(_hook_body("generic", identifier, "pw-" + identifier)).encode()
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/_authswitch/broker/generic",
        "raw_path": b"/_authswitch/broker/generic",
        "query_string": b"",
        "headers": [
            (b"x-authswitch-broker-secret", _SECRET.encode()),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 1),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return bytes(sent[-1]["body"])


async def main(prefix: str) -> None:
    runner = web.AppRunner(_upstream_app(), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    with tempfile.TemporaryDirectory(prefix="authswitch-broker-phases-") as tmp:
        upstream = f"http://127.0.0.1:{port}"
        config = load_config(_write_files(Path(tmp), free_port(), upstream, REDIS_URL, prefix))
        app = AuthSwitch(config)
        await app.startup()
        broker = app._broker
        assert broker is not None
        times: dict[str, list[float]] = defaultdict(list)
        _timed(broker._limits, "hit", "rate limits (3, Redis)", times)
        _timed(broker._verifier, "verify", "verify (legacy login)", times)
        _timed(broker._provisioning, "ensure", "provision (lock + search + create)", times)
        _timed(broker._provisioner, "exists", "  search", times)
        _timed(broker._provisioner, "create", "  create", times)
        for number in range(CALLS):
            started = time.perf_counter()
            answer = await _hook(app, f"user{number}-{uuid.uuid4().hex[:6]}@bench.example")
            times["whole hook"].append(time.perf_counter() - started)
            assert answer == b'{"verified":true}', answer
        await app.shutdown()
    await runner.cleanup()
    for label, values in times.items():
        kept = values[WARM_UP:]
        p50, mean = statistics.median(kept) * 1e6, statistics.fmean(kept) * 1e6
        print(f"{label:36} p50 {p50:6.0f} µs   mean {mean:6.0f} µs")


if __name__ == "__main__":
    prefix = f"authswitch-bench:{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(main(prefix))
    finally:
        client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
