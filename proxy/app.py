"""The authswitch ASGI application: callbacks are routed, everything else goes to legacy.

Construction validates the map and flags; the lifespan starts and stops what runs beside the
requests; dispatch sends each request to the broker, the flow-start endpoint, the callback
pipeline (proxy/callback/) or through to legacy. Nothing operational is served here: /livez,
/readyz and /metrics are on the ops listener (proxy/ops/ops_listener.py).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from openfeature import api
from openfeature.provider import FeatureProvider

from flags import RouteFlagProvider
from proxy.callback.account import account_pass_through
from proxy.callback.decide import RouteDecider
from proxy.callback.fall_through import LegacyFallThrough
from proxy.callback.pipeline import CallbackPipeline
from proxy.callback.routes import CallbackRoutes
from proxy.config import Config
from proxy.flag_backend import provider_for
from proxy.flow_affinity import START_PATH, FlowStartEndpoint, flow_store_for
from proxy.http.asgi_types import Receive, Scope, Send
from proxy.http.correlation import correlate
from proxy.http.forwarder import ClientStalled, HttpForwarder, ResponseTruncated
from proxy.http.request_target import MESSAGES as TARGET_MESSAGES
from proxy.http.request_target import target_problem
from proxy.http.responses import send_error
from proxy.map_backend import MapSource, follow_connection_map, map_source_for
from proxy.ops.json_logging import flush_logs
from proxy.ops.readiness import readiness_report
from proxy.ops.worker_readiness import ReadinessPublisher

if TYPE_CHECKING:
    from connection_map import ConnectionMap
    from proxy.broker.service import PasswordBroker
    from proxy.ops.tracing import RequestTracing
    from proxy.outcomes.service import OutcomeService
    from proxy.shadow.sampler import ShadowSampler

log = logging.getLogger("authswitch")
_instances = itertools.count(1)


class AuthSwitch:
    """Raw ASGI app. Construct it to validate the map and flags; uvicorn's lifespan starts it."""

    def __init__(self, config: Config, *, flag_provider: FeatureProvider | None = None) -> None:
        self.config = config
        self.connection_map: MapSource = map_source_for(config)
        self.flag_provider = flag_provider or provider_for(config.flags)
        self.flags_domain = f"authswitch-{next(_instances)}"
        openfeature = config.flags.openfeature if config.flags.backend == "openfeature" else None
        builtin = self.flag_provider if isinstance(self.flag_provider, RouteFlagProvider) else None
        decider = RouteDecider(
            api.get_client(self.flags_domain),
            openfeature.flag if openfeature else None,
            builtin=builtin,
        )
        self._routes = CallbackRoutes(config.routes)
        self._flows = flow_store_for(config)
        self._flow_start = (
            None if self._flows is None else FlowStartEndpoint(config, self._flows, decider)
        )
        timeouts = config.timeouts
        self._forwarder = HttpForwarder(
            connect_seconds=timeouts.connect_seconds,
            read_seconds=timeouts.read_seconds,
            keepalive_seconds=timeouts.upstream_keepalive_seconds,
            max_header_bytes=config.limits.upstream_max_header_bytes,
            max_headers=config.limits.upstream_max_headers,
            pool_size=config.limits.upstream_pool_size,
            pool_wait_seconds=timeouts.upstream_pool_wait_seconds,
            callback_reserve=config.limits.callback_reserve,
            client_idle_seconds=timeouts.client_idle_seconds,
        )
        self._tracing = request_tracing_for(config)
        self._legacy = LegacyFallThrough(
            config.legacy, config.forwarding, self._forwarder, config.tracing, self._tracing
        )
        self._outcomes = outcome_service_for(config, lambda: self.connection_map.current)
        self.shadow: ShadowSampler | None = shadow_sampler_for(config)
        self._callback = CallbackPipeline(
            config,
            connections=lambda: self.connection_map.current,
            decider=decider,
            flows=self._flows,
            forwarder=self._forwarder,
            legacy=self._legacy,
            outcomes=None if self._outcomes is None else self._outcomes.observer,
            shadow=self.shadow,
            tracing=self._tracing,
        )
        # The flow-start endpoint's path; the rest of ops_prefix is the legacy host's.
        self._flow_start_path = f"{config.ops_prefix}/{START_PATH}"
        self._map_watch: asyncio.Task[None] | None = None
        # Under `authswitch serve` the ops listener, in the supervisor, reads each worker's report.
        self._readiness_publisher = ReadinessPublisher.from_env(self.readiness)
        self._started = False
        self._broker = password_broker_for(config)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:
                await self._http(scope, receive, send)
            except ResponseTruncated:
                # Re-raised so uvicorn drops the connection: the client must see a broken
                # answer, not a short one that looks complete.
                log.warning(
                    "upstream broke off mid-response; client connection aborted",
                    extra={"fields": {"method": scope["method"], "path": scope["path"]}},
                )
                raise
            except ClientStalled:
                log.warning(
                    "client stopped reading the answer for timeouts.client_idle_seconds; "
                    "connection aborted",
                    extra={"fields": {"method": scope["method"], "path": scope["path"]}},
                )
                raise
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        else:  # websockets are not part of any SSO callback flow
            await send({"type": "websocket.close", "code": 1008})

    # -- lifecycle --------------------------------------------------------------------------

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        await asyncio.to_thread(api.set_provider_and_wait, self.flag_provider, self.flags_domain)
        await self._forwarder.start()
        if self._broker is not None:
            await self._broker.startup()
        if self._flows is not None:
            await self._flows.start()
        self._map_watch = asyncio.create_task(follow_connection_map(self.connection_map))
        if self._outcomes is not None:
            await self._outcomes.start()
        if self.shadow is not None:
            self.shadow.start()
        self._started = True
        if self._readiness_publisher is not None:
            self._readiness_publisher.start()
        log.info(
            "started",
            extra={"connections": len(self.connection_map.current), "flags": self.flags_domain},
        )

    async def shutdown(self) -> None:
        if self._readiness_publisher is not None:
            self._readiness_publisher.stop()
        if self._map_watch is not None:
            self._map_watch.cancel()
        await self._forwarder.close()
        if self._broker is not None:
            await self._broker.shutdown()
        if self._flows is not None:
            await self._flows.stop()
        if self._outcomes is not None:
            await self._outcomes.stop()
        if self.shadow is not None:
            await asyncio.to_thread(self.shadow.stop)
        self.flag_provider.shutdown()
        if self._tracing is not None:
            await asyncio.to_thread(self._tracing.shutdown)  # exports what is buffered
        self._started = False
        # uvicorn re-raises SIGTERM after this, which ends the process without atexit.
        flush_logs()

    # -- dispatch ---------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        problem = target_problem(path)
        if problem is not None:
            await _refuse_target(scope, send, problem, self.config.tracing.request_id_header)
            return
        if self._broker is not None and path.startswith(self._broker.prefix):
            await self._broker(scope, receive, send)
            return
        if self._outcomes is not None and path.startswith(self._outcomes.webhooks.prefix):
            await self._outcomes.webhooks(scope, receive, send)
            return
        if path == self._flow_start_path and self._flow_start is not None:
            await self._flow_start(scope, send, self.connection_map.current)
            return
        match = self._routes.match(path)
        if match is None or scope["method"] not in match.route.methods:
            await self._legacy.pass_through(scope, receive, send)
            return
        await self._callback(scope, receive, send, match)

    def readiness(self) -> tuple[int, dict[str, object]]:
        """Whether this replica can route: map loaded, flag state known; the body says why not."""
        flags = self.config.flags
        return readiness_report(
            started=self._started,
            flags_client=api.get_client(self.flags_domain),
            flag_provider=self.flag_provider,
            ready_requires_redis=flags.backend == "redis" and flags.redis.ready_requires_redis,
            connection_map=self.connection_map,
            broker=self._broker,
        )


