"""Real Redis topologies as processes of the test's own: a master, a replica and three
Sentinels; a three-master Redis Cluster; a restricted server with commands renamed away."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import free_port
from tests.flags.redis_support import PrivateRedis

MASTER_NAME = "authswitch-test"


def _wait(condition: object, what: str, deadline: float = 20.0) -> None:
    assert callable(condition)
    until = time.monotonic() + deadline
    while True:
        try:
            if condition():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > until:
            raise AssertionError(f"{what} within {deadline} s")
        time.sleep(0.05)


class SentinelGroup:
    """A master, a replica of it and three Sentinels watching it (quorum 2)."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self.master = PrivateRedis(_subdir(directory, "master")).start()
        self.replica = PrivateRedis(
            _subdir(directory, "replica"),
            ("--replicaof", "127.0.0.1", str(self.master.port)),
        ).start()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self._sentinels: list[subprocess.Popen[bytes]] = []

    def start(self) -> SentinelGroup:
        # Synced, not just attached: a master lost during the initial sync (delayed by
        # repl-diskless-sync-delay) leaves a promoted replica without any data.
        _wait(
            lambda: self.replica.client().info("replication")["master_link_status"] == "up",
            "the replica did not sync with the master",
        )
        binary = shutil.which("redis-server")
        assert binary is not None
        for port in self.sentinel_ports:
            conf = self._directory / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self._directory}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} 500\n"
                f"sentinel failover-timeout {MASTER_NAME} 3000\n"
            )
            self._sentinels.append(
                subprocess.Popen(
                    [binary, str(conf), "--sentinel"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in self.sentinel_ports:
            client = redis.Redis(port=port, socket_timeout=1)
            _wait(
                lambda client=client: (
                    client.sentinel_master(MASTER_NAME)["num-other-sentinels"] == 2
                    and client.sentinel_master(MASTER_NAME)["num-slaves"] == 1
                ),
                "the Sentinels did not find each other and the replica",
            )
        return self

    @property
    def addresses(self) -> list[str]:
        return [f"127.0.0.1:{port}" for port in self.sentinel_ports]

    def master_port(self) -> int:
        client = redis.Redis(port=self.sentinel_ports[0], socket_timeout=1)
        return int(client.sentinel_get_master_addr_by_name(MASTER_NAME)[1])

    def stop(self) -> None:
        for process in self._sentinels:
            process.terminate()
            process.wait(timeout=10)
        self.replica.stop()
        self.master.stop()


class RedisClusterGroup:
    """Three masters with ``cluster-enabled yes``, joined by ``redis-cli --cluster create``,
    each with ``replicas`` replicas of its own."""

    def __init__(self, directory: Path, replicas: int = 0) -> None:
        self.replicas = replicas
        self.nodes = [
            PrivateRedis(
                _subdir(directory, f"node{index}"),
                # the bus port defaults to port + 10000, which may be above 65535
                (
                    *("--cluster-enabled", "yes", "--cluster-node-timeout", "2000"),
                    *("--repl-diskless-sync-delay", "0"),
                    *("--cluster-port", str(free_port())),
                ),
            )
            for index in range(3 * (1 + replicas))
        ]

    def start(self) -> RedisClusterGroup:
        for node in self.nodes:
            node.start()
        cli = shutil.which("redis-cli")
        assert cli is not None
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *addresses,
                "--cluster-replicas",
                str(self.replicas),
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.wait_until_ok()
        _wait(
            lambda: self._synced_replicas() == 3 * self.replicas,
            "the cluster's replicas did not sync with their masters",
        )
        return self

    def _synced_replicas(self) -> int:
        synced = 0
        for node in self.nodes:
            replication = node.client().info("replication")
            synced += replication.get("master_link_status") == "up"
        return synced

    @property
    def url(self) -> str:
        return self.nodes[0].url.removesuffix("/0")

    def master_of(self, key: str) -> PrivateRedis:
        """The node that serves ``key``'s slot now."""
        for node in self.nodes:
            if node.process is None:
                continue
            try:
                role = node.client().execute_command("ROLE")[0]
                if _text(role) != "master":
                    continue
                slot = int(node.client().execute_command("CLUSTER", "KEYSLOT", key))
                owners = node.client().execute_command("CLUSTER", "SLOTS")
            except redis.RedisError:
                continue
            for start, end, owner, *_ in owners:
                if start <= slot <= end and int(owner[1]) == node.port:
                    return node
        raise AssertionError(f"no live master serves {key!r}")

    def wait_until_ok(self, deadline: float = 30.0) -> None:
        for node in self.nodes:
            if node.process is None:
                continue
            client = node.client()
            _wait(
                lambda client=client: _text(client.cluster("info")["cluster_state"]) == "ok",
                "the cluster did not become ok",
                deadline,
            )

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@pytest.fixture
def redis_cluster_with_replicas(tmp_path: Path) -> Iterator[RedisClusterGroup]:
    """Three masters with a replica each, so that a master can be lost."""
    group = RedisClusterGroup(tmp_path, replicas=1)
    try:
        yield group.start()
    finally:
        group.stop()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _subdir(directory: Path, name: str) -> Path:
    path = directory / name
    path.mkdir()
    return path


@pytest.fixture
def sentinel_group(tmp_path: Path) -> Iterator[SentinelGroup]:
    group = SentinelGroup(tmp_path)
    try:
        yield group.start()
    finally:
        group.stop()


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterGroup]:
    """One cluster for a module's tests (each uses its own hash-tagged key prefix)."""
    group = RedisClusterGroup(tmp_path_factory.mktemp("cluster"))
    try:
        yield group.start()
    finally:
        group.stop()
