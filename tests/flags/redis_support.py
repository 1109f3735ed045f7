"""Real Redis for tests: the machine's shared server (own db, own key prefix), or a private one.

Tests never skip for want of Redis: a fixture that can't reach it fails, with the reason. Keys
are namespaced by a unique prefix per test and deleted afterwards, so concurrent test runs on
the same machine can't disturb each other (``FLUSHDB`` would).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.conftest import free_port

SHARED_HOST = "127.0.0.1"
SHARED_PORT = 6379
TEST_DB = 11


@dataclass(frozen=True)
class RedisTarget:
    """Where a test's rollout state lives: a URL and a key prefix of its own."""

    url: str
    prefix: str

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)


def _unique_prefix() -> str:
    return f"authswitch-test:{uuid.uuid4().hex[:12]}"


def _delete_prefix(client: redis.Redis, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def shared_redis() -> Iterator[RedisTarget]:
    """The machine's Redis (db 11), a unique key prefix, its keys deleted afterwards."""
    target = RedisTarget(f"redis://{SHARED_HOST}:{SHARED_PORT}/{TEST_DB}", _unique_prefix())
    client = target.client()
    try:
        client.ping()
    except redis.RedisError as exc:
        where = "CI" if os.environ.get("CI") else "this machine"
        pytest.fail(
            f"Redis is required at {SHARED_HOST}:{SHARED_PORT} on {where} for the flag tests "
            f"and did not answer: {exc}"
        )
    try:
        yield target
    finally:
        _delete_prefix(client, target.prefix)
        client.close()


class PrivateRedis:
    """A redis-server of the test's own, on its own port, that the test can stop and freeze."""

    def __init__(self, directory: Path, extra_args: tuple[str, ...] = ()) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is required for the Redis outage tests (apt: redis-server)")
        self._binary = binary
        self._directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._extra_args = extra_args  # e.g. ("--rename-command", "CLIENT", "")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        command = [
            self._binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self._directory),
            *self._extra_args,
        ]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    message = f"redis-server did not start on port {self.port}"
                    raise AssertionError(message) from None
                time.sleep(0.02)
        client.close()
        return self

    def stop(self) -> None:
        """Terminate the server (connections get reset); its data is gone (no persistence)."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)  # a frozen server can't handle SIGTERM
            process.terminate()
            process.wait(timeout=10)

    def freeze(self) -> None:
        """SIGSTOP: connections stay open, nothing answers (a hung or partitioned server)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=2)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


def wait_until(condition: object, deadline: float = 5.0, interval: float = 0.005) -> float:
    """Poll a zero-argument callable until it is truthy; return the seconds it took, or fail."""
    assert callable(condition)
    started = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - started
        if time.monotonic() - started > deadline:
            raise AssertionError(f"condition not met within {deadline} s")
        time.sleep(interval)