# The features below are off by default; their modules (and the clients and parsers they
# import: scim2, cryptography, python3-saml, Redis stores) load only in a process that uses them.


def password_broker_for(config: Config) -> PasswordBroker | None:
    """The password broker's hooks, with `broker.enabled`."""
    if not config.broker.enabled:
        return None
    from proxy.broker.service import PasswordBroker

    return PasswordBroker(config.broker, body_seconds=config.timeouts.body_seconds)


def outcome_service_for(
    config: Config, connections: Callable[[], ConnectionMap]
) -> OutcomeService | None:
    """Login outcomes and the rollout guard, with `outcomes.enabled`."""
    if not config.outcomes.enabled:
        return None
    from proxy.outcomes.service import OutcomeService

    return OutcomeService(config, connections)


def shadow_sampler_for(config: Config) -> ShadowSampler | None:
    """The shadow checks' sampler, while a connection has a sample rate above 0."""
    if not config.shadow.sampling:
        return None
    from proxy.shadow.service import shadow_sampler_for as sampler_for

    return sampler_for(config)


def request_tracing_for(config: Config) -> RequestTracing | None:
    """The OpenTelemetry tracer, with tracing on; its module is imported only then."""
    if not config.tracing.enabled:
        return None
    from proxy.ops.tracing import RequestTracing  # only with the optional extra

    return RequestTracing(propagate=config.tracing.propagate)


async def _refuse_target(scope: Scope, send: Send, reason: str, request_id_header: str) -> None:
    """A request target that can't be matched and forwarded alike: a 400, counted and logged."""
    started = time.perf_counter()
    request_id, trace_id = correlate(scope["headers"], request_id_header.encode())
    await send_error(send, 400, reason, TARGET_MESSAGES[reason], request_id)
    account_pass_through(scope, request_id, started, 400, reason, trace_id)
