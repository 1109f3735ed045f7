"""Driving load with wrk (pinned to its own CPU) and reading its figures."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

LUA_SCRIPT = Path(__file__).with_name("saml_post.lua")
_MARKER = "BENCH_JSON "


class LoadFailed(Exception):
    """wrk could not run or reported no figures."""


@dataclass(frozen=True)
class LoadResult:
    """What one wrk phase measured."""

    connections: int
    requests: int
    seconds: float
    p50_us: int
    p90_us: int
    p99_us: int
    mean_us: float
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk_available() -> bool:
    return shutil.which("wrk") is not None and shutil.which("taskset") is not None


def run_wrk(
    url: str,
    corpus_tsv: Path,
    *,
    connections: int,
    seconds: float,
    cpu: int | str,
    threads: int = 1,
) -> LoadResult:
    """One wrk phase: `threads` threads, `connections` keep-alive connections, the corpus in a
    loop, pinned to `cpu` (a CPU number or a taskset list such as "0-1")."""
    argv = [
        "taskset",
        "-c",
        str(cpu),
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA_SCRIPT),
        url,
        "--",
        str(corpus_tsv),
    ]
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    for line in completed.stdout.splitlines():
        if line.startswith(_MARKER):
            figures = json.loads(line[len(_MARKER) :])
            break
    else:
        raise LoadFailed(
            f"wrk exited {completed.returncode} without figures: "
            f"{(completed.stderr or completed.stdout).strip()[-500:]}"
        )
    errors = sum(value for key, value in figures.items() if key.startswith("errors_"))
    return LoadResult(
        connections=connections,
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        p50_us=figures["p50_us"],
        p90_us=figures["p90_us"],
        p99_us=figures["p99_us"],
        mean_us=figures["mean_us"],
        errors=errors,
    )
