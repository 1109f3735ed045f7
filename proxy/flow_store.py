"""Flow records: which provider a login started with, kept in memory and shared through Redis.

A record is written when the application starts a login (``proxy.flow_affinity``) and read when
its callback arrives (SAML ``InResponseTo``, OIDC ``state``). Flow ids are secrets-ish (an OIDC
state is a CSRF token), so only ``flow_key(flow_id)``, a SHA-256, is ever kept, sent or stored;
the record itself names the connection, which is what lets the ``oidc_state`` strategy identify
a callback by its state alone.

Every replica answers lookups from memory. With Redis, a record is ``SET key value PX ttl`` plus
a ``PUBLISH``; a daemon thread on every replica subscribes and copies records into memory. A
replica that (re)subscribed less than one TTL ago may have missed records published before, so
only then does a miss in memory cost one ``GET`` (bounded by ``lookup_timeout_seconds``); once
it has listened without a break for a whole TTL (and evicted nothing still alive) memory holds
every live record and a miss is final: no network I/O on the callback path.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import redis
import redis.asyncio
from prometheus_client import Counter

from flags import Destination
from foundation.redis_client import STANDALONE, RedisTopology, connect_async_redis, redact_url
from foundation.redis_client import connect_redis as connect
from foundation.redis_follower import RedisFollower

logger = logging.getLogger("authswitch.flows")


FLOW_LOOKUPS = Counter(
    "authswitch_flow_lookups_total",
    "Flow record lookups on the callback path, by where the answer came from.",
    ["result"],  # memory_hit | memory_miss | redis_hit | redis_miss | redis_error
)
FLOW_RECORDS = Counter(
    "authswitch_flow_records_total",
    "Flows recorded by the decision endpoint, by provider and whether Redis stored them.",
    ["provider", "stored"],
)

# Label children resolved once: ``labels()`` costs more than the lookup it counts.
_MEMORY_HIT, _MEMORY_MISS, _REDIS_HIT, _REDIS_MISS, _REDIS_ERROR = (
    FLOW_LOOKUPS.labels(result)
    for result in ("memory_hit", "memory_miss", "redis_hit", "redis_miss", "redis_error")
)

_MAX_BACKOFF_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class FlowRecord:
    """Where one flow started: its connection and provider."""

    connection_id: str
    destination: Destination

    def encode(self) -> str:
        return f"{self.destination} {self.connection_id}"  # connection ids have no spaces

    @classmethod
    def decode(cls, raw: str | bytes) -> FlowRecord | None:
        text = raw.decode() if isinstance(raw, bytes) else raw
        destination, _, connection_id = text.partition(" ")
        if destination == "new" and connection_id:
            return cls(connection_id, "new")
        if destination == "legacy" and connection_id:
            return cls(connection_id, "legacy")
        return None


def flow_key(flow_id: str) -> str:
    """The name a flow is kept under: a hash, never the id itself."""
    data = flow_id.encode("utf-8", "surrogatepass")
    return hashlib.sha256(b"authswitch-flow\0" + data).hexdigest()


class FlowMemory:
    """A bounded, expiring dict of flow records; safe to share between the loop and a thread."""

    def __init__(self, max_records: int) -> None:
        self._max = max_records
        # Insertion order is (nearly) expiry order, since every record gets the same TTL:
        # expired and surplus records are dropped from the front.
        self._records: dict[str, tuple[float, FlowRecord]] = {}
        self._lock = threading.Lock()
        self.evicted_alive_until = 0.0  # until then, an evicted record may still be live

    def put(self, key: str, record: FlowRecord, ttl_seconds: float) -> None:
        now = time.monotonic()
        with self._lock:
            records = self._records
            records.pop(key, None)
            records[key] = (now + ttl_seconds, record)
            while records:
                oldest = next(iter(records))
                expires = records[oldest][0]
                if expires > now and len(records) <= self._max:
                    break
                del records[oldest]
                if expires > now:
                    self.evicted_alive_until = max(self.evicted_alive_until, expires)

    def get(self, key: str) -> FlowRecord | None:
        with self._lock:
            entry = self._records.get(key)
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]

    def __len__(self) -> int:
        return len(self._records)


class FlowStore:
    """Flow records of this process only: one replica with one worker (``store: memory``)."""

    def __init__(self, *, ttl_seconds: float, max_records: int) -> None:
        self.ttl_seconds = ttl_seconds
        self.memory = FlowMemory(max_records)

    async def start(self) -> None:
        """Nothing to start in memory."""

    async def stop(self) -> None:
        """Nothing to stop in memory."""

    async def record(self, flow_id: str, record: FlowRecord) -> bool:
        """Remember where a flow started; True once it is stored where every replica sees it."""
        self.memory.put(flow_key(flow_id), record, self.ttl_seconds)
        FLOW_RECORDS.labels(record.destination, "memory").inc()
        return True

    async def lookup(self, flow_id: str) -> FlowRecord | None:
        """Where the flow started, if it was recorded and has not expired."""
        record = self.memory.get(flow_key(flow_id))
        (_MEMORY_MISS if record is None else _MEMORY_HIT).inc()
        return record

    def health(self) -> dict[str, object]:
        return {"store": "memory", "records": len(self.memory)}


class RedisFlowStore(RedisFollower, FlowStore):
    """Flow records shared by every replica through Redis (``store: redis``)."""

    _poll_slice_seconds = 0.1  # stop() waits for the listener on the event loop's shutdown

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str,
        ttl_seconds: float,
        max_records: int,
        socket_timeout_seconds: float,
        lookup_timeout_seconds: float,
        password: str | None = None,
        ca_file: Path | None = None,
        topology: RedisTopology = STANDALONE,
        pubsub: bool = True,
    ) -> None:
        """``pubsub`` False (managed Redis without pub/sub): records are only SET, never
        published or followed, so a miss in memory always costs one GET."""
        FlowStore.__init__(self, ttl_seconds=ttl_seconds, max_records=max_records)
        RedisFollower.__init__(
            self,
            where=f"redis {redact_url(url)} key prefix {key_prefix!r}",
            thread_name="authswitch-flows-redis",
            resync_seconds=None,  # records are only pushed; a GET covers what was missed
            max_backoff_seconds=_MAX_BACKOFF_SECONDS,
            log=logger,
        )
        self._url = url
        self._password = password
        self._ca_file = ca_file
        self._topology = topology
        self._pubsub = pubsub
        self._key_prefix = f"{key_prefix}:flows:"
        self.channel = f"{key_prefix}:flows:recorded"
        self._socket_timeout = socket_timeout_seconds
        self._lookup_timeout = lookup_timeout_seconds
        self._writer: redis.asyncio.Redis | None = None
        self._reader: redis.asyncio.Redis | None = None
        # Memory is complete (a miss is final) from this monotonic time on; inf while the
        # listener is not subscribed.
        self._complete_from = float("inf")
        self._subscribed = threading.Event()  # start() waits for the first attempt

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._writer = self._async_client(self._socket_timeout)
        self._reader = self._async_client(self._lookup_timeout)
        self._subscribed = threading.Event()
        if not self._pubsub:
            return  # nothing to follow: every miss in memory asks Redis
        self._start_listener()
        # Records written while we start are then not missed; never wait long for a down Redis.
        await asyncio.to_thread(self._subscribed.wait, self._socket_timeout * 2)

    async def stop(self) -> None:
        await asyncio.to_thread(self._stop_listener)
        for client in (self._writer, self._reader):
            if client is not None:
                await client.aclose()
        self._writer = self._reader = None

    @property
    def memory_complete(self) -> bool:
        """True when a miss in memory means the flow was never recorded (or has expired)."""
        now = time.monotonic()
        return now >= self._complete_from and now >= self.memory.evicted_alive_until

    # -- the decision endpoint writes, callbacks read ------------------------------------------

    async def record(self, flow_id: str, record: FlowRecord) -> bool:
        key = flow_key(flow_id)
        self.memory.put(key, record, self.ttl_seconds)
        ttl_ms = int(self.ttl_seconds * 1000)
        value = record.encode()
        try:
            assert self._writer is not None, "start() first"
            message = f"{key} {ttl_ms} {value}"
            if self._topology.kind == "cluster":  # a cluster pipeline refuses PUBLISH
                await self._writer.set(self._key_prefix + key, value, px=ttl_ms)
                if self._pubsub:
                    await self._writer.publish(self.channel, message)
            else:
                async with self._writer.pipeline(transaction=False) as pipe:
                    pipe.set(self._key_prefix + key, value, px=ttl_ms)
                    if self._pubsub:
                        pipe.publish(self.channel, message)
                    await pipe.execute()
        except (redis.RedisError, OSError) as exc:
            logger.warning("%s: flow not recorded: %s", self._where, type(exc).__name__)
            FLOW_RECORDS.labels(record.destination, "no").inc()
            return False
        FLOW_RECORDS.labels(record.destination, "redis").inc()
        return True

    async def lookup(self, flow_id: str) -> FlowRecord | None:
        key = flow_key(flow_id)
        record = self.memory.get(key)
        if record is not None:
            _MEMORY_HIT.inc()
            return record
        if self.memory_complete or self._reader is None:
            _MEMORY_MISS.inc()
            return None
        try:
            raw = await self._reader.get(self._key_prefix + key)
        except (redis.RedisError, OSError, TimeoutError):
            # The flag decides, as it would have without affinity.
            _REDIS_ERROR.inc()
            return None
        record = FlowRecord.decode(raw) if raw is not None else None
        (_REDIS_MISS if record is None else _REDIS_HIT).inc()
        return record

    def health(self) -> dict[str, object]:
        return {
            "store": "redis",
            "records": len(self.memory),
            "subscribed": self._complete_from != float("inf"),
            "memory_complete": self.memory_complete,
        }

    # -- the listener thread -----------------------------------------------------------------

    def _async_client(self, timeout: float) -> redis.asyncio.Redis:
        return connect_async_redis(
            self._url,
            socket_timeout=timeout,
            client_name="authswitch-flows",
            password=self._password,
            ca_file=self._ca_file,
            topology=self._topology,
        )

    def _listening_client(self) -> redis.Redis:
        # One client per attempt: a listener that failed starts again from a fresh connection.
        return connect(
            self._url,
            socket_timeout=self._socket_timeout,
            client_name="authswitch-flows-listener",
            password=self._password,
            ca_file=self._ca_file,
            topology=self._topology,
        )

    def _channel(self) -> str:
        return self.channel

    def _on_subscribed(self) -> None:
        # Records published from now on arrive; older ones may still be live for one TTL.
        self._complete_from = time.monotonic() + self.ttl_seconds
        self._confirm()
        self._subscribed.set()

    def _on_message(self, data: bytes | str) -> None:
        self._take(data)

    def _serving(self) -> str:
        return "flow records not received (a miss in memory costs a GET meanwhile)"

    def _listen_failed(self, exc: BaseException) -> None:
        self._complete_from = float("inf")
        self._subscribed.set()  # start() stops waiting: lookups fall back to GET meanwhile

    def _done_listening(self, client: redis.Redis) -> None:
        self._complete_from = float("inf")
        client.close()

    def _take(self, data: bytes | str) -> None:
        text = data.decode() if isinstance(data, bytes) else data
        key, _, rest = text.partition(" ")
        ttl_text, _, value = rest.partition(" ")
        record = FlowRecord.decode(value)
        if record is None or not ttl_text.isdigit() or len(key) != 64:
            logger.warning("%s: ignored a malformed flow record message", self._where)
            return
        self.memory.put(key, record, int(ttl_text) / 1000)
