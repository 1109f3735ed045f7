"""How long the console's connections page takes for 1 000 connections, over real HTTP.

A script, not a test: it prints figures. Each is a median over rounds, with a reference
measured in the same run on the same data: what `authswitch flags status --json` computes
(route_report for every connection, dumped as JSON), the floor any page showing the same
rows must pay.

    .venv/bin/python -m bench.console_page [--connections 1000] [--rounds 15]
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import httpx
import yaml

from flags import RolloutState, write_rollout_state
from flags.route_report import route_report
from proxy.cli.flags_session import connection_facts_of
from proxy.config import load_config
from proxy.console.app import build_console_app
from proxy.demo.loopback_server import LoopbackServer
from proxy.outcomes.counts import MemoryOutcomeStore, Observation


def write_files(directory: Path, count: int) -> Path:
    connections = []
    for i in range(count):
        saml = i % 3 != 0
        entry: dict[str, object] = {
            "id": f"conn-{i:04d}",
            "name": f"Customer {i}",
            "protocol": "saml" if saml else "oidc",
            "assessment": "transparent" if i % 10 else "needs_idp_change",
            "new_provider": {"url": f"https://new.example/sso/{i}/callback"},
            "legacy": {"callback_url": "https://login.legacy.example/login/callback"},
        }
        if saml:
            entry["saml"] = {"idp_entity_id": f"https://idp{i}.example/metadata"}
        else:
            entry["oidc"] = {"callback_path": f"/oidc-callback/c{i}"}
        connections.append(entry)
    (directory / "connections.yaml").write_text(
        yaml.safe_dump({"version": 1, "connections": connections})
    )
    write_rollout_state(
        directory / "flags.yaml",
        RolloutState(
            version=3, stage_percent=25, canary=("conn-0001",), overrides={"conn-0002": "off"}
        ),
    )
    (directory / "session.key").write_text(secrets.token_urlsafe(48))
    config = {
        "legacy": {"url": "http://127.0.0.1:9"},
        "connection_map": "connections.yaml",
        "flags": {"file": "flags.yaml"},
        "routes": [
            {"path": "/login/callback", "protocol": "saml", "identify": ["saml_issuer"]},
            {"path": "/oidc-callback/{slug}", "protocol": "oidc", "identify": ["callback_path"]},
        ],
        "outcomes": {"enabled": True},
        "console": {
            "enabled": True,
            "sign_in": "trusted_header",
            "trusted_header": {"proxies": ["127.0.0.1/32"]},
            "roles": {"operator_emails": ["ops@example.com"]},
            "session_secret_file": "session.key",
        },
    }
    path = directory / "authswitch.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def outcome_counts(count: int, now: float) -> MemoryOutcomeStore:
    store = MemoryOutcomeStore(retention_minutes=1440, max_buckets=1_000_000, max_event_ids=10)
    minute = int(now // 60)
    observations = [
        Observation(f"conn-{i:04d}", side, "proxy", outcome, minute - back)
        for i in range(count)
        for back in range(0, 60, 6)
        for side, outcome in (("legacy", "succeeded"), ("legacy", "failed"), ("new", "forwarded"))
    ]
    store.add(observations)
    return store


def timed(function: object, rounds: int) -> tuple[float, list[float]]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        function()  # type: ignore[operator]
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        config = load_config(write_files(Path(scratch), args.connections))
        now = time.time()
        app = build_console_app(config, outcomes=outcome_counts(args.connections, now))
        headers = {"x-forwarded-email": "ops@example.com"}
        with (
            LoopbackServer(app, name="console") as server,
            httpx.Client(base_url=server.url, headers=headers, timeout=60) as client,
        ):
            start = time.perf_counter()
            first = client.get("/console/connections")
            cold = time.perf_counter() - start
            assert (
                first.status_code == 200 and first.text.count("<tr data-route") == args.connections
            )

            def page() -> None:
                client.get("/console/connections").raise_for_status()

            def filtered() -> None:
                client.get(
                    "/console/connections?route=new&sort=legacy_rate&dir=desc"
                ).raise_for_status()

            page_median, _ = timed(page, args.rounds)
            filtered_median, _ = timed(filtered, args.rounds)
            size = len(first.content)

        # the same page without outcome counts: what the map, flags and rendering cost alone
        with (
            LoopbackServer(build_console_app(config), name="console-bare") as bare,
            httpx.Client(base_url=bare.url, headers=headers, timeout=60) as client,
        ):
            client.get("/console/connections").raise_for_status()
            bare_median, _ = timed(
                lambda: client.get("/console/connections").raise_for_status(), args.rounds
            )

        from connection_map import read_connection_map_document

        document = read_connection_map_document(config.connection_map)
        state = RolloutState(version=3, stage_percent=25)

        def reference() -> None:
            rows = route_report(state, [connection_facts_of(c) for c in document.connections])
            json.dumps([asdict(r) for r in rows])

        reference_median, _ = timed(reference, args.rounds)
    print(f"connections page, {args.connections} connections with 60 min of outcome counts")
    figures = [
        ("first request (reads and triages the map)", cold),
        (f"page, median of {args.rounds} ({size / 1024:.0f} KiB)", page_median),
        ("page without outcome counts, median", bare_median),
        ("filtered + sorted page, median", filtered_median),
        ("reference: flags status rows as JSON", reference_median),
    ]
    for label, seconds in figures:
        print(f"  {label:<45} {seconds * 1000:8.1f} ms")
    print(f"  {'ratio page / reference':<45} {page_median / reference_median:8.1f}x")


if __name__ == "__main__":
    main()
