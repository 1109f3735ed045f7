"""How long a flag flip takes to reach every replica: 4 `authswitch serve` processes, one Redis.

    python -m bench.propagation            # from the repository root, with the project's venv

Each replica runs with the Redis flag backend under a key prefix of its own run. The script
flips one connection's flag (through the same store `authswitch flags` writes with), then asks
every replica over HTTP, about once a millisecond, where a login for that connection would start
(the flow-affinity decision endpoint, i.e. the decision a callback gets), until each answers the
new route. A flip's propagation time runs from just before the write to the moment the slowest
replica answered; the distribution over all flips is printed. Goal: p99 <= 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis
import yaml

from bench.processes import PinnedServer, ServerFailed, free_port
from flags import RedisKeys, RedisRolloutStore, RolloutState
from flags.redis.keys import connect

CONNECTION = "bench-oidc"
GOAL_P99_MS = 100.0
_SECRET = secrets.token_hex(16)
_PROBE = (
    f"GET /_authswitch/flows/start?connection={CONNECTION}&flow=probe HTTP/1.1\r\n"
    f"host: bench\r\nx-authswitch-secret: {_SECRET}\r\n\r\n"
).encode()


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--flips", type=int, default=300)
    parser.add_argument("--poll-ms", type=float, default=1.0, help="pause between two probes")
    parser.add_argument("--timeout-ms", type=float, default=5000, help="give up on a flip")
    return parser.parse_args()


def _write_files(directory: Path, port: int, redis_url: str, prefix: str) -> Path:
    (directory / "flow-secret").write_text(_SECRET)
    (directory / "connections.yaml").write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "connections": [
                    {
                        "id": CONNECTION,
                        "protocol": "oidc",
                        "new_provider": {"url": "https://new.example/callback"},
                    }
                ],
            }
        )
    )
    config = {
        "listen": {"host": "127.0.0.1", "port": port},
        "ops": {"port": 0},  # several replicas on one machine: any free port
        "legacy": {"url": "http://127.0.0.1:9"},
        "connection_map": "connections.yaml",
        "flags": {"backend": "redis", "redis": {"url": redis_url, "key_prefix": prefix}},
        "routes": [
            {"path": "/oidc/{connection}/callback", "protocol": "oidc", "identify": ["path"]}
        ],
        # The probe records a flow per answer: kept in the replica's memory, not in Redis.
        "flow_affinity": {"enabled": True, "secret_file": "flow-secret", "store": "memory"},
        "logging": {"level": "warning"},
    }
    path = directory / "authswitch.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


class Probe:
    """One keep-alive HTTP/1.1 connection to a replica, asking where the connection goes."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def route(self) -> str:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self._reader is not None
        self._writer.write(_PROBE)
        head = await self._reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await self._reader.readexactly(length)
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"replica on {self.port} answered {head[:40]!r}: {body[:200]!r}")
        return "new" if b'"provider":"new"' in body else "legacy"

    async def wait_for(self, expected: str, started: float, poll: float, deadline: float) -> float:
        while True:
            if await self.route() == expected:
                return time.perf_counter() - started
            if time.perf_counter() > deadline:
                raise TimeoutError(f"replica on {self.port} still not {expected}")
            await asyncio.sleep(poll)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


