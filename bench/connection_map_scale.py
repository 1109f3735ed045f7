"""How the connection map scales: load time, memory and lookup cost at 1k and 100k connections.

    python -m bench.connection_map_scale            # from the repository root, ~3 minutes
    python -m bench.connection_map_scale --sizes 1000,10000 --no-redis

Generates realistic maps (two thirds SAML with an IdP entity id, a signing certificate, an SSO
URL, the legacy ACS URL and SP entity id, an organisation; one third OIDC with its own callback
path, client id and discovery URL; every connection with a new-provider target), writes each as
the YAML file and as the Redis doc, then, in a fresh process per measurement (so one doesn't
inherit another's heap): the time to read, validate and index it, the RSS it adds (from
/proc/self/statm), and the cost of a lookup by id, by Issuer and by callback path. With Redis
(db 11, a key prefix of its own, deleted afterwards) it also times a push and how long a
following replica takes to swap to the pushed map.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

REDIS_URL = "redis://127.0.0.1:6379/11"
LOOKUPS = 200_000


def generate(count: int, certificates: list[str]) -> dict[str, Any]:
    """A map document of `count` connections, as the YAML file / Redis doc hold it."""
    connections: list[dict[str, Any]] = []
    for n in range(count):
        org = f"org{n:06d}"
        if n % 3 == 2:
            cid = f"{org}-oidc"
            connections.append(
                {
                    "id": cid,
                    "protocol": "oidc",
                    "name": f"Org {n} OIDC",
                    "external_id": f"ext-{n}",
                    "organization": {"id": f"org_{n:08x}", "name": f"Organisation {n}"},
                    "oidc": {
                        "callback_path": f"/oauth2/callback/{cid}",
                        "client_id": f"client-{uuid.UUID(int=n).hex}",
                        "discovery_url": f"https://login.{org}.example.com/.well-known/openid-configuration",
                    },
                    "legacy": {
                        "callback_url": f"https://login.legacy.example/oauth2/callback/{cid}"
                    },
                    "new_provider": {
                        "url": f"https://auth.new.example/oidc/{cid}/callback",
                        "mode": "form_post",
                    },
                }
            )
            continue
        cid = f"{org}-saml"
        connections.append(
            {
                "id": cid,
                "protocol": "saml",
                "name": f"Org {n} SAML",
                "external_id": f"ext-{n}",
                "organization": {
                    "id": f"org_{n:08x}",
                    "name": f"Organisation {n}",
                    "domains": [f"{org}.example.com"],
                },
                "saml": {
                    "idp_entity_id": f"http://www.okta.com/exk{n:017d}",
                    "idp_sso_urls": [
                        {
                            "url": f"https://{org}.okta.example/app/sso/saml",
                            "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect",
                        }
                    ],
                    "signing_certificates": [certificates[n % len(certificates)]],
                    "name_id_format": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
                },
                "legacy": {
                    "callback_url": f"https://login.legacy.example/sso/{cid}/acs",
                    "sp_entity_id": "https://login.legacy.example/saml/metadata",
                },
                "new_provider": {
                    "url": f"https://auth.new.example/saml/{cid}/acs",
                    "mode": "redirect",
                    "connection_id": f"conn_{n:012x}",
                },
            }
        )
    return {"version": 1, "connections": connections}


def signing_certificates(count: int) -> list[str]:
    from proxy.demo.keys import generate_keypair

    pems = [generate_keypair(f"idp-{n}").cert_pem for n in range(count)]
    return [pem.decode() if isinstance(pem, bytes) else pem for pem in pems]


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


# -- measurements, each in a fresh process ------------------------------------------------------


def _measure_load(kind: str, source: str) -> dict[str, Any]:
    """The file loader, or a replica's first sync from Redis (fetch, validate, index, swap)."""
    import redis

    from connection_map import load_connection_map
    from connection_map.redis_follower import RedisConnectionMap
    from connection_map.redis_store import MapKeys

    gc.collect()
    before = _rss_mb()
    started = time.perf_counter()
    if kind == "yaml":
        index = load_connection_map(source)
    else:
        url, prefix = source.rsplit(" ", 1)
        follower = RedisConnectionMap(
            redis.Redis.from_url(url, socket_timeout=30), MapKeys(prefix), where="bench"
        )
        follower.sync_now()
        index = follower.current
        assert follower.loaded, follower.health().last_error
    seconds = time.perf_counter() - started
    gc.collect()
    result: dict[str, Any] = {
        "connections": len(index),
        "load_seconds": seconds,
        "rss_added_mb": _rss_mb() - before,
    }
    return result | _lookups(index)


