"""From a failing connection's evidence to every replica sending it to legacy.

    python -m bench.guard_reaction         # from the repository root, ~30 s

Two `authswitch serve` processes share one Redis (flags, outcome counts, the guard's lease;
guard in mode `enforce`, a round every `--interval` seconds). For each of `--rounds`
connections: an SRE turns it on; signed WorkOS `authentication.sso_failed` webhooks arrive for
it (six, alternating replicas: enough for the guard's test); a prober asks both replicas, about
once a millisecond, where that connection's callback goes. Printed per round and as percentiles:

- decision -> every replica on legacy: from the guard's audit record (its time stamp) to the
  moment the slowest replica answered legacy (goal: p99 <= 1 s);
- last event -> every replica on legacy: includes the wait for the guard's next round (up to
  `--interval`) and its Redis reads.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import redis
import yaml

from bench.processes import PinnedServer, free_port
from flags import RedisKeys, RedisRolloutStore, RolloutState
from flags.redis.keys import connect
from proxy.outcomes.signatures import signature_header

SECRET = secrets.token_hex(16).encode()
GOAL_P99_SECONDS = 1.0


def _write(
    directory: Path, redis_url: str, prefix: str, port: int, ids: list[str], interval: float
) -> Path:
    connections = [
        {
            "id": cid,
            "protocol": "oidc",
            "new_provider": {"url": f"https://new.example/{cid}", "connection_id": f"conn_{cid}"},
        }
        for cid in ids
    ]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "connections.yaml").write_text(
        yaml.safe_dump({"version": 1, "connections": connections})
    )
    (directory / "secret").write_bytes(SECRET)
    config = {
        "listen": {"host": "127.0.0.1", "port": port},
        "ops": {"port": 0},  # several replicas on one machine: any free port
        "legacy": {"url": "http://127.0.0.1:9"},
        "connection_map": "connections.yaml",
        "flags": {"backend": "redis", "redis": {"url": redis_url, "key_prefix": prefix}},
        "routes": [
            {"path": "/oidc/{connection}/callback", "protocol": "oidc", "identify": ["path"]}
        ],
        "logging": {"level": "warning"},
        "timeouts": {"connect_seconds": 0.2},
        "outcomes": {
            "enabled": True,
            "workos": {"enabled": True, "webhook_secret_file": "secret"},
            "guard": {"mode": "enforce", "interval_seconds": interval, "lease_seconds": 5},
        },
    }
    path = directory / "authswitch.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _routes_to_new(client: httpx.Client, base: str, connection: str) -> bool:
    # Legacy (port 9) is unreachable here: a 502 means the callback went to legacy.
    return client.get(f"{base}/oidc/{connection}/callback?code=c&state=s").status_code == 302


def _fail_event(connection: str) -> bytes:
    created = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps(
        {
            "object": "event",
            "id": f"event_{uuid.uuid4().hex}",
            "event": "authentication.sso_failed",
            "data": {
                "type": "sso",
                "status": "failed",
                "sso": {"connection_id": f"conn_{connection}"},
            },
            "created_at": created,
        }
    ).encode()


def _round(
    client: httpx.Client, bases: list[str], store: RedisRolloutStore, connection: str
) -> tuple[float, float]:
    state = store.read()
    store.write(
        state.version,
        RolloutState.model_validate(
            {**state.model_dump(), "overrides": {**state.overrides, connection: "on"}}
        ),
        actor="bench",
        reason="canary",
        action="enable",
    )
    while not all(_routes_to_new(client, base, connection) for base in bases):
        time.sleep(0.001)
    # Six failures, as a burst: enough for the guard's test against the default baseline
    # (p0 0.05, p1 0.2: each failure adds ln 4 to the log likelihood ratio, threshold ln 500).
    for number in range(6):
        body = _fail_event(connection)
        header = signature_header(SECRET, int(time.time() * 1000), body)
        response = client.post(
            bases[number % 2] + "/_authswitch/outcomes/workos",
            content=body,
            headers={"content-type": "application/json", "workos-signature": header},
        )
        response.raise_for_status()
    last_event = time.time()
    while any(_routes_to_new(client, base, connection) for base in bases):
        time.sleep(0.001)
    everywhere = time.time()
    record = store.history(1)[0]
    assert record.actor == "guard"
    decided = datetime.fromisoformat(record.time.replace("Z", "+00:00")).timestamp()
    return everywhere - decided, everywhere - last_event


def _describe(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"p50 {1000 * statistics.median(ordered):.0f} ms, p99 {1000 * p99:.0f} ms, "
        f"max {1000 * ordered[-1]:.0f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.5, help="guard round, seconds")
    args = parser.parse_args(argv)
    prefix = f"bench-guard:{uuid.uuid4().hex[:8]}"
    ids = [f"conn-{n}" for n in range(args.rounds)]
    raw = redis.Redis.from_url(args.redis_url)
    servers: list[PinnedServer] = []
    try:
        with tempfile.TemporaryDirectory() as scratch:
            for number in range(2):
                port = free_port()
                config = _write(
                    Path(scratch) / f"r{number}", args.redis_url, prefix, port, ids, args.interval
                )
                server = PinnedServer(
                    f"replica{number}",
                    [sys.executable, "-m", "proxy", "serve", "--config", str(config)],
                    cpu=number % 2,
                    port=port,
                    log_dir=Path(scratch),
                )
                server.start()
                servers.append(server)
            bases = [f"http://127.0.0.1:{s.port}" for s in servers]
            store = RedisRolloutStore(
                connect(args.redis_url, socket_timeout=2, client_name="bench"), RedisKeys(prefix)
            )
            reach, reaction = [], []
            with httpx.Client(timeout=5) as client:
                for connection in ids:
                    after_decision, after_event = _round(client, bases, store, connection)
                    reach.append(after_decision)
                    reaction.append(after_event)
        print(f"guard interval {args.interval:g} s, {args.rounds} connections killed, 2 replicas")
        print(
            f"decision -> every replica on legacy: {_describe(reach)} "
            f"(goal p99 <= {GOAL_P99_SECONDS:g} s)"
        )
        print(f"last failing event -> every replica on legacy: {_describe(reaction)}")
    finally:
        for server in servers:
            server.stop()
        keys = list(raw.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            raw.delete(*keys)
        raw.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
