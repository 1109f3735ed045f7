"""Benchmark authswitch against reference proxies measured in the same run.

    python -m bench.run            # from the repository root, with the project's venv

Starts a fast upstream, then, round after round and in a rotating order, each target (direct,
reference proxies, authswitch's scenarios) pinned to one CPU while wrk, pinned to the other,
sends the same signed SAML POSTs: a c=1 phase for latency, then a high-concurrency phase for
throughput. Prints the medians over rounds and the ratios against the references.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from bench import report, saml_corpus
from bench.load import LoadFailed, run_wrk, wrk_available
from bench.processes import PinnedServer, ServerFailed, free_port
from bench.reference_proxies import missing_package
from bench.report import Measurement, Phase, Rounds
from bench.targets import (
    AUTHSWITCH,
    REFERENCES,
    Context,
    Target,
    before_targets,
    check_target,
)

DATA_DIR = Path(__file__).with_name(".data")


class TargetBroken(Exception):
    """A target answered the check requests wrongly or could not start."""


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup-seconds", type=float, default=2)
    parser.add_argument("--low-seconds", type=float, default=5, help="c=1 latency phase")
    parser.add_argument("--high-seconds", type=float, default=8, help="throughput phase")
    parser.add_argument("--high-connections", type=int, default=32)
    parser.add_argument(
        "--sut-cpu",
        default="0",
        help="CPU for the server under test, or a taskset list (`0-1`: not pinned, as a worker "
        "runs unless its deployment pins it)",
    )
    parser.add_argument(
        "--load-cpu", type=int, default=1, help="CPU for wrk and the shared upstream"
    )
    parser.add_argument("--connections", type=int, default=200, help="IdPs in the corpus")
    parser.add_argument(
        "--map-size",
        type=int,
        default=0,
        help="connections in authswitch's map: the corpus's IdPs plus filler connections no "
        "request names (default: the corpus's alone; below --connections, the corpus shrinks)",
    )
    parser.add_argument("--only", default="", help="comma-separated target names to run")
    parser.add_argument("--no-authswitch", action="store_true", help="references only")
    parser.add_argument(
        "--authswitch-log-level", default="info", choices=("debug", "info", "warning", "error")
    )
    parser.add_argument(
        "--before",
        type=Path,
        help="another checkout's authswitch console script: its scenarios run side by side",
    )
    parser.add_argument(
        "--nofile", type=int, help="open-file limit (ulimit -n) for the servers under test"
    )
    parser.add_argument("--quick", action="store_true", help="1 round, short phases (smoke)")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.warmup_seconds, args.low_seconds, args.high_seconds = 1, 1, 2, 3
    if args.map_size < 0:
        parser.error("--map-size must be >= 0")
    if 0 < args.map_size < args.connections:
        print(f"note: --map-size {args.map_size}: the corpus has {args.map_size} IdPs")
        args.connections = args.map_size
    return args


def _start_timeout(map_size: int) -> float:
    """How long a server may take to listen: authswitch reads its whole map first, ~20 s for
    100 000 connections on an idle machine, more on a loaded one."""
    return 30.0 + 0.0015 * map_size


def find_authswitch() -> tuple[Path | None, str]:
    """The authswitch console script when its `serve` command works, else why not."""
    candidate = Path(sys.executable).with_name("authswitch")
    script = candidate if candidate.exists() else shutil.which("authswitch")
    if script is None:
        return None, "no authswitch console script next to this Python"
    probe = subprocess.run(
        [str(script), "serve", "--help"], capture_output=True, text=True, timeout=60
    )
    if probe.returncode != 0:
        return None, f"`authswitch serve --help` failed: {probe.stderr.strip()[-300:]}"
    return Path(script), ""


def _targets(args: argparse.Namespace, authswitch: Path | None) -> list[Target]:
    targets = []
    for target in REFERENCES:
        missing = missing_package(target.name.removeprefix("ref-"))
        if missing:
            print(f"note: skipping {target.name}: `pip install {missing}` to measure it")
        else:
            targets.append(target)
    if authswitch is not None and not args.no_authswitch:
        targets.extend(AUTHSWITCH)
        if args.before is not None:
            targets.extend(before_targets())
    if args.only:
        wanted = {name.strip() for name in args.only.split(",")}
        targets = [t for t in targets if t.name in wanted]
    return targets


def _measure(target: Target, context: Context, args: argparse.Namespace) -> Measurement:
    port = free_port()
    server = PinnedServer(
        target.name,
        _limited(target.argv(context, port), args.nofile),
        cpu=args.sut_cpu,
        port=port,
        log_dir=context.work_dir,
    )
    started = time.monotonic()
    try:
        server.start(timeout=_start_timeout(context.map_size))
    except ServerFailed as exc:
        raise TargetBroken(str(exc)) from None
    if context.map_size:
        print(f"  {target.name}: listening after {time.monotonic() - started:.1f} s", flush=True)
    try:
        problems = check_target(target, context, port)
        if problems:
            raise TargetBroken("wrong answers: " + "; ".join(problems))
        url = f"http://127.0.0.1:{port}"
        _, requests_tsv = context.requests(target)

        def phase(connections: int, seconds: float) -> Phase:
            before = server.cpu_seconds()
            load = run_wrk(
                url, requests_tsv, connections=connections, seconds=seconds, cpu=args.load_cpu
            )
            return Phase(load, server.cpu_seconds() - before)

        phase(1, args.warmup_seconds)
        low = phase(1, args.low_seconds)
        high = phase(args.high_connections, args.high_seconds)
        return Measurement(low, high)
    except (LoadFailed, OSError) as exc:
        raise TargetBroken(f"{type(exc).__name__}: {exc}\n{server.log_tail()}") from None
    finally:
        server.stop()


def _limited(argv: list[str], nofile: int | None) -> list[str]:
    """`argv` under an open-file limit, as a worker started with `ulimit -n` would be."""
    return argv if nofile is None else ["prlimit", f"--nofile={nofile}:{nofile}", "--", *argv]


def _progress(target: Target, measured: Measurement) -> str:
    low, high = measured.low, measured.high
    errors = low.load.errors + high.load.errors
    return (
        f"{target.name:24} c=1 p50 {low.load.p50_us:6d} µs | "
        f"c={high.load.connections} {high.load.rps:7.0f} req/s "
        f"p99 {high.load.p99_us / 1000:6.1f} ms, {high.cpu_us_per_request:5.0f} µs CPU/req "
        f"({high.cpu_seconds / high.load.seconds:.0%} of a CPU)"
        + (f", {errors} wrk errors" if errors else "")
    )


def _machine_notes() -> dict[str, object]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "absent"

    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "packages": {
            name: version(name)
            for name in (
                "uvicorn",
                "h11",
                "httptools",
                "uvloop",
                "aiohttp",
                "httpx",
                "httpx-aiohttp",
                "starlette",
                "python-multipart",
                "sniffio",
            )
        },
    }


def main() -> int:
    args = _arguments()
    if not wrk_available():
        print("wrk and taskset are needed: apt-get install -y wrk (taskset is in util-linux)")
        return 2
    authswitch, why_not = find_authswitch()
    if authswitch is None and not args.no_authswitch:
        print(f"note: authswitch targets skipped: {why_not}")
    targets = _targets(args, authswitch)
    corpus_base = saml_corpus.corpus_base(DATA_DIR, args.connections)
    corpus = saml_corpus.ensure(corpus_base, args.connections)
    path_corpus = saml_corpus.with_connection_paths(corpus_base, corpus)
    notes = _machine_notes()
    print(f"machine: {json.dumps(notes)}")
    rounds: Rounds = []
    broken: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="authswitch-bench-") as work:
        upstream_port = free_port()
        context = Context(
            upstream_port=upstream_port,
            corpus=tuple(corpus),
            corpus_tsv=corpus_base.with_suffix(".tsv"),
            work_dir=Path(work),
            authswitch=authswitch,
            authswitch_log_level=args.authswitch_log_level,
            before_authswitch=args.before,
            path_corpus=tuple(path_corpus),
            path_corpus_tsv=saml_corpus.path_corpus_tsv(corpus_base),
            map_size=args.map_size,
        )
        upstream = PinnedServer(
            "upstream",
            [sys.executable, "-m", "bench.upstream", "--port", str(upstream_port)],
            cpu=args.load_cpu,
            port=upstream_port,
            log_dir=context.work_dir,
        )
        upstream.start()
        try:
            for round_index in range(args.rounds):
                shift = round_index * len(targets) // max(1, args.rounds)
                order = targets[shift:] + targets[:shift]
                results: dict[str, Measurement] = {}
                for target in order:
                    if target.name in broken:
                        continue
                    try:
                        measured = _measure(target, context, args)
                    except TargetBroken as exc:
                        broken[target.name] = str(exc)
                        print(f"round {round_index + 1}: {target.name}: BROKEN: {exc}")
                        continue
                    results[target.name] = measured
                    print(f"round {round_index + 1}: {_progress(target, measured)}", flush=True)
                rounds.append(results)
        finally:
            upstream.stop()
    rows = report.summarize(rounds, [t.name for t in targets])
    print()
    print(f"Medians of {args.rounds} round(s); ratios and added latency computed per round.")
    if args.map_size:
        print(
            f"authswitch's map: {args.map_size:,} connections "
            f"({len(corpus)} the corpus's, {args.map_size - len(corpus):,} filler)"
        )
    print(report.main_table(rows, args.high_connections))
    print()
    print("HTTP clients (same raw-ASGI app):")
    print(report.client_table(rounds))
    print()
    print("Goals:")
    for line in report.goals(rows):
        print("  " + line)
    for name, reason in broken.items():
        print(f"BROKEN {name}: {reason}")
    _save(args, notes, rounds, broken)
    return 1 if broken else 0


def _save(
    args: argparse.Namespace, notes: dict[str, object], rounds: Rounds, broken: dict[str, str]
) -> None:
    DATA_DIR.mkdir(exist_ok=True)
    out = DATA_DIR / "results-latest.json"
    out.write_text(
        json.dumps(
            {
                "machine": notes,
                "arguments": vars(args),
                "rounds": [{name: dataclasses.asdict(m) for name, m in r.items()} for r in rounds],
                "broken": broken,
            },
            indent=1,
            default=str,  # Path arguments
        )
    )
    print(f"raw figures: {out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out}")


if __name__ == "__main__":
    sys.exit(main())
