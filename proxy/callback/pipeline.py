"""A callback, start to end: intake, identify, decide, forward or fall through, account."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from connection_map import ConnectionMap
from proxy.callback.account import CallbackAccounting
from proxy.callback.context import Callback
from proxy.callback.decide import RouteDecider, decide
from proxy.callback.fall_through import LegacyFallThrough
from proxy.callback.forward import NewProviderForward
from proxy.callback.identify import identify, recall_flow
from proxy.callback.intake import NotRead, take_in
from proxy.callback.routes import RouteMatch
from proxy.callback.saml_response import SamlRejected
from proxy.config import Config
from proxy.http.asgi_types import Message, Receive, Scope, Send
from proxy.http.correlation import correlate
from proxy.http.forwarder import ClientStalled, HttpForwarder, ResponseTruncated
from proxy.http.request_body import ClientDisconnected, RequestRejected
from proxy.http.responses import send_error

if TYPE_CHECKING:
    from proxy.flow_store import FlowStore
    from proxy.ops.tracing import RequestTracing
    from proxy.outcomes.observer import ProxyObserver
    from proxy.shadow.sampler import ShadowSampler

_UpstreamStep = Callable[[Callback, Send], Awaitable[None]]
_CANCELLED = (
    "authswitch stopped before this callback was answered; it may have reached the upstream"
)


class AnswerWatch:
    """Wraps `send` to remember the answer's status and, for a redirect, its Location: what
    accounting and the login outcome are read from."""

    __slots__ = ("_send", "location", "status")

    def __init__(self, send: Send) -> None:
        self._send = send
        self.status: int | None = None
        self.location: bytes | None = None

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            status = self.status = message["status"]
            if 300 <= status < 400:
                for name, value in message.get("headers", ()):
                    if name.lower() == b"location":
                        self.location = value
                        break
        await self._send(message)


class CallbackPipeline:
    """Runs each matched callback through its six steps; in-memory apart from the forward."""

    def __init__(
        self,
        config: Config,
        *,
        connections: Callable[[], ConnectionMap],
        decider: RouteDecider,
        flows: FlowStore | None,
        forwarder: HttpForwarder,
        legacy: LegacyFallThrough,
        outcomes: ProxyObserver | None = None,
        shadow: ShadowSampler | None = None,
        tracing: RequestTracing | None = None,
    ) -> None:
        self._limits = config.limits
        self._body_seconds = config.timeouts.body_seconds
        self._bounce = config.bounce_back
        self._connections = connections
        self._decider = decider
        self._flows = flows
        tracing_settings = config.tracing
        self._request_id_header = tracing_settings.request_id_header.encode()
        self._new_provider = NewProviderForward(
            config.forwarding,
            forwarder,
            legacy,
            self._request_id_header if tracing_settings.send_request_id else None,
        )
        self._accounting = CallbackAccounting(config.metrics.max_connection_labels)
        self._outcomes = outcomes
        self._shadow = shadow
        # The steps, each in a span of its own with tracing on; the plain functions without.
        self._tracing = tracing
        self._take_in = take_in
        self._recall_flow = recall_flow
        self._identify = identify
        self._decide = decide
        self._forward: _UpstreamStep = self._new_provider.forward
        self._fall_through: _UpstreamStep = legacy.fall_through
        if tracing is not None:
            self._take_in = tracing.async_step("authswitch.intake", take_in)
            self._recall_flow = tracing.async_step("authswitch.recall_flow", recall_flow)
            self._identify = tracing.step("authswitch.identify", identify)
            self._decide = tracing.step("authswitch.decide", decide)
            self._forward = tracing.upstream_step("authswitch.forward", self._forward)
            self._fall_through = tracing.upstream_step(
                "authswitch.fall_through", legacy.fall_through
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send, match: RouteMatch) -> None:
        """Route one callback. However it ends (cancelled by shutdown, upstream broke off
        mid-answer, client gone, a bug) it gets one log line and one metric."""
        started = time.perf_counter()
        request_id, trace_id = correlate(scope["headers"], self._request_id_header)
        callback = Callback(scope, match, request_id, started, trace_id)
        if self._tracing is None:
            await self._handle(callback, receive, send)
        else:
            await self._tracing.trace_callback(callback, self._handle(callback, receive, send))

    async def _handle(self, callback: Callback, receive: Receive, send: Send) -> None:
        answer = AnswerWatch(send)
        try:
            await self._route(callback, receive, answer)
        except asyncio.CancelledError:
            if answer.status is None:
                # Not a bare 500: the artifact may already be upstream, and the client is told.
                with contextlib.suppress(OSError):  # the client may be gone as well
                    await send_error(answer, 503, "cancelled", _CANCELLED, callback.request_id)
            self._unfinished(callback, answer, "cancelled")
            raise
        except ResponseTruncated:
            self._unfinished(callback, answer, "upstream_truncated")
            raise
        except ClientStalled:  # it stopped reading a proxied answer: aborted by the app
            self._unfinished(callback, answer, "client_stalled")
            raise
        except Exception:
            self._unfinished(callback, answer, "internal_error")
            raise
        self._account(callback, answer)

    async def _route(self, callback: Callback, receive: Receive, send: Send) -> None:
        try:
            await self._take_in(callback, receive, self._limits, self._body_seconds)
        except ClientDisconnected:
            callback.status, callback.outcome = 499, "client_disconnected"
            callback.reason = "client_disconnected"
            return
        except (RequestRejected, SamlRejected) as exc:
            await self._refuse(callback, send, exc)
            return
        except NotRead as exc:
            callback.reason = exc.reason
            await self._fall_through(callback, send)
            return
        if self._flows is not None:
            await self._recall_flow(callback, self._flows)
        self._identify(callback, self._connections())
        self._decide(callback, self._decider, self._bounce)
        if callback.goes_to_new_provider():
            await self._forward(callback, send)
        else:
            await self._fall_through(callback, send)

    def _unfinished(self, callback: Callback, answer: AnswerWatch, outcome: str) -> None:
        callback.status = answer.status if answer.status is not None else 500
        callback.outcome = outcome
        self._account(callback, answer)

    def _account(self, callback: Callback, answer: AnswerWatch) -> None:
        self._accounting.account(callback)
        if self._shadow is not None:  # a sample of a legacy callback; never waits
            self._shadow.offer(callback)
        if self._outcomes is not None and callback.destination in ("new", "legacy"):
            connection = callback.connection
            self._outcomes.observe(
                connection.id if connection is not None else None,
                callback.destination,
                callback.match.route.path,
                callback.outcome,
                answer.status,
                answer.location,
            )

    @staticmethod
    async def _refuse(callback: Callback, send: Send, exc: RequestRejected | SamlRejected) -> None:
        """Answer a callback authswitch will not route with its reason code."""
        if isinstance(exc, RequestRejected):
            status, reason = exc.status, exc.reason
        else:
            status, reason = 400, f"saml_{exc.reason}"
        await send_error(send, status, reason, str(exc), callback.request_id)
        callback.status, callback.outcome = status, "rejected"
        callback.destination, callback.reason = "rejected", reason
