"""How `authswitch serve --workers N` scales on the cores this machine has.

Runs scenarios of the main benchmark (8 KB signed SAML POSTs; by default `redirect` and
`fallthrough`, identified by Issuer) with each worker count in turn, alternating the order
between rounds, and prints req/s, the server's CPU µs per request (all its processes) and the
ratio to one worker. wrk shares the same cores (it is not pinned), so on a 2-core machine the
ceiling is well below 2x: the figure says what an operator gets, not what the code could do
alone.

    .venv/bin/python -m bench.workers [--rounds 3] [--seconds 8] [--connections 64]
    .venv/bin/python -m bench.workers --workers 1,2,4 --scenarios mix,path-mix --map-size 100000

With several workers the supervisor listens before its workers have read the map, so each
server is measured only once its ops listener's /readyz answers 200 (every worker ready).
Each worker reads the whole map: at 100 000 connections that is ~1.6 GB of RSS per worker
while it validates, and 20-35 s.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from bench import saml_corpus
from bench.load import run_wrk
from bench.processes import PinnedServer, free_port
from bench.run import DATA_DIR
from bench.targets import AUTHSWITCH_SCENARIOS, PATH_PREFIX, Context, write_authswitch_config


def _counts(text: str) -> list[int]:
    counts = [int(part) for part in text.split(",") if part.strip()]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"worker counts must be >= 1: {text!r}")
    return counts


def _scenarios(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in AUTHSWITCH_SCENARIOS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown scenario(s) {unknown}; known: {', '.join(AUTHSWITCH_SCENARIOS)}"
        )
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--connections", type=int, default=64, help="wrk's connections")
    parser.add_argument("--workers", type=_counts, default=[1, 2], help="e.g. 1,2,4")
    parser.add_argument(
        "--scenarios",
        type=_scenarios,
        default=["redirect", "fallthrough"],
        help="e.g. mix,path-mix",
    )
    parser.add_argument(
        "--map-size", type=int, default=0, help="connections in the map (as bench.run's)"
    )
    args = parser.parse_args()
    authswitch = shutil.which("authswitch") or str(Path(sys.executable).parent / "authswitch")
    base = saml_corpus.corpus_base(DATA_DIR, 200)
    corpus = saml_corpus.ensure(base, 200)
    path_corpus = saml_corpus.with_connection_paths(base, corpus)
    results: dict[tuple[str, int], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="authswitch-workers-") as work:
        context = Context(
            upstream_port=free_port(),
            corpus=tuple(corpus),
            corpus_tsv=base.with_suffix(".tsv"),
            work_dir=Path(work),
            authswitch=Path(authswitch),
            authswitch_log_level="info",
            path_corpus=tuple(path_corpus),
            path_corpus_tsv=saml_corpus.path_corpus_tsv(base),
            map_size=args.map_size,
        )
        upstream = PinnedServer(
            "upstream",
            [sys.executable, "-m", "bench.upstream", "--port", str(context.upstream_port)],
            cpu=1,
            port=context.upstream_port,
            log_dir=context.work_dir,
        )
        upstream.start()
        try:
            for round_index in range(args.rounds):
                for scenario in args.scenarios:
                    order = args.workers if round_index % 2 == 0 else args.workers[::-1]
                    for workers in order:
                        rps, cpu_us = _measure(context, scenario, workers, args)
                        results.setdefault((scenario, workers), []).append((rps, cpu_us))
                        print(
                            f"round {round_index + 1}: {scenario:13s} workers={workers} "
                            f"{rps:8.0f} req/s {cpu_us:6.0f} CPU µs/req",
                            flush=True,
                        )
        finally:
            upstream.stop()
    print()
    if args.map_size:
        print(f"map: {args.map_size:,} connections ({len(corpus)} the corpus's, the rest filler)")
    head = " | ".join(f"{n} worker{'s' if n > 1 else ''} req/s, CPU µs/req" for n in args.workers)
    ratios = " | ".join(f"{n} ÷ {args.workers[0]} req/s" for n in args.workers[1:])
    print(f"| scenario | {head} | {ratios} |")
    print("|---|" + "---:|" * (2 * len(args.workers) - 1))
    for scenario in args.scenarios:
        rates = {n: statistics.median(r for r, _ in results[(scenario, n)]) for n in args.workers}
        cpus = {n: statistics.median(c for _, c in results[(scenario, n)]) for n in args.workers}
        cells = " | ".join(f"{rates[n]:,.0f}, {cpus[n]:.0f}" for n in args.workers)
        first = rates[args.workers[0]]
        scaled = " | ".join(f"{rates[n] / first:.2f}x" for n in args.workers[1:])
        print(f"| {scenario} | {cells} | {scaled} |")
    return 0


def _measure(
    context: Context, scenario: str, workers: int, args: argparse.Namespace
) -> tuple[float, float]:
    """req/s and the server's CPU µs per request (supervisor and workers) over one phase."""
    port = free_port()
    config = write_authswitch_config(context, scenario, port)
    argv = [str(context.authswitch), "serve", "--config", str(config), "--workers", str(workers)]
    server = PinnedServer(
        f"authswitch-{workers}", argv, cpu="0-1", port=port, log_dir=context.work_dir
    )
    # Every worker reads the whole map, two cores between them.
    timeout = 30.0 + 0.0015 * context.map_size * max(1.0, workers / 2)
    started = time.monotonic()
    server.start(timeout=timeout)
    try:
        _wait_ready(_ops_port(config), started + timeout, server)
        if context.map_size:
            print(f"  {workers} worker(s) ready after {time.monotonic() - started:.1f} s")
        url = f"http://127.0.0.1:{port}"
        tsv = context.path_corpus_tsv if scenario.startswith(PATH_PREFIX) else context.corpus_tsv
        assert tsv is not None
        run_wrk(url, tsv, connections=8, seconds=2, cpu="0-1", threads=2)
        before = server.cpu_seconds()
        result = run_wrk(
            url, tsv, connections=args.connections, seconds=args.seconds, cpu="0-1", threads=2
        )
        cpu_seconds = server.cpu_seconds() - before
    finally:
        server.stop()
    if result.errors:
        raise SystemExit(f"{scenario} with {workers} workers: {result.errors} errors")
    return result.rps, cpu_seconds * 1e6 / max(1, result.requests)


def _ops_port(config: Path) -> int:
    return int(yaml.safe_load(config.read_text())["ops"]["port"])


def _wait_ready(ops_port: int, deadline: float, server: PinnedServer) -> None:
    """Until the ops listener's /readyz answers 200: every worker has loaded its app."""
    url = f"http://127.0.0.1:{ops_port}/readyz"
    while time.monotonic() < deadline:
        # A 503 (some worker not ready yet) raises HTTPError, a URLError.
        with (
            contextlib.suppress(urllib.error.URLError, OSError),
            urllib.request.urlopen(url, timeout=2) as answer,
        ):
            if answer.status == 200:
                return
        time.sleep(0.2)
    server.stop()
    raise SystemExit(f"{server.name}: /readyz not 200 in time:\n{server.log_tail()}")


if __name__ == "__main__":
    raise SystemExit(main())