async def _measure(
    store: RedisRolloutStore, probes: list[Probe], flips: int, poll: float, give_up: float
) -> tuple[list[float], list[list[float]]]:
    slowest: list[float] = []
    per_replica: list[list[float]] = [[] for _ in probes]
    for flip in range(flips):
        expected = "new" if flip % 2 == 0 else "legacy"
        current = store.read()
        overrides = {CONNECTION: "on"} if expected == "new" else {}
        wanted = current.model_copy(update={"overrides": overrides})
        started = time.perf_counter()
        store.write(current.version, wanted, actor="bench", reason="propagation", action="bench")
        deadline = started + give_up
        times = await asyncio.gather(
            *(probe.wait_for(expected, started, poll, deadline) for probe in probes)
        )
        for index, seconds in enumerate(times):
            per_replica[index].append(seconds)
        slowest.append(max(times))
        await asyncio.sleep(random.uniform(0.02, 0.06))  # off any resync rhythm
    for probe in probes:
        probe.close()
    return slowest, per_replica


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _print_distribution(slowest: list[float], per_replica: list[list[float]]) -> bool:
    ms = [value * 1000 for value in slowest]
    print(f"\nflips: {len(ms)}   time until every replica answers the new route (ms)")
    p50, p90, p99 = (_percentile(ms, q) for q in (0.5, 0.9, 0.99))
    print(
        f"  p50 {p50:.1f}  p90 {p90:.1f}  p99 {p99:.1f}  max {max(ms):.1f}  "
        f"mean {statistics.fmean(ms):.1f}  min {min(ms):.1f}"
    )
    edges = [1, 2, 5, 10, 20, 50, 100, 250, 1000, float("inf")]
    low = 0.0
    for edge in edges:
        count = sum(1 for value in ms if low < value <= edge or (low == 0 and value == 0))
        label = f"<= {edge:g} ms" if edge != float("inf") else "> 1000 ms"
        print(f"  {label:>12}  {count:5d}  {'#' * round(60 * count / len(ms))}")
        low = edge
    for index, values in enumerate(per_replica):
        replica_ms = [value * 1000 for value in values]
        print(
            f"  replica {index + 1}: p50 {_percentile(replica_ms, 0.5):.1f}  "
            f"p99 {_percentile(replica_ms, 0.99):.1f}  max {max(replica_ms):.1f}"
        )
    verdict = "met" if p99 <= GOAL_P99_MS else "MISSED"
    print(f"goal p99 <= {GOAL_P99_MS:.0f} ms: {verdict} ({p99:.1f} ms)")
    return p99 <= GOAL_P99_MS


def main() -> int:
    args = _arguments()
    prefix = f"authswitch-bench:{uuid.uuid4().hex[:12]}"
    client = connect(args.redis_url, socket_timeout=2, client_name="authswitch-bench")
    try:
        client.ping()
    except redis.RedisError as exc:
        print(f"Redis at {args.redis_url} did not answer: {exc}", file=sys.stderr)
        return 2
    store = RedisRolloutStore(client, RedisKeys(prefix), url=args.redis_url)
    store.write(0, RolloutState(), actor="bench", reason="propagation", action="bench")
    servers: list[PinnedServer] = []
    cpus = max(1, len(os.sched_getaffinity(0)))
    with tempfile.TemporaryDirectory(prefix="authswitch-propagation-") as tmp:
        try:
            for number in range(args.replicas):
                directory = Path(tmp) / f"replica{number + 1}"
                directory.mkdir()
                port = free_port()
                config = _write_files(directory, port, args.redis_url, prefix)
                argv = [sys.executable, "-m", "proxy", "serve", "--config", str(config)]
                server = PinnedServer(
                    f"replica{number + 1}", argv, cpu=number % cpus, port=port, log_dir=Path(tmp)
                )
                server.start()
                servers.append(server)
            probes = [Probe(server.port) for server in servers]
            print(
                f"{args.replicas} replicas on {cpus} CPU(s), Redis {args.redis_url}, "
                f"{args.flips} flips, probing every {args.poll_ms:g} ms"
            )
            slowest, per_replica = asyncio.run(
                _measure(store, probes, args.flips, args.poll_ms / 1000, args.timeout_ms / 1000)
            )
        except ServerFailed as exc:
            print(f"a replica did not start: {exc}", file=sys.stderr)
            return 2
        finally:
            for server in servers:
                server.stop()
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            if keys:
                client.delete(*keys)
            client.close()
    return 0 if _print_distribution(slowest, per_replica) else 1


if __name__ == "__main__":
    sys.exit(main())
