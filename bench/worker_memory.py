"""Memory of each serving process after many requests: authswitch against the raw-ASGI reference.

    .venv/bin/python -m bench.worker_memory                     # 1 000 000 requests per target
    .venv/bin/python -m bench.worker_memory --requests 100000   # while iterating

Starts the bench upstream, then one target after the other: the `raw-aiohttp` reference
(uvicorn + aiohttp, one process) and `authswitch serve` on the same upstream, with one worker
(one process: it serves, and its ops listener thread answers /readyz and /metrics) and with two
(a supervisor that holds the ops listener and serves no request, and two spawned workers). wrk,
with the corpus of signed ~8 KB SAML POSTs (`saml_post.lua`), sends the requests in several
runs; between them the memory of every process of the target is read from /proc: RSS
(`VmRSS`), PSS and USS (private clean + dirty) from `smaps_rollup`, at start (before any
request), after each tenth of the requests and at the end, with the peak RSS (`VmHWM`).

The goal (issue #14) compares a process that serves requests: authswitch's worker (the only
process with `--workers 1`, a spawned worker with more) against the reference's one process.
The supervisor of a multi-worker replica is reported apart: it is paid once per replica, not
per worker. `--before <checkout>/.venv/bin/authswitch` adds the same authswitch targets served
by another checkout, in the same run, for a before/after.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import saml_corpus
from bench.load import LoadFailed, run_wrk, wrk_available
from bench.processes import PinnedServer, free_port, process_tree
from bench.run import DATA_DIR, TargetBroken, find_authswitch
from bench.targets import (
    AUTHSWITCH,
    AUTHSWITCH_SCENARIOS,
    RAW_AIOHTTP,
    REFERENCES,
    Context,
    Target,
    before_targets,
    check_target,
)

_KB = 1024


@dataclass(frozen=True)
class Memory:
    """One process's memory, in KiB."""

    rss: int
    pss: int
    uss: int
    peak_rss: int


@dataclass(frozen=True)
class Sample:
    """Every process of a target after `requests` requests."""

    requests: int
    processes: dict[str, Memory]  # role -> memory


@dataclass(frozen=True)
class Subject:
    """A server to measure: a name, how it starts, how its answers are checked."""

    name: str
    target: Target
    extra_argv: tuple[str, ...] = ()


