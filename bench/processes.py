"""Servers the benchmark starts: pinned to a CPU, logged to a file, CPU time measured, stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


class ServerFailed(Exception):
    """A server did not come up; the message carries the tail of its log."""


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PinnedServer:
    """A subprocess pinned with taskset to one CPU, its output in a log file."""

    def __init__(
        self, name: str, argv: list[str], *, cpu: int | str, port: int, log_dir: Path
    ) -> None:
        self.name = name
        self.argv = argv
        self.cpu = cpu
        self.port = port
        self.log_path = log_dir / f"{name}-{port}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def start(self, *, timeout: float = 30.0) -> None:
        """Start the server and wait until its port accepts connections."""
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                ["taskset", "-c", str(self.cpu), *self.argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ServerFailed(
                    f"{self.name} exited with code {self._process.returncode}:\n{self.log_tail()}"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            time.sleep(0.05)
        self.stop()
        raise ServerFailed(
            f"{self.name} did not listen on {self.port} in {timeout}s:\n{self.log_tail()}"
        )

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server and its child processes so far."""
        return sum(_own_cpu_ticks(pid) for pid in process_tree(self.pid)) / _TICKS_PER_SECOND

    def stop(self, *, grace: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; only this server's own process group."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def _own_cpu_ticks(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    # Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def process_tree(root: int) -> list[int]:
    """`root` and every process descended from it (read from /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parents[int(entry)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    tree = [root]
    for pid in tree:
        tree.extend(child for child, parent in parents.items() if parent == pid)
    return tree
