"""Password broker hook latency per front door, against the same work done directly.

    python -m bench.broker_latency          # from the repository root, ~2 minutes

`authswitch serve` (one worker, CPU 0) serves the broker with the `http_login` verifier and the
`kratos` provisioner, both against one fast in-memory upstream (a subprocess on CPU 1), and its
rate limits and locks in the machine's Redis (db 11, a key prefix of its own, deleted after).
The client (CPU 1) calls each door one request at a time (c=1, keep-alive), every call with a
new identifier: `verified` is a right password and a user created (search + create at the
provisioner), `denied` a wrong password (no provisioning).

The reference, measured in the same rounds: `direct`, the client making the same upstream
calls itself (the legacy login; for `verified` also the search and the create). What the broker
adds per hook (authentication, Redis rate limits and lock, JSON, access and audit lines) is the
difference; "x direct" is the ratio of the p50s. 3 rounds in rotated order; medians over rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import redis
import yaml
from aiohttp import web

from bench.processes import PinnedServer, ServerFailed, free_port
from flags import RolloutState, write_rollout_state

DOORS = ("generic", "okta", "kratos", "cognito", "auth0")
OUTCOMES = ("verified", "denied")
_SECRET = secrets.token_hex(24)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--calls", type=int, default=200, help="per door, outcome and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--upstream", type=int, help=argparse.SUPPRESS)  # serve the upstream
    return parser.parse_args()


# -- the upstream: a legacy login endpoint and a Kratos-style admin API, in memory ---------------


def _upstream_app() -> web.Application:
    identities: dict[str, dict[str, Any]] = {}

    async def login(request: web.Request) -> web.Response:
        fields = await request.json()
        ok = fields.get("password") == "pw-" + str(fields.get("username"))
        return web.json_response({"ok": ok}, status=200 if ok else 401)

    async def search(request: web.Request) -> web.Response:
        found = identities.get(request.query["credentials_identifier"].casefold())
        return web.json_response([found] if found else [])

    async def create(request: web.Request) -> web.Response:
        identity = await request.json()
        key = identity["traits"]["email"].casefold()
        if key in identities:
            return web.json_response({"error": {"code": 409}}, status=409)
        identities[key] = {"id": str(len(identities)), "traits": identity["traits"]}
        return web.json_response(identities[key], status=201)

    app = web.Application()
    app.router.add_post("/login", login)
    app.router.add_get("/admin/identities", search)
    app.router.add_post("/admin/identities", create)
    return app


def _serve_upstream(port: int) -> None:
    web.run_app(_upstream_app(), host="127.0.0.1", port=port, access_log=None, print=None)


# -- authswitch with the broker -----------------------------------------------------------------


def _write_files(directory: Path, port: int, upstream: str, redis_url: str, prefix: str) -> Path:
    (directory / "hook-secret").write_text(_SECRET)
    (directory / "connections.yaml").write_text(yaml.safe_dump({"version": 1, "connections": []}))
    write_rollout_state(directory / "flags.yaml", RolloutState())
    config = {
        "listen": {"host": "127.0.0.1", "port": port},
        "ops": {"port": 0},  # several replicas on one machine: any free port
        "legacy": {"url": "http://127.0.0.1:9"},
        "connection_map": "connections.yaml",
        "flags": {"file": "flags.yaml"},
        "routes": [{"path": "/login/callback", "protocol": "saml", "identify": ["saml_issuer"]}],
        "broker": {
            "enabled": True,
            "secret_file": "hook-secret",
            "redis": {"url": redis_url, "key_prefix": prefix},
            "rate_limits": {
                "per_ip": "1000000/minute",
                "per_identifier": "1000/minute",
                "global": "100000/second",
            },
            "verifier": {"type": "http_login", "url": f"{upstream}/login"},
            "provisioner": {"type": "kratos", "url": upstream},
        },
    }
    path = directory / "authswitch.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _hook_body(door: str, identifier: str, password: str) -> dict[str, Any]:
    if door == "okta":
        credential = {"username": identifier, "password": password}
        return {
            "eventType": "com.okta.user.credential.password.import",
            "data": {"context": {"credential": credential}, "action": {"credential": "UNVERIFIED"}},
        }
    if door == "cognito":
        return {
            "version": "1",
            "triggerSource": "UserMigration_Authentication",
            "userName": identifier,
            "request": {"password": password, "validationData": None},
            "response": {},
        }
    if door == "auth0":
        return {"email": identifier, "password": password}
    return {"identifier": identifier, "password": password}


_VERIFIED_STATUS = {"generic": 200, "okta": 200, "kratos": 200, "cognito": 200, "auth0": 200}
_DENIED_STATUS = {"generic": 200, "okta": 200, "kratos": 403, "cognito": 401, "auth0": 401}


class Client:
    def __init__(self, broker: str, upstream: str, session: aiohttp.ClientSession) -> None:
        self._broker = broker
        self._upstream = upstream
        self._session = session
        self._count = 0

    def identifier(self) -> str:
        self._count += 1
        return f"user{self._count}-{uuid.uuid4().hex[:6]}@bench.example"

    async def hook(self, door: str, outcome: str) -> None:
        identifier = self.identifier()
        password = "pw-" + identifier if outcome == "verified" else "wrong"
        async with self._session.post(
            f"{self._broker}/_authswitch/broker/{door}",
            json=_hook_body(door, identifier, password),
            headers={"x-authswitch-broker-secret": _SECRET},
        ) as response:
            body = await response.read()
        expected = (_VERIFIED_STATUS if outcome == "verified" else _DENIED_STATUS)[door]
        if response.status != expected or (door == "generic" and outcome == "verified") != (
            body == b'{"verified":true}'
        ):
            raise RuntimeError(f"{door} {outcome}: {response.status} {body[:200]!r}")

    async def direct(self, outcome: str) -> None:
        """The same upstream calls, made by the client itself."""
        identifier = self.identifier()
        password = "pw-" + identifier if outcome == "verified" else "wrong"
        async with self._session.post(
            f"{self._upstream}/login", json={"username": identifier, "password": password}
        ) as response:
            await response.read()
        if outcome == "denied":
            return
        async with self._session.get(
            f"{self._upstream}/admin/identities", params={"credentials_identifier": identifier}
        ) as response:
            await response.read()
        identity = {
            "schema_id": "default",
            "traits": {"email": identifier},
            "credentials": {"password": {"config": {"password": password}}},
        }
        async with self._session.post(
            f"{self._upstream}/admin/identities", json=identity
        ) as response:
            await response.read()


async def _latencies(call: Callable[[], Awaitable[None]], calls: int) -> list[float]:
    for _ in range(20):
        await call()
    values = []
    for _ in range(calls):
        started = time.perf_counter()
        await call()
        values.append(time.perf_counter() - started)
    return values


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


Point = tuple[float, float, float]  # p50, p99 (seconds), authswitch CPU seconds per call


async def _measure(
    broker: str, upstream: str, server: PinnedServer, calls: int, rounds: int
) -> dict[tuple[str, str], list[Point]]:
    results: dict[tuple[str, str], list[Point]] = {}
    targets = [*DOORS, "direct"]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        client = Client(broker, upstream, session)
        for number in range(rounds):
            order = targets[number % len(targets) :] + targets[: number % len(targets)]
            for target in order:
                for outcome in OUTCOMES:

                    async def call(target: str = target, outcome: str = outcome) -> None:
                        if target == "direct":
                            await client.direct(outcome)
                        else:
                            await client.hook(target, outcome)

                    cpu = server.cpu_seconds()
                    values = await _latencies(call, calls)
                    used = (server.cpu_seconds() - cpu) / (calls + 20)
                    point = (_percentile(values, 0.5), _percentile(values, 0.99), used)
                    results.setdefault((target, outcome), []).append(point)
    return results


def _report(results: dict[tuple[str, str], list[Point]], rounds: int) -> None:
    print()
    print(
        "| door | outcome | p50 | p99 | direct p50 | added p50 | x direct (p50) "
        "| authswitch CPU µs/hook |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for outcome in OUTCOMES:
        reference = results[("direct", outcome)]
        for target in (*DOORS, "direct"):
            points = results[(target, outcome)]
            p50 = statistics.median(p[0] for p in points) * 1e6
            p99 = statistics.median(p[1] for p in points) * 1e6
            # Ratios and differences within each round first, then the median.
            added = statistics.median(
                (p[0] - r[0]) * 1e6 for p, r in zip(points, reference, strict=True)
            )
            ratio = statistics.median(p[0] / r[0] for p, r in zip(points, reference, strict=True))
            direct = statistics.median(r[0] for r in reference) * 1e6
            cpu = (
                "-"
                if target == "direct"
                else f"{statistics.median(p[2] for p in points) * 1e6:.0f}"
            )
            print(
                f"| {target} | {outcome} | {p50:.0f} µs | {p99:.0f} µs | {direct:.0f} µs "
                f"| {added:+.0f} µs | {ratio:.2f} | {cpu} |"
            )
    print(f"\n(medians over {rounds} rounds)")


def main() -> int:
    args = _arguments()
    if args.upstream is not None:
        _serve_upstream(args.upstream)
        return 0
    prefix = f"authswitch-bench:{uuid.uuid4().hex[:12]}"
    client = redis.Redis.from_url(args.redis_url, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        print(f"Redis at {args.redis_url} did not answer: {exc}", file=sys.stderr)
        return 2
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, other_cpu = cpus[0], cpus[-1]
    os.sched_setaffinity(0, {other_cpu})
    servers: list[PinnedServer] = []
    with tempfile.TemporaryDirectory(prefix="authswitch-broker-bench-") as tmp:
        try:
            upstream_port, broker_port = free_port(), free_port()
            upstream = PinnedServer(
                "upstream",
                [sys.executable, "-m", "bench.broker_latency", "--upstream", str(upstream_port)],
                cpu=other_cpu,
                port=upstream_port,
                log_dir=Path(tmp),
            )
            upstream.start()
            servers.append(upstream)
            upstream_url = f"http://127.0.0.1:{upstream_port}"
            config = _write_files(Path(tmp), broker_port, upstream_url, args.redis_url, prefix)
            broker = PinnedServer(
                "authswitch",
                [sys.executable, "-m", "proxy", "serve", "--config", str(config)],
                cpu=server_cpu,
                port=broker_port,
                log_dir=Path(tmp),
            )
            broker.start()
            servers.append(broker)
            print(
                f"authswitch on CPU {server_cpu}, upstream and client on CPU {other_cpu}; "
                f"{args.calls} calls per door and outcome, {args.rounds} rounds, c=1"
            )
            results = asyncio.run(
                _measure(
                    f"http://127.0.0.1:{broker_port}", upstream_url, broker, args.calls, args.rounds
                )
            )
        except ServerFailed as exc:
            print(f"a server did not start: {exc}", file=sys.stderr)
            return 2
        finally:
            for server in servers:
                server.stop()
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            if keys:
                client.delete(*keys)
            client.close()
    _report(results, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