def read_memory(pid: int) -> Memory | None:
    """RSS and peak RSS from /proc/<pid>/status, PSS and USS from smaps_rollup; None once gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    fields = {}
    for line in (*status.splitlines(), *rollup.splitlines()):
        name, _, rest = line.partition(":")
        parts = rest.split()
        if len(parts) == 2 and parts[1] == "kB":
            fields[name.strip()] = int(parts[0])
    return Memory(
        rss=fields["VmRSS"],
        pss=fields["Pss"],
        uss=fields["Private_Clean"] + fields["Private_Dirty"],
        peak_rss=fields["VmHWM"],
    )


def roles(root: int) -> dict[str, int]:
    """The target's processes by role: `process` when one process serves alone, else
    `supervisor` and `worker-1`, `worker-2`, ... (uvicorn's spawned workers)."""
    workers = [pid for pid in process_tree(root)[1:] if _is_spawned_worker(pid)]
    if not workers:
        return {"process": root}
    return {"supervisor": root} | {f"worker-{i}": pid for i, pid in enumerate(sorted(workers), 1)}


def _is_spawned_worker(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    # multiprocessing's resource tracker is spawned too, but serves nothing.
    return b"multiprocessing.spawn" in cmdline and b"resource_tracker" not in cmdline


def sample(root: int, requests: int) -> Sample:
    found = {role: read_memory(pid) for role, pid in roles(root).items()}
    return Sample(requests, {role: memory for role, memory in found.items() if memory})


def drive(
    server: PinnedServer,
    context: Context,
    args: argparse.Namespace,
    on_sample: Callable[[Sample], None],
) -> list[Sample]:
    """Send `args.requests` requests in wrk runs, sampling memory at start and every tenth."""
    url = f"http://127.0.0.1:{server.port}"
    samples = [sample(server.pid, 0)]
    on_sample(samples[-1])
    served, rate, errors = 0, 0.0, 0
    for step in range(1, args.steps + 1):
        goal = args.requests * step // args.steps
        while served < goal:
            # The first run measures the rate; the next ones aim at the goal (wrk runs for whole
            # seconds, so a step may end a second's worth of requests past it).
            seconds = 2.0 if rate == 0 else (goal - served) / rate
            if rate and seconds < 0.5 and step < args.steps:
                break
            load = run_wrk(
                url,
                context.corpus_tsv,
                connections=args.connections,
                seconds=seconds,
                cpu=args.load_cpu,
            )
            served += load.requests
            errors += load.errors
            rate = load.rps or 1.0
        samples.append(sample(server.pid, served))
        on_sample(samples[-1])
    if errors:
        print(f"  note: wrk counted {errors} errors (non-2xx/3xx answers, timeouts)")
    return samples


def measure(subject: Subject, context: Context, args: argparse.Namespace) -> list[Sample]:
    port = free_port()
    argv = [*subject.target.argv(context, port), *subject.extra_argv]
    server = PinnedServer(subject.name, argv, cpu=args.sut_cpu, port=port, log_dir=context.work_dir)
    server.start()
    try:
        start = sample(server.pid, 0)  # before any request, and before the check below
        problems = check_target(subject.target, context, port)
        if problems:
            raise TargetBroken("wrong answers: " + "; ".join(problems))

        def progress(taken: Sample) -> None:
            print(f"{subject.name:28} {_sample_line(taken)}", flush=True)

        samples = drive(server, context, args, progress)
        return [start, *samples[1:]]
    except (LoadFailed, OSError) as exc:
        raise TargetBroken(f"{type(exc).__name__}: {exc}\n{server.log_tail()}") from None
    finally:
        server.stop()


def _sample_line(taken: Sample) -> str:
    cells = [
        f"{role} RSS {m.rss / _KB:6.1f} PSS {m.pss / _KB:6.1f} USS {m.uss / _KB:6.1f}"
        for role, m in taken.processes.items()
    ]
    return f"{taken.requests:>9,} req | " + " | ".join(cells) + " MB"


def subjects(args: argparse.Namespace, context: Context) -> list[Subject]:
    reference = next(t for t in REFERENCES if t.name == RAW_AIOHTTP)
    found = [Subject(RAW_AIOHTTP, reference)]
    name = f"authswitch-{args.scenario}"
    versions: list[tuple[str, Target]] = [("", next(t for t in AUTHSWITCH if t.name == name))]
    if context.before_authswitch is not None:
        before = next(t for t in before_targets() if t.name == f"before-{name}")
        versions.append(("before-", before))
    for workers in args.workers:
        for prefix, target in versions:
            subject = f"{prefix}authswitch-w{workers}"
            found.append(Subject(subject, target, ("--workers", str(workers))))
    return found


def table(results: dict[str, list[Sample]], requests: int) -> str:
    """Start, after N, growth over the run after the first tenth, peak, and the ratio of each
    serving process's RSS to the reference's."""
    reference = results.get(RAW_AIOHTTP)
    ref_start = reference[0].processes["process"].rss if reference else 0
    ref_end = reference[-1].processes["process"].rss if reference else 0
    lines = [
        f"| target | process | RSS start MB | RSS after {requests:,} MB | PSS MB | USS MB "
        "| growth after 1st tenth MB | peak RSS MB | start ÷ ref | end ÷ ref |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, samples in results.items():
        first, warm, last = samples[0], samples[min(1, len(samples) - 1)], samples[-1]
        for role, end in last.processes.items():
            start = first.processes.get(role)
            warmed = warm.processes.get(role)
            serves = role != "supervisor"
            lines.append(
                "| "
                + " | ".join(
                    (
                        name,
                        role,
                        f"{start.rss / _KB:.1f}" if start else "-",
                        f"{end.rss / _KB:.1f}",
                        f"{end.pss / _KB:.1f}",
                        f"{end.uss / _KB:.1f}",
                        f"{(end.rss - warmed.rss) / _KB:+.1f}" if warmed else "-",
                        f"{end.peak_rss / _KB:.1f}",
                        f"{start.rss / ref_start:.2f}" if start and ref_start and serves else "-",
                        f"{end.rss / ref_end:.2f}" if ref_end and serves else "-",
                    )
                )
                + " |"
            )
    return "\n".join(lines)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000, help="per target")
    parser.add_argument("--steps", type=int, default=10, help="memory read after each step")
    parser.add_argument("--connections", type=int, default=32, help="wrk's connections")
    parser.add_argument(
        "--workers",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 2],
        help="authswitch worker counts to measure, comma-separated (default 1,2)",
    )
    parser.add_argument("--scenario", default="fallthrough", choices=AUTHSWITCH_SCENARIOS)
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument(
        "--authswitch-log-level", default="info", choices=("debug", "info", "warning", "error")
    )
    parser.add_argument("--before", type=Path, help="another checkout's authswitch script")
    parser.add_argument("--sut-cpu", default="0", help="CPU(s) for the server under test")
    parser.add_argument("--load-cpu", default="1", help="CPU(s) for wrk and the upstream")
    return parser.parse_args()


def main() -> int:
    args = _arguments()
    if not wrk_available():
        print("wrk and taskset are needed: apt-get install -y wrk (taskset is in util-linux)")
        return 2
    authswitch, why_not = find_authswitch()
    if authswitch is None:
        print(f"authswitch can't serve: {why_not}")
        return 2
    corpus = saml_corpus.ensure(DATA_DIR / "corpus", 200)
    results: dict[str, list[Sample]] = {}
    broken: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="authswitch-memory-") as work:
        context = Context(
            upstream_port=free_port(),
            corpus=tuple(corpus),
            corpus_tsv=DATA_DIR / "corpus.tsv",
            work_dir=Path(work),
            authswitch=authswitch,
            authswitch_log_level=args.authswitch_log_level,
            before_authswitch=args.before,
        )
        upstream = PinnedServer(
            "upstream",
            [sys.executable, "-m", "bench.upstream", "--port", str(context.upstream_port)],
            cpu=args.load_cpu,
            port=context.upstream_port,
            log_dir=context.work_dir,
        )
        upstream.start()
        try:
            for subject in subjects(args, context):
                if args.no_reference and subject.name == RAW_AIOHTTP:
                    continue
                try:
                    results[subject.name] = measure(subject, context, args)
                except TargetBroken as exc:
                    broken[subject.name] = str(exc)
                    print(f"{subject.name}: BROKEN: {exc}", flush=True)
        finally:
            upstream.stop()
    print()
    print(table(results, args.requests))
    for name, reason in broken.items():
        print(f"BROKEN {name}: {reason}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
