"""A callback, start to end: intake, identify, decide, forward or fall through, account."""

from __future__ import annotations

import time
from collections.abc import Callable

from connection_map import ConnectionMap
from proxy.callback.account import CallbackAccounting
from proxy.callback.context import Callback, new_request_id
from proxy.callback.decide import RouteDecider, decide
from proxy.callback.fall_through import LegacyFallThrough
from proxy.callback.forward import NewProviderForward
from proxy.callback.identify import identify, recall_flow
from proxy.callback.intake import take_in
from proxy.callback.routes import RouteMatch
from proxy.callback.saml_response import SamlRejected
from proxy.config import Config
from proxy.flow_store import FlowStore
from proxy.http.asgi_types import Receive, Scope, Send
from proxy.http.forwarder import HttpForwarder
from proxy.http.request_body import ClientDisconnected, RequestRejected
from proxy.http.responses import send_error


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
    ) -> None:
        self._limits = config.limits
        self._body_seconds = config.timeouts.body_seconds
        self._bounce = config.bounce_back
        self._connections = connections
        self._decider = decider
        self._flows = flows
        self._legacy = legacy
        self._new_provider = NewProviderForward(config.forwarding, forwarder, legacy)
        self._accounting = CallbackAccounting(config.metrics.max_connection_labels)

    async def __call__(self, scope: Scope, receive: Receive, send: Send, match: RouteMatch) -> None:
        callback = Callback(scope, match, new_request_id(), time.perf_counter())
        try:
            await take_in(callback, receive, self._limits, self._body_seconds)
        except ClientDisconnected:
            return
        except (RequestRejected, SamlRejected) as exc:
            await self._refuse(callback, send, exc)
            self._accounting.account(callback)
            return
        if self._flows is not None:
            await recall_flow(callback, self._flows)
        identify(callback, self._connections())
        decide(callback, self._decider, self._bounce)
        if callback.goes_to_new_provider():
            await self._new_provider.forward(callback, send)
        else:
            await self._legacy.fall_through(callback, send)
        self._accounting.account(callback)

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
