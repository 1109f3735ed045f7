"""How `authswitch serve --workers N` scales on the cores this machine has.

Runs the `redirect` and `fallthrough` scenarios of the main benchmark (8 KB signed SAML POSTs,
Issuer identification) with 1 and then 2 workers, alternating, and prints req/s and the
ratio. wrk shares the same cores (it is not pinned), so on a 2-core machine the ceiling is
well below 2x: the figure says what an operator gets, not what the code could do alone.

    .venv/bin/python -m bench.workers [--rounds 3] [--seconds 8] [--connections 64]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from bench import saml_corpus
from bench.load import run_wrk
from bench.processes import PinnedServer, free_port
from bench.run import DATA_DIR
from bench.targets import Context, write_authswitch_config


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    authswitch = shutil.which("authswitch") or str(Path(sys.executable).parent / "authswitch")
    corpus = saml_corpus.ensure(DATA_DIR / "corpus", 200)
    results: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="authswitch-workers-") as work:
        context = Context(
            upstream_port=free_port(),
            corpus=tuple(corpus),
            corpus_tsv=DATA_DIR / "corpus.tsv",
            work_dir=Path(work),
            authswitch=Path(authswitch),
            authswitch_log_level="info",
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
                for scenario in ("redirect", "fallthrough"):
                    for workers in (1, 2) if round_index % 2 == 0 else (2, 1):
                        rps = _measure(context, scenario, workers, args)
                        results.setdefault((scenario, workers), []).append(rps)
                        print(
                            f"round {round_index + 1}: {scenario:11s} workers={workers} "
                            f"{rps:8.0f} req/s",
                            flush=True,
                        )
        finally:
            upstream.stop()
    print("\n| scenario | 1 worker req/s | 2 workers req/s | ratio |\n|---|---:|---:|---:|")
    for scenario in ("redirect", "fallthrough"):
        one = statistics.median(results[(scenario, 1)])
        two = statistics.median(results[(scenario, 2)])
        print(f"| {scenario} | {one:,.0f} | {two:,.0f} | {two / one:.2f}x |")
    return 0


def _measure(context: Context, scenario: str, workers: int, args: argparse.Namespace) -> float:
    port = free_port()
    config = write_authswitch_config(context, scenario, port)
    argv = [str(context.authswitch), "serve", "--config", str(config), "--workers", str(workers)]
    server = PinnedServer(
        f"authswitch-{workers}", argv, cpu="0-1", port=port, log_dir=context.work_dir
    )
    server.start()
    try:
        url = f"http://127.0.0.1:{port}"
        run_wrk(url, context.corpus_tsv, connections=8, seconds=2, cpu="0-1", threads=2)
        result = run_wrk(
            url,
            context.corpus_tsv,
            connections=args.connections,
            seconds=args.seconds,
            cpu="0-1",
            threads=2,
        )
    finally:
        server.stop()
    if result.errors:
        raise SystemExit(f"{scenario} with {workers} workers: {result.errors} errors")
    return result.rps


if __name__ == "__main__":
    raise SystemExit(main())