def _lookups(index: Any) -> dict[str, float]:
    connections = list(index)
    rng = random.Random(7)
    sample = [rng.choice(connections) for _ in range(LOOKUPS)]
    ids = [c.id for c in sample]
    issuers = [c.idp_entity_id for c in sample if c.idp_entity_id is not None]
    paths = [c.callback_path for c in sample if c.callback_path is not None]
    figures = {}
    # Fresh strings, as a request's parsed id / Issuer / path are: no cached hash, no identity.
    for name, method, keys in (
        ("get", index.get, ids),
        ("by_issuer", index.by_issuer, issuers),
        ("by_callback_path", index.by_callback_path, paths),
    ):
        best = float("inf")
        for _ in range(5):
            keys = [key.encode().decode() for key in keys]
            started = time.perf_counter_ns()
            for key in keys:
                method(key)
            best = min(best, (time.perf_counter_ns() - started) / len(keys))
        figures[f"{name}_ns"] = best
    return figures


def _measure_push(url: str, prefix: str, doc_path: str) -> dict[str, Any]:
    """A replica's follower while another process pushes a new version: how long until it
    swapped, and the longest its event loop would have waited meanwhile.

    Then, as the side-by-side reference, the whole map (every field) written as one line of
    JSON where replicas read, which the follower has to validate in one piece: what a replica
    did before it read only the routing fields, one connection per line, in chunks.
    """
    import redis

    from connection_map.redis_follower import RedisConnectionMap
    from connection_map.redis_store import MapKeys

    keys = MapKeys(prefix)
    client = redis.Redis.from_url(url, socket_timeout=30)
    follower = RedisConnectionMap(
        redis.Redis.from_url(url, socket_timeout=30), keys, where="bench", resync_seconds=5
    )
    follower.start()
    version = follower.current.version
    command = [sys.executable, "-m", "bench.connection_map_scale", "--child", "pusher"]
    pusher = subprocess.Popen([*command, url, prefix, doc_path], stdout=subprocess.PIPE, text=True)
    stall, swapped_at = _stall_until(lambda: follower.current.version == version + 1)
    pushed = json.loads(pusher.communicate()[0])

    one_line = json.loads(zlib.decompress(Path(doc_path).read_bytes()))
    one_line["version"] = version + 2
    client.set(keys.served, zlib.compress(json.dumps(one_line, separators=(",", ":")).encode()))
    client.set(keys.version, one_line["version"])
    client.publish(keys.changed, one_line["version"])
    one_line_started = time.time()
    one_line_stall, one_line_swapped = _stall_until(
        lambda: follower.current.version == one_line["version"]
    )
    follower.close()
    return {
        "push_seconds": pushed["push_seconds"],
        "swap_after_push_seconds": swapped_at - pushed["pushed_at"],
        "longest_stall_ms": stall * 1000,
        "one_line_swap_seconds": one_line_swapped - one_line_started,
        "one_line_stall_ms": one_line_stall * 1000,
    }


def _push(url: str, prefix: str, doc_path: str) -> dict[str, Any]:
    """`connections push` of the doc with its version bumped (timed from validated to stored)."""
    import redis

    from connection_map.redis_store import MapKeys, RedisMapStore, parse_map_doc

    store = RedisMapStore(redis.Redis.from_url(url, socket_timeout=30), MapKeys(prefix))
    document = parse_map_doc(Path(doc_path).read_bytes(), "bench")
    newer = document.model_copy(update={"version": document.version + 1})
    started = time.perf_counter()
    store.push(newer, expected_version=document.version, actor="bench", reason="bench")
    return {"push_seconds": time.perf_counter() - started, "pushed_at": time.time()}


def _stall_until(done: Any) -> tuple[float, float]:
    """What the event loop of a replica would feel while the follower builds on its thread:
    the longest a thread that wants to run every 1 ms has to wait; and when (wall clock)
    `done` held."""
    longest_wait = 0.0
    while not done():
        before = time.perf_counter()
        time.sleep(0.001)
        longest_wait = max(longest_wait, time.perf_counter() - before - 0.001)
    return longest_wait, time.time()


