"""Outcome ingestion into Redis, and what it costs the callback path.

    python -m bench.outcome_ingestion      # from the repository root, ~1 minute

1. Store: `RedisOutcomeStore.add` with WorkOS-style event ids (one Lua `SET NX` + `HINCRBY`
   per event, pipelined in batches of 100, as a poller page is stored): events/s.
2. Webhooks: signed WorkOS `authentication.sso_*` deliveries, one event per POST, to an
   `authswitch serve` process over loopback with 8 concurrent senders; and generic-webhook
   deliveries of 100 outcomes each: events/s.
3. Callback latency: the proxy's p50 / p90 for a redirect-mode OIDC callback (sequential, one
   keep-alive client), idle and while webhooks arrive at `--background-rate` events/s (the
   callbacks' own outcomes are recorded too). Senders and server share the machine's CPUs.

Redis: --redis-url (default db 11 of the local server), keys under a prefix of the run's own,
deleted afterwards. The server is pinned to CPU 0, the senders run in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import redis
import yaml

from bench.processes import PinnedServer, free_port
from flags import RolloutState, write_rollout_state
from proxy.outcomes.counts import Observation
from proxy.outcomes.redis_counts import RedisOutcomeStore
from proxy.outcomes.signatures import signature_header

GOAL_EVENTS_PER_SECOND = 2000
CONNECTIONS = [f"bench-{n}" for n in range(20)]
SECRET = secrets.token_hex(16).encode()


def store_rate(client: redis.Redis, prefix: str, events: int) -> float:
    store = RedisOutcomeStore(client, prefix, retention_seconds=3600, dedupe_seconds=3600)
    minute = int(time.time() // 60)
    batch: list[Observation] = []
    started = time.perf_counter()
    for number in range(events):
        batch.append(
            Observation(
                CONNECTIONS[number % len(CONNECTIONS)],
                "new",
                "events",
                "succeeded" if number % 50 else "failed",
                minute,
                f"workos:event_{number:026d}",
            )
        )
        if len(batch) == 100:
            store.add(batch)
            batch = []
    store.add(batch)
    return events / (time.perf_counter() - started)


def _event(number: int) -> bytes:
    created = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    connection = CONNECTIONS[number % len(CONNECTIONS)]
    return json.dumps(
        {
            "object": "event",
            "id": f"event_{uuid.uuid4().hex}",
            "event": "authentication.sso_succeeded",
            "data": {
                "type": "sso",
                "status": "succeeded",
                "sso": {"connection_id": f"conn_{connection}"},
            },
            "created_at": created,
        }
    ).encode()


async def webhook_rate(
    url: str, events: int, senders: int, stop: threading.Event | None, per_second: float = 0
) -> float:
    sent = 0
    started = time.perf_counter()

    async def sender(client: httpx.AsyncClient) -> None:
        nonlocal sent
        while sent < events and not (stop is not None and stop.is_set()):
            sent += 1
            if per_second:  # paced: the n-th event leaves at n / per_second
                await asyncio.sleep(max(0.0, started + sent / per_second - time.perf_counter()))
            body = _event(sent)
            header = signature_header(SECRET, int(time.time() * 1000), body)
            response = await client.post(
                url,
                content=body,
                headers={"content-type": "application/json", "workos-signature": header},
            )
            response.raise_for_status()

    async with httpx.AsyncClient(timeout=10) as client:
        await asyncio.gather(*(sender(client) for _ in range(senders)))
    return sent / (time.perf_counter() - started)


async def generic_batch_rate(url: str, batches: int, senders: int) -> float:
    """Generic webhook deliveries of 100 outcomes each: events/s."""
    sent = 0

    async def sender(client: httpx.AsyncClient) -> None:
        nonlocal sent
        while sent < batches:
            sent += 1
            now = time.time()
            events = [
                {
                    "id": uuid.uuid4().hex,
                    "connection": CONNECTIONS[n % len(CONNECTIONS)],
                    "outcome": "succeeded",
                    "timestamp": now,
                }
                for n in range(100)
            ]
            body = json.dumps({"events": events}).encode()
            header = signature_header(SECRET, int(now), body)
            response = await client.post(
                url,
                content=body,
                headers={"content-type": "application/json", "x-authswitch-signature": header},
            )
            response.raise_for_status()

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(sender(client) for _ in range(senders)))
    return sent * 100 / (time.perf_counter() - started)


def callback_latency(base: str, count: int) -> tuple[float, float]:
    samples = []
    with httpx.Client(timeout=10) as client:
        for _ in range(count):
            started = time.perf_counter()
            response = client.get(base + f"/oidc/{CONNECTIONS[0]}/callback?code=c&state=s")
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 302, response.status_code
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.9)]


def _write_files(
    directory: Path, redis_url: str, prefix: str, port: int, *, outcomes: bool = True
) -> Path:
    connections = [
        {
            "id": cid,
            "protocol": "oidc",
            "new_provider": {
                "url": f"https://new.example/{cid}",
                "mode": "redirect",
                "connection_id": f"conn_{cid}",
            },
        }
        for cid in CONNECTIONS
    ]
    (directory / "connections.yaml").write_text(
        yaml.safe_dump({"version": 1, "connections": connections})
    )
    write_rollout_state(directory / "flags.yaml", RolloutState(stage_percent=100))
    (directory / "webhook-secret").write_bytes(SECRET)
    config = {
        "listen": {"host": "127.0.0.1", "port": port},
        "ops": {"port": 0},  # several replicas on one machine: any free port
        "legacy": {"url": "http://127.0.0.1:9"},
        "connection_map": "connections.yaml",
        "flags": {"file": "flags.yaml"},
        "routes": [
            {"path": "/oidc/{connection}/callback", "protocol": "oidc", "identify": ["path"]}
        ],
        "logging": {"level": "warning"},
        "outcomes": {
            "enabled": outcomes,
            "store": "redis",
            "redis": {"url": redis_url, "key_prefix": prefix},
            "workos": {"enabled": True, "webhook_secret_file": "webhook-secret"},
            "generic": {"enabled": True, "secret_file": "webhook-secret"},
            "guard": {"mode": "observe"},
        },
    }
    path = directory / "authswitch.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _latency_without_outcomes(
    scratch: Path, args: argparse.Namespace, prefix: str
) -> tuple[float, float]:
    """The same proxy with `outcomes.enabled: false`: the reference for (3)."""
    directory = scratch / "reference"
    directory.mkdir()
    port = free_port()
    config = _write_files(directory, args.redis_url, prefix, port, outcomes=False)
    server = PinnedServer(
        "reference",
        [sys.executable, "-m", "proxy", "serve", "--config", str(config)],
        cpu=0,
        port=port,
        log_dir=directory,
    )
    server.start()
    try:
        base = f"http://127.0.0.1:{port}"
        callback_latency(base, 200)
        return callback_latency(base, args.callbacks)
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--webhooks", type=int, default=3_000)
    parser.add_argument("--callbacks", type=int, default=1_000)
    parser.add_argument(
        "--background-rate", type=float, default=200, help="webhook events/s during (3)"
    )
    args = parser.parse_args(argv)
    prefix = f"bench-outcomes:{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(args.redis_url)
    try:
        rate = store_rate(client, prefix, args.events)
        print(f"store: {rate:,.0f} events/s into Redis (goal >= {GOAL_EVENTS_PER_SECOND:,})")
        with tempfile.TemporaryDirectory() as scratch:
            without = _latency_without_outcomes(Path(scratch), args, prefix)
            port = free_port()
            config = _write_files(Path(scratch), args.redis_url, prefix, port)
            server = PinnedServer(
                "authswitch",
                [sys.executable, "-m", "proxy", "serve", "--config", str(config)],
                cpu=0,
                port=port,
                log_dir=Path(scratch),
            )
            server.start()
            base = f"http://127.0.0.1:{port}"
            try:
                callback_latency(base, 200)  # warm-up
                idle = callback_latency(base, args.callbacks)
                rate = asyncio.run(
                    webhook_rate(base + "/_authswitch/outcomes/workos", args.webhooks, 8, None)
                )
                print(
                    f"WorkOS webhooks: {rate:,.0f} events/s (one event per signed POST, 8 senders)"
                )
                rate = asyncio.run(
                    generic_batch_rate(base + "/_authswitch/outcomes/generic", 200, 4)
                )
                print(f"generic webhook: {rate:,.0f} events/s (100 outcomes per POST, 4 senders)")
                stop = threading.Event()
                flood = threading.Thread(
                    target=lambda: asyncio.run(
                        webhook_rate(
                            base + "/_authswitch/outcomes/workos",
                            10**9,
                            4,
                            stop,
                            args.background_rate,
                        )
                    ),
                    daemon=True,
                )
                flood.start()
                time.sleep(0.5)
                busy = callback_latency(base, args.callbacks)
                stop.set()
                flood.join(timeout=10)
            finally:
                server.stop()
        print(f"callback latency without outcomes: p50 {without[0]:.2f} ms p90 {without[1]:.2f} ms")
        print(
            f"callback latency (redirect mode): idle p50 {idle[0]:.2f} ms p90 {idle[1]:.2f} ms; "
            f"with {args.background_rate:g} webhook events/s running p50 {busy[0]:.2f} ms "
            f"p90 {busy[1]:.2f} ms"
        )
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
