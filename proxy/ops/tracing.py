"""OpenTelemetry spans for callbacks and passed-through requests (`tracing.enabled`).

Imported only when tracing is on (the `authswitch[tracing]` extra): with it off, the callback
path pays one `is None` check. Spans parent on the caller's W3C trace context and are exported
over OTLP/HTTP as the standard OTEL_* variables say (endpoint, headers, sampler, resource).

Span attributes are the decision's facts only: method, path without the query, route,
connection, strategy, destination, reason, outcome, status. Never a header, a query string, a
form field or an exception message (those can carry SAMLResponse, code, state, cookies).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace.span import TraceFlags, TraceState
from opentelemetry.util.types import AttributeValue

from foundation.version import authswitch_version
from proxy.http.asgi_types import Scope
from proxy.http.trace_context import incoming_trace

if TYPE_CHECKING:
    from proxy.callback.context import Callback

P = ParamSpec("P")
R = TypeVar("R")
_TRACE_HEADERS = frozenset({b"traceparent", b"tracestate"})


@dataclass(slots=True)
class TracedRequest:
    """The span of one request and its ids for the log line."""

    span: trace.Span
    trace_id: str
    span_id: str


class RequestTracing:
    """One tracer per worker process; spans go to a batch exporter thread."""

    def __init__(self, *, propagate: bool, exporter: SpanExporter | None = None) -> None:
        attributes: dict[str, AttributeValue] = {"service.version": authswitch_version()}
        if not os.environ.get("OTEL_SERVICE_NAME"):
            attributes["service.name"] = "authswitch"
        self._provider = TracerProvider(resource=Resource.create(attributes))
        self._provider.add_span_processor(BatchSpanProcessor(exporter or OTLPSpanExporter()))
        self._tracer = self._provider.get_tracer("authswitch", authswitch_version())
        self._propagate = propagate

    def shutdown(self) -> None:
        """Export what is still buffered; called when the app stops."""
        self._provider.shutdown()

    # -- spans around a whole request ------------------------------------------------------

    @asynccontextmanager
    async def request_span(
        self, name: str, scope: Scope, request_id: str, route: str | None = None
    ) -> AsyncIterator[TracedRequest]:
        """A SERVER span for one request, child of the caller's trace context if valid."""
        attributes: dict[str, AttributeValue] = {
            "http.request.method": scope["method"],
            "url.path": scope["path"],
            "authswitch.request_id": request_id,
        }
        if route is not None:
            attributes["http.route"] = route
        with (
            self._tracer.start_as_current_span(
                name,
                context=_caller_context(scope),
                kind=SpanKind.SERVER,
                attributes=attributes,
                record_exception=False,
                set_status_on_exception=False,
            ) as span,
            _error_type(span),
        ):
            context = span.get_span_context()
            yield TracedRequest(
                span,
                trace.format_trace_id(context.trace_id),
                trace.format_span_id(context.span_id),
            )

    async def trace_callback(self, callback: Callback, handle: Awaitable[None]) -> None:
        """Await `handle` (the callback's steps) inside the callback's span; the callback's
        outcome becomes the span's attributes."""
        async with self.request_span(
            "authswitch.callback", callback.scope, callback.request_id, callback.match.route.path
        ) as traced:
            callback.trace_id, callback.span_id = traced.trace_id, traced.span_id
            try:
                await handle
            finally:
                _end_callback(traced.span, callback)

    async def trace_pass_through(
        self,
        scope: Scope,
        request_id: str,
        run: Callable[[Scope, str, str], Awaitable[tuple[int | None, str]]],
    ) -> None:
        """Run a pass-through (`run(scope to forward, trace id, span id)`) in a span."""
        async with self.request_span("authswitch.pass_through", scope, request_id) as traced:
            if self._propagate:
                scope = with_trace_context(scope, traced.span.get_span_context())
            status, outcome = await run(scope, traced.trace_id, traced.span_id)
            traced.span.set_attribute("authswitch.outcome", outcome)
            if status is not None:
                traced.span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    traced.span.set_status(Status(StatusCode.ERROR))

    # -- spans around the steps ------------------------------------------------------------

    def step(self, name: str, run: Callable[P, R]) -> Callable[P, R]:
        """`run` (a synchronous step: identify, decide) inside a span of its own."""
        tracer = self._tracer

        def traced(*args: P.args, **kwargs: P.kwargs) -> R:
            with (
                tracer.start_as_current_span(
                    name, record_exception=False, set_status_on_exception=False
                ) as span,
                _error_type(span),
            ):
                return run(*args, **kwargs)

        return traced

    def async_step(
        self, name: str, run: Callable[P, Coroutine[Any, Any, R]]
    ) -> Callable[P, Coroutine[Any, Any, R]]:
        """`run` (an asynchronous step: intake, flow lookup) inside a span of its own."""
        tracer = self._tracer

        async def traced(*args: P.args, **kwargs: P.kwargs) -> R:
            with (
                tracer.start_as_current_span(
                    name, record_exception=False, set_status_on_exception=False
                ) as span,
                _error_type(span),
            ):
                return await run(*args, **kwargs)

        return traced

    def upstream_step(
        self, name: str, run: Callable[Concatenate[Callback, P], Coroutine[Any, Any, None]]
    ) -> Callable[Concatenate[Callback, P], Coroutine[Any, Any, None]]:
        """A step that may send the callback upstream (forward, fall through), in a span; with
        `propagate`, the upstream's `traceparent` names this span."""
        tracer, propagate = self._tracer, self._propagate

        async def traced(callback: Callback, /, *args: P.args, **kwargs: P.kwargs) -> None:
            with (
                tracer.start_as_current_span(
                    name, record_exception=False, set_status_on_exception=False
                ) as span,
                _error_type(span),
            ):
                if propagate:
                    callback.scope = with_trace_context(callback.scope, span.get_span_context())
                try:
                    await run(callback, *args, **kwargs)
                finally:
                    span.set_attributes(
                        {
                            "authswitch.destination": callback.destination,
                            "authswitch.outcome": callback.outcome,
                            "http.response.status_code": callback.status,
                        }
                    )

        return traced


