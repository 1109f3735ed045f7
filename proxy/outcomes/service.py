"""The outcome machinery one proxy process runs: store, observer, webhooks, poller, guard."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import redis

from connection_map import ConnectionMap
from flags.redis.keys import redact_url
from proxy.config import Config, read_secret_file
from proxy.flag_backend import UnmanagedFlagBackend, open_rollout_store
from proxy.ops import metrics
from proxy.outcomes.counts import MemoryOutcomeStore, OutcomeStore, OutcomesUnavailable
from proxy.outcomes.event_intake import EventIntake
from proxy.outcomes.guard import RolloutGuard
from proxy.outcomes.lease import Lease, ProcessLease, RedisLease
from proxy.outcomes.observer import ProxyObserver
from proxy.outcomes.redis_counts import RedisOutcomeStore
from proxy.outcomes.webhooks import OutcomeWebhooks
from proxy.outcomes.workos_poller import (
    CursorStore,
    FileCursor,
    MemoryCursor,
    PollFailed,
    RedisCursor,
    WorkosPoller,
)

log = logging.getLogger("authswitch.outcomes")
T = TypeVar("T")


def open_outcome_store(
    config: Config, *, client_name: str
) -> tuple[OutcomeStore, redis.Redis | None, str]:
    """The configured store, its Redis client (None in memory) and its key prefix."""
    settings = config.outcomes
    retention = int(settings.retention_days * 86_400)
    choice = settings.store or ("redis" if config.flags.backend == "redis" else "memory")
    if choice == "memory":
        store: OutcomeStore = MemoryOutcomeStore(
            retention_minutes=retention // 60,
            max_buckets=settings.max_memory_buckets,
            max_event_ids=settings.max_memory_event_ids,
        )
        return store, None, ""
    if settings.redis is not None:
        url, prefix = settings.redis.url, settings.redis.key_prefix
        client = settings.redis.client(client_name)
    else:  # the flags' server and prefix, with a timeout of at least 1 s
        url, prefix = config.flags.redis.url, config.flags.redis.key_prefix
        client = config.flags.redis.client(client_name, min_socket_timeout=1.0)
    redis_store = RedisOutcomeStore(
        client,
        prefix,
        retention_seconds=retention,
        dedupe_seconds=int(settings.dedupe_hours * 3600),
        where=f"redis {redact_url(url)}",
    )
    return redis_store, client, prefix


class OutcomeService:
    """Started and stopped with the proxy; `observe` is the callback path's only entry."""

    def __init__(
        self,
        config: Config,
        current_map: Callable[[], ConnectionMap],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        settings = self.settings = config.outcomes
        self.store, self._client, prefix = open_outcome_store(
            config, client_name="authswitch-outcomes"
        )
        self._in_thread = self._client is not None
        label = metrics.ConnectionLabels(config.metrics.max_connection_labels)
        self.observer = ProxyObserver(
            self.store, settings.proxy, in_thread=self._in_thread, label=label, clock=clock
        )
        self.intake = EventIntake(self.store, in_thread=self._in_thread, label=label, clock=clock)
        self.webhooks = OutcomeWebhooks(settings, self.intake, current_map)
        self.poller: WorkosPoller | None = None
        self._poll_lease: Lease = ProcessLease()
        if settings.workos.enabled and settings.workos.poll:
            self.poller = WorkosPoller(
                settings.workos,
                self.intake,
                self._cursor(prefix, settings.workos.cursor_file),
                current_map,
                retention_seconds=settings.retention_days * 86_400,
            )
            self._poll_lease = self._lease(prefix, "workos-poller")
        self.guard: RolloutGuard | None = None
        if settings.guard.mode != "off":
            try:
                rollout = open_rollout_store(config, client_name="authswitch-guard", min_timeout=1)
            except UnmanagedFlagBackend as exc:
                log.warning("rollout guard off: %s", exc)
            else:
                sources = ["workos"] if settings.workos.enabled else []
                sources += ["generic"] if settings.generic.enabled else []
                self.guard = RolloutGuard(
                    settings,
                    self.store,
                    rollout,
                    current_map,
                    self._lease(prefix, "guard"),
                    clock=clock,
                    silence_sources=sources,
                    label=label,
                )
        self._tasks: list[asyncio.Task[None]] = []

    def _lease(self, prefix: str, name: str) -> Lease:
        if self._client is None:
            return ProcessLease()
        key = f"{prefix}:outcomes:lease:{name}"
        return RedisLease(self._client, key, seconds=self.settings.guard.lease_seconds)

    def _cursor(self, prefix: str, path: Path | None) -> CursorStore:
        if self._client is not None:
            return RedisCursor(self._client, f"{prefix}:outcomes:cursor:workos")
        return FileCursor(path) if path is not None else MemoryCursor()

    async def _call(self, function: Callable[[], T]) -> T:
        if self._in_thread:
            return await asyncio.to_thread(function)
        return function()

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self.observer.run()))
        if self.poller is not None:
            await self.poller.start()
            self._tasks.append(asyncio.create_task(self._poll_forever(self.poller)))
        if self.guard is not None:
            self._tasks.append(asyncio.create_task(self._guard_forever(self.guard)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.observer.flush()
        if self.poller is not None:
            await self.poller.close()
        for lease in (self._poll_lease, getattr(self.guard, "_lease", None)):
            if lease is not None:
                await self._call(lease.release)

    async def _poll_forever(self, poller: WorkosPoller) -> None:
        assert self.settings.workos.poll_seconds > 0
        while True:
            if await self._call(self._poll_lease.hold):
                try:
                    await poller.poll_once()
                except (PollFailed, OutcomesUnavailable) as exc:
                    metrics.OUTCOME_STORE_ERRORS.labels("workos_poll").inc()
                    log.warning("WorkOS events not polled: %s", exc)
            await asyncio.sleep(self.settings.workos.poll_seconds)

    async def _guard_forever(self, guard: RolloutGuard) -> None:
        while True:
            await self._run_guarded(self._call(guard.round))
            await asyncio.sleep(self.settings.guard.interval_seconds)

    @staticmethod
    async def _run_guarded(round_: Awaitable[object]) -> None:
        try:
            await round_
        except Exception:  # a bug must not end the guard's loop; it is logged with its trace
            log.exception("guard round failed")


def check_outcome_secrets(config: Config) -> None:
    """Read every secret file the outcome sources name (ConfigError naming the key if one
    can't be read), so `serve` stops with one clear message instead of a worker's traceback."""
    settings = config.outcomes
    if not settings.enabled:
        return
    files = {
        "outcomes.workos.webhook_secret_file": settings.workos.webhook_secret_file
        if settings.workos.enabled
        else None,
        "outcomes.workos.api_key_file": settings.workos.api_key_file
        if settings.workos.enabled and settings.workos.poll
        else None,
        "outcomes.generic.secret_file": settings.generic.secret_file
        if settings.generic.enabled
        else None,
        "outcomes.auth0.token_file": settings.auth0.token_file if settings.auth0.enabled else None,
        "outcomes.redis.password_file": settings.redis.password_file if settings.redis else None,
    }
    for key, path in files.items():
        if path is not None:
            read_secret_file(path, key)