def _child(args: list[str]) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.connection_map_scale", "--child", *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"measurement {args[0]} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# -- orchestration -----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--no-redis", action="store_true")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "push":
            print(json.dumps(_measure_push(*rest)))
        elif kind == "pusher":
            print(json.dumps(_push(*rest)))
        else:
            print(json.dumps(_measure_load(kind, " ".join(rest))))
        return

    import redis
    import yaml

    from connection_map.model import ConnectionMapDocument
    from connection_map.redis_store import (
        MapKeys,
        RedisMapStore,
        render_map_doc,
        render_served_doc,
    )

    certificates = signing_certificates(8)
    rows: list[tuple[int, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory() as scratch:
        for size in (int(s) for s in args.sizes.split(",")):
            document = generate(size, certificates)
            yaml_path = Path(scratch) / f"connections-{size}.yaml"
            dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
            yaml_path.write_text(yaml.dump(document, Dumper=dumper, sort_keys=False))
            # What `connections push` stores (the generator makes valid maps).
            validated = ConnectionMapDocument.model_validate(document)
            doc = render_map_doc(validated)
            figures: dict[str, Any] = {
                "yaml_mb": yaml_path.stat().st_size / 1e6,
                "doc_mb": len(doc) / 1e6,
                "served_mb": len(render_served_doc(validated)) / 1e6,
            }
            figures["yaml"] = _child(["yaml", str(yaml_path)])
            if not args.no_redis:
                client = redis.Redis.from_url(REDIS_URL)
                prefix = f"authswitch-bench:{uuid.uuid4().hex[:12]}"
                try:
                    RedisMapStore(client, MapKeys(prefix)).push(
                        validated, expected_version=None, actor="bench", reason="bench"
                    )
                    figures["redis"] = _child(["redis", REDIS_URL, prefix])
                    doc_path = Path(scratch) / f"doc-{size}.bin"
                    doc_path.write_bytes(doc)
                    figures["push"] = _child(["push", REDIS_URL, prefix, str(doc_path)])
                finally:
                    for key in client.scan_iter(match=f"{prefix}:*"):
                        client.delete(key)
                    client.close()
            rows.append((size, figures))
            print(f"{size} connections measured", file=sys.stderr)
    _print(rows)


def _print(rows: list[tuple[int, dict[str, Any]]]) -> None:
    print(f"python {sys.version.split()[0]}, libyaml: {_libyaml()}")
    header = (
        f"{'connections':>11} | {'file MB':>7} | {'doc MB':>6} | {'served MB':>9} | "
        f"{'file load s':>11} | {'file RSS MB':>11} | {'doc load s':>10} | {'doc RSS MB':>10} | "
        f"{'push s':>6} | {'swap s':>6} | {'stall ms':>8} | "
        f"{'1-line full swap s':>18} | {'1-line full stall ms':>20}"
    )
    print(header)
    print("-" * len(header))
    for size, f in rows:
        redis_f, push_f = f.get("redis", {}), f.get("push", {})
        print(
            f"{size:>11} | {f['yaml_mb']:>7.1f} | {f['doc_mb']:>6.1f} | {f['served_mb']:>9.1f} | "
            f"{f['yaml']['load_seconds']:>11.2f} | {f['yaml']['rss_added_mb']:>11.0f} | "
            f"{redis_f.get('load_seconds', float('nan')):>10.2f} | "
            f"{redis_f.get('rss_added_mb', float('nan')):>10.0f} | "
            f"{push_f.get('push_seconds', float('nan')):>6.2f} | "
            f"{push_f.get('swap_after_push_seconds', float('nan')):>6.2f} | "
            f"{push_f.get('longest_stall_ms', float('nan')):>8.1f} | "
            f"{push_f.get('one_line_swap_seconds', float('nan')):>18.2f} | "
            f"{push_f.get('one_line_stall_ms', float('nan')):>20.1f}"
        )
    print()
    print(f"lookup ns (best of 5 x {LOOKUPS} random keys):")
    print(f"{'connections':>11} | {'by id':>6} | {'by Issuer':>9} | {'by callback path':>16}")
    for size, f in rows:
        y = f.get("redis", f["yaml"])
        print(
            f"{size:>11} | {y['get_ns']:>6.0f} | {y['by_issuer_ns']:>9.0f} | "
            f"{y['by_callback_path_ns']:>16.0f}"
        )
    if len(rows) >= 2:
        small = rows[0][1].get("redis", rows[0][1]["yaml"])
        large = rows[-1][1].get("redis", rows[-1][1]["yaml"])
        ratios = ", ".join(
            f"{name} {large[name + '_ns'] / small[name + '_ns']:.2f}x"
            for name in ("get", "by_issuer", "by_callback_path")
        )
        print(f"lookup cost, {rows[-1][0]} vs {rows[0][0]} connections: {ratios}")


def _libyaml() -> bool:
    import yaml

    return bool(getattr(yaml, "__with_libyaml__", False))


if __name__ == "__main__":
    main()