@contextmanager
def _error_type(span: trace.Span) -> Iterator[None]:
    """An exception leaving the span marks it failed with the exception's type only: the SDK
    would record its message, which could quote request data (an upstream URL and its query,
    a parser's excerpt)."""
    try:
        yield
    except BaseException as exc:
        span.set_attribute("error.type", type(exc).__name__)
        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        raise


def with_trace_context(scope: Scope, context: SpanContext) -> Scope:
    """A copy of `scope` whose `traceparent` names `context` (tracestate carried over)."""
    headers = [(n, v) for n, v in scope["headers"] if n not in _TRACE_HEADERS]
    flags = "01" if context.trace_flags.sampled else "00"
    parent = (
        f"00-{trace.format_trace_id(context.trace_id)}-"
        f"{trace.format_span_id(context.span_id)}-{flags}"
    )
    headers.append((b"traceparent", parent.encode()))
    if context.trace_state:
        headers.append((b"tracestate", context.trace_state.to_header().encode()))
    return {**scope, "headers": headers}


def _caller_context(scope: Scope) -> Context:
    """The caller's span as parent, or an empty context (a new trace) without a valid one."""
    caller = incoming_trace(scope["headers"])
    if caller is None:
        return Context()
    parent = caller.parent
    span_context = SpanContext(
        trace_id=int(parent.trace_id, 16),
        span_id=int(parent.parent_id, 16),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if parent.sampled else TraceFlags.DEFAULT),
        trace_state=TraceState(list(caller.state)),
    )
    return trace.set_span_in_context(NonRecordingSpan(span_context), Context())


def _end_callback(span: trace.Span, callback: Callback) -> None:
    connection = callback.connection
    identification = callback.identification
    attributes: dict[str, AttributeValue] = {
        "http.response.status_code": callback.status,
        "authswitch.destination": callback.destination,
        "authswitch.reason": callback.reason,
        "authswitch.outcome": callback.outcome,
    }
    if connection is not None:
        attributes["authswitch.connection"] = connection.id
    if identification is not None and identification.strategy is not None:
        attributes["authswitch.strategy"] = identification.strategy.value
    span.set_attributes(attributes)
    if callback.status >= 500:
        span.set_status(Status(StatusCode.ERROR))
