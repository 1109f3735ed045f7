"""The authswitch ASGI application: callbacks are routed, everything else goes to legacy."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import AsyncIterator
from urllib.parse import quote, urlsplit

from openfeature import api
from openfeature.provider import FeatureProvider, ProviderStatus

from connection_map import ConnectionMapError, ForwardMode, ServedConnection
from connection_map.redis_follower import RedisConnectionMap
from flags import ReportsFlagHealth
from proxy import metrics
from proxy.asgi_types import Message, RawHeaders, Receive, Scope, Send
from proxy.broker.service import PasswordBroker
from proxy.config import Config
from proxy.decision import Decision, RouteDecider
from proxy.flag_backend import provider_for
from proxy.flow_affinity import START_PATH, FlowStartEndpoint, flow_store_for
from proxy.flow_store import FlowRecord, FlowStore
from proxy.forwarded_headers import request_headers
from proxy.identify import identify_connection
from proxy.intake import (
    CallbackFields,
    CallbackRejected,
    ClientDisconnected,
    parse_fields,
    read_body,
)
from proxy.json_logging import flush_logs
from proxy.map_backend import MapSource, map_source_for
from proxy.new_provider import send_form_post, send_redirect, target_url
from proxy.outcomes.answer_rules import status_class
from proxy.outcomes.observer import AnswerCapture
from proxy.outcomes.service import OutcomeService
from proxy.responses import send_bytes, send_error, send_json
from proxy.route_table import RouteMatch, RouteTable
from proxy.saml_response import SamlRejected, inspect_saml_response
from proxy.upstream import HttpForwarder, ResponseTruncated, UpstreamFailed, UpstreamUnavailable

log = logging.getLogger("authswitch")
access_log = logging.getLogger("authswitch.access")
_instances = itertools.count(1)


class AuthSwitch:
    """Raw ASGI app. Construct it to validate the map and flags; uvicorn's lifespan starts it."""

    def __init__(self, config: Config, *, flag_provider: FeatureProvider | None = None) -> None:
        self.config = config
        self.connection_map: MapSource = map_source_for(config)
        self.flag_provider = flag_provider or provider_for(config.flags)
        self.flags_domain = f"authswitch-{next(_instances)}"
        openfeature = config.flags.openfeature if config.flags.backend == "openfeature" else None
        self._decider = RouteDecider(
            api.get_client(self.flags_domain), openfeature.flag if openfeature else None
        )
        self._routes = RouteTable(config.routes)
        self._flows = flow_store_for(config)
        self._flow_start = (
            None if self._flows is None else FlowStartEndpoint(config, self._flows, self._decider)
        )
        timeouts = config.timeouts
        self._forwarder = HttpForwarder(
            connect_seconds=timeouts.connect_seconds,
            read_seconds=timeouts.read_seconds,
            keepalive_seconds=timeouts.upstream_keepalive_seconds,
        )
        legacy = urlsplit(str(config.legacy.url))
        self._legacy_base = f"{legacy.scheme}://{legacy.netloc}{legacy.path.rstrip('/')}"
        self._legacy_host = None if config.legacy.preserve_host else legacy.netloc.encode()
        self._ops_prefix = config.ops_prefix + "/"
        self._ready_requires_redis = (
            config.flags.backend == "redis" and config.flags.redis.ready_requires_redis
        )
        self._connection_label = metrics.ConnectionLabels(config.metrics.max_connection_labels)
        self._map_watch: asyncio.Task[None] | None = None
        self._started = False
        self._broker = (
            PasswordBroker(
                config.broker,
                body_seconds=timeouts.body_seconds,
                trust_forwarded_headers=config.forwarding.trust_forwarded_headers,
            )
            if config.broker.enabled
            else None
        )
        self._outcomes = (
            OutcomeService(config, lambda: self.connection_map.current)
            if config.outcomes.enabled
            else None
        )

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
        self._map_watch = asyncio.create_task(self._watch_connection_map())
        if self._outcomes is not None:
            await self._outcomes.start()
        self._started = True
        log.info(
            "started",
            extra={"connections": len(self.connection_map.current), "flags": self.flags_domain},
        )

    async def shutdown(self) -> None:
        if self._map_watch is not None:
            self._map_watch.cancel()
        await self._forwarder.close()
        if self._broker is not None:
            await self._broker.shutdown()
        if self._flows is not None:
            await self._flows.stop()
        if self._outcomes is not None:
            await self._outcomes.stop()
        self.flag_provider.shutdown()
        self._started = False
        # uvicorn re-raises SIGTERM after this, which ends the process without atexit.
        flush_logs()

    async def _watch_connection_map(self) -> None:
        source = self.connection_map
        if isinstance(source, RedisConnectionMap):
            # Its own thread follows Redis, and builds and swaps the map off the event loop.
            await asyncio.to_thread(source.start)
            try:
                await asyncio.Event().wait()
            finally:
                source.close()
            return
        source.health().publish()
        while True:
            await asyncio.sleep(1.0)
            try:
                if await asyncio.to_thread(source.reload_if_changed):
                    log.info(
                        "connection map reloaded",
                        extra={"connections": len(source.current)},
                    )
            except ConnectionMapError as exc:
                log.warning("connection map not reloaded, keeping the last good one: %s", exc)
            source.health().publish()

    # -- requests ---------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if self._broker is not None and path.startswith(self._broker.prefix):
            await self._broker(scope, receive, send)
            return
        if self._outcomes is not None and path.startswith(self._outcomes.webhooks.prefix):
            await self._outcomes.webhooks(scope, receive, send)
            return
        if path.startswith(self._ops_prefix):
            await self._ops(path[len(self._ops_prefix) :], scope, send)
            return
        match = self._routes.match(path)
        if match is None or scope["method"] not in match.route.methods:
            await self._pass_through(scope, receive, send)
            return
        await self._callback(scope, receive, send, match)

    async def _callback(
        self, scope: Scope, receive: Receive, send: Send, match: RouteMatch
    ) -> None:
        started = time.perf_counter()
        request_id = _request_id()
        route = match.route
        limits = self.config.limits
        headers: RawHeaders = scope["headers"]
        try:
            body = await read_body(
                receive,
                _content_length(headers),
                limits.max_body_bytes,
                self.config.timeouts.body_seconds,
            )
            received = time.perf_counter()
            fields = parse_fields(
                scope["query_string"],
                body,
                _header(headers, b"content-type"),
                limits.max_fields,
                match.single_valued,
            )
            issuer, unsolicited, in_response_to = _saml_facts(
                route.protocol, fields, limits.max_body_bytes
            )
        except ClientDisconnected:
            return
        except (CallbackRejected, SamlRejected) as exc:
            status, reason = _rejection(exc)
            await send_error(send, status, reason, str(exc), request_id)
            self._account(scope, request_id, started, None, "rejected", reason, "rejected", status)
            return
        flow = (
            None
            if self._flows is None
            else await self._flow_of(self._flows, route.protocol, fields, in_response_to)
        )
        identification = identify_connection(
            route,
            match.params,
            fields,
            issuer,
            scope["path"],
            self.connection_map.current,
            flow=flow,
        )
        bounce = self.config.bounce_back
        decision = self._decider.decide(
            identification,
            route.protocol,
            bounced_back=fields.query.get(bounce.param) == bounce.value,
            unsolicited=unsolicited,
            flow=flow,
        )
        decided = time.perf_counter()
        metrics.DECISION_SECONDS.observe(decided - received)
        answer = AnswerCapture(send)  # the status and Location the outcome is read from
        if decision.destination == "new" and decision.connection is not None:
            status, outcome, reason = await self._to_new_provider(
                scope, answer, decision, decision.connection, body, fields, request_id
            )
        else:
            status, outcome = await self._to_legacy(scope, answer, body, request_id)
            reason = decision.reason
        destination = "new" if outcome.startswith("new_") else "legacy"
        metrics.FORWARD_SECONDS.labels(destination).observe(time.perf_counter() - decided)
        connection_id = decision.connection.id if decision.connection is not None else None
        if self._outcomes is not None:
            self._outcomes.observe(
                connection_id, destination, route.path, outcome, answer.status, answer.location
            )
        self._account(
            scope,
            request_id,
            started,
            connection_id,
            destination,
            reason,
            outcome,
            status,
            strategy=identification.strategy.value if identification.strategy else None,
        )

    @staticmethod
    async def _flow_of(
        flows: FlowStore, protocol: str, fields: CallbackFields, in_response_to: str | None
    ) -> FlowRecord | None:
        """The recorded start of this callback's flow (SAML InResponseTo, OIDC state), if any."""
        flow_id = in_response_to if protocol == "saml" else fields.get("state")
        return await flows.lookup(flow_id) if flow_id else None

    async def _to_new_provider(
        self,
        scope: Scope,
        send: Send,
        decision: Decision,
        connection: ServedConnection,
        body: bytes,
        fields: CallbackFields,
        request_id: str,
    ) -> tuple[int, str, str]:
        assert connection.new_provider is not None
        target = target_url(str(connection.new_provider.url), scope["query_string"])
        mode = connection.new_provider.mode
        method: str = scope["method"]
        if mode is ForwardMode.FORM_POST and method == "POST" and fields.form_pairs:
            status = await send_form_post(
                send,
                target,
                fields.form_pairs,
                request_id,
                self.config.forwarding.form_post_redirect_sources,
            )
            return status, "new_form_post", decision.reason
        if mode is not ForwardMode.PROXY:
            status = await send_redirect(send, method, target, request_id)
            return status, "new_redirect", decision.reason
        headers = request_headers(
            scope["headers"],
            client_host=_client_host(scope),
            scheme=scope["scheme"],
            host=_header(scope["headers"], b"host"),
            upstream_host=urlsplit(target).netloc.encode(),
            trust_forwarded=self.config.forwarding.trust_forwarded_headers,
            drop_credentials=not self.config.forwarding.forward_cookies_to_new_provider,
        )
        try:
            status = await self._forwarder.forward(
                send,
                method=method,
                url=target,
                headers=headers,
                body=body,
                extra_response_headers=[(b"x-request-id", request_id.encode())],
            )
        except UpstreamUnavailable:
            # Nothing reached the new provider, so legacy may still take the callback.
            status, outcome = await self._to_legacy(scope, send, body, request_id)
            return status, outcome, "new_provider_unreachable"
        except UpstreamFailed as exc:
            await send_error(
                send, 502, exc.reason, "the new provider did not answer in time", request_id
            )
            return 502, "new_upstream_error", decision.reason
        return status, "new_proxied", decision.reason

    async def _to_legacy(
        self, scope: Scope, send: Send, body: bytes | AsyncIterator[bytes] | None, request_id: str
    ) -> tuple[int, str]:
        headers = request_headers(
            scope["headers"],
            client_host=_client_host(scope),
            scheme=scope["scheme"],
            host=_header(scope["headers"], b"host"),
            upstream_host=self._legacy_host,
            trust_forwarded=self.config.forwarding.trust_forwarded_headers,
        )
        raw_path = scope.get("raw_path") or quote(scope["path"]).encode()
        url = self._legacy_base + raw_path.decode("latin-1")
        if scope["query_string"]:
            url += "?" + scope["query_string"].decode("latin-1")
        try:
            status = await self._forwarder.forward(
                send,
                method=scope["method"],
                url=url,
                headers=headers,
                body=body,
                extra_response_headers=[(b"x-request-id", request_id.encode())],
            )
        except UpstreamUnavailable:
            await send_error(
                send,
                502,
                "legacy_unavailable",
                "the legacy upstream could not be reached",
                request_id,
            )
            return 502, "legacy_unavailable"
        except UpstreamFailed as exc:
            await send_error(
                send, 502, exc.reason, "the legacy upstream did not answer in time", request_id
            )
            return 502, "legacy_upstream_error"
        return status, "legacy_proxied"

    async def _pass_through(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id = _request_id()
        body = _stream_body(receive) if _has_body(scope["headers"]) else None
        try:
            status, outcome = await self._to_legacy(scope, send, body, request_id)
        except ClientDisconnected:
            return
        metrics.PASSTHROUGH.labels(outcome).inc()
        access_log.info(
            "request",
            extra={
                "fields": {
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "outcome": outcome,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                }
            },
        )

    def _account(
        self,
        scope: Scope,
        request_id: str,
        started: float,
        connection_id: str | None,
        destination: str,
        reason: str,
        outcome: str,
        status: int,
        *,
        strategy: str | None = None,
    ) -> None:
        elapsed = time.perf_counter() - started
        label = self._connection_label(connection_id)
        metrics.CALLBACKS.labels(label, destination, reason, outcome, status_class(status)).inc()
        metrics.CALLBACK_SECONDS.labels(destination).observe(elapsed)
        access_log.info(
            "callback",
            extra={
                "fields": {
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": scope["path"],
                    "connection": connection_id,
                    "strategy": strategy,
                    "destination": destination,
                    "reason": reason,
                    "outcome": outcome,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                }
            },
        )

    # -- operations -------------------------------------------------------------------------

    async def _ops(self, name: str, scope: Scope, send: Send) -> None:
        if name == START_PATH and self._flow_start is not None:
            await self._flow_start(scope, send, self.connection_map.current)
        elif name == "livez":
            await send_json(send, 200, {"status": "ok"})
        elif name == "readyz":
            status, report = self.readiness()
            await send_json(send, status, report)
        elif name == "metrics":
            body, content_type = metrics.exposition()
            await send_bytes(send, 200, body, [], content_type=content_type.encode())
        else:
            await send_json(send, 404, {"error": "not_found"})

    def readiness(self) -> tuple[int, dict[str, object]]:
        """Whether this replica can route: map loaded, flag state known; the body says why not."""
        flag_status = api.get_client(self.flags_domain).get_provider_status()
        flags: dict[str, object] = {"provider_status": flag_status.value}
        missing: list[str] = []
        if not self._started:
            missing.append("not started")
        if flag_status not in (ProviderStatus.READY, ProviderStatus.STALE, ProviderStatus.ERROR):
            missing.append(f"flag provider is {flag_status.value}")
        # Stale or in ERROR with a last known good state still routes: a flag backend outage
        # must not take replicas out of the load balancer (unless ready_requires_redis).
        if isinstance(self.flag_provider, ReportsFlagHealth):
            health = self.flag_provider.health()
            flags.update(health.as_dict())
            if not health.has_state:
                missing.append("no flag state known yet (every connection goes to legacy)")
            elif health.stale and self._ready_requires_redis:
                missing.append("flag backend unreachable (serving the last known state)")
        map_health = self.connection_map.health()
        if not map_health.loaded:
            missing.append("no connection map known yet (every callback goes to legacy)")
        checks: dict[str, object] = {
            "started": self._started,
            "connection_map": map_health.as_dict(),
            "flags": flags,
        }
        # Not routing, but serving less: the broker denies every hook without its Redis.
        degraded: list[str] = []
        if self._broker is not None and self._started:
            reachable = self._broker.redis_reachable
            checks["broker"] = {"redis_reachable": reachable}
            if not reachable:
                problem = "broker Redis unreachable (every password hook is denied)"
                requires = self._broker.config.redis.ready_requires_redis
                (missing if requires else degraded).append(problem)
        ready = not missing
        report = {"ready": ready, "missing": missing, "degraded": degraded, "checks": checks}
        return (200 if ready else 503), report


def _saml_facts(
    protocol: str, fields: CallbackFields, limit: int
) -> tuple[str | None, bool, str | None]:
    """The routing issuer, whether the response is unsolicited, and its InResponseTo."""
    if protocol != "saml":
        return None, False, None
    value = fields.get("SAMLResponse")
    if value is None:
        return None, False, None
    facts = inspect_saml_response(value, max_decoded_bytes=limit)
    return facts.issuer, facts.in_response_to is None, facts.in_response_to


def _rejection(exc: CallbackRejected | SamlRejected) -> tuple[int, str]:
    if isinstance(exc, CallbackRejected):
        return exc.status, exc.reason
    return 400, f"saml_{exc.reason}"


def _request_id() -> str:
    # Correlates log lines and answers; it guards nothing, so no urandom syscall per request.
    return f"{random.getrandbits(64):016x}"


def _header(headers: RawHeaders, name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def _content_length(headers: RawHeaders) -> int | None:
    value = _header(headers, b"content-length")
    if value is None or not value.isdigit():
        return None
    return int(value)


def _has_body(headers: RawHeaders) -> bool:
    length = _header(headers, b"content-length")
    if length is not None:
        return length != b"0"
    return _header(headers, b"transfer-encoding") is not None


def _client_host(scope: Scope) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


async def _stream_body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return
