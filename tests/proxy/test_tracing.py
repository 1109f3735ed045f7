"""OpenTelemetry tracing over real HTTP, exported over OTLP/HTTP to a receiver on loopback that
decodes the protobuf the way a collector does: spans parent on the caller's trace, carry the
decision, and never an artifact, a code, a state or a cookie."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from proxy.demo.idp import DemoIdP
from proxy.demo.loopback_server import LoopbackServer
from tests.proxy.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.proxy.test_callback_routing import FORM, saml_body
from tests.proxy.test_request_correlation import TRACEPARENT, TRACESTATE, access_lines, serve

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
SERVER, INTERNAL = 2, 1  # OTLP span kinds
STEPS = ["authswitch.intake", "authswitch.identify", "authswitch.decide"]


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        # The standard variables, as an operator sets them; nothing authswitch-specific.
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
        monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
        yield receiver


def named(spans: list[ReceivedSpan], name: str) -> list[ReceivedSpan]:
    return [span for span in spans if span.name == name]


def children(spans: list[ReceivedSpan], parent: ReceivedSpan) -> list[str]:
    ordered = sorted(spans, key=lambda span: span.start_ns)
    return [span.name for span in ordered if span.parent_span_id == parent.span_id]


def test_callback_spans_parent_on_the_callers_trace_and_carry_the_decision(
    tmp_path: Path,
    providers: dict[str, LoopbackServer],
    idps: dict[str, DemoIdP],
    receiver: OtlpReceiver,
    captured_logs: pytest.LogCaptureFixture,
) -> None:
    body = saml_body(idps["acme"], relay_state="leaky-relay-state")
    legacy = providers["legacy"].app.state.received  # type: ignore[union-attr]
    with serve(tmp_path, providers, tracing={"enabled": True}) as server:
        response = httpx.post(
            f"{server.url}/login/callback",
            content=body,
            headers={
                **FORM,
                "traceparent": TRACEPARENT,
                "tracestate": TRACESTATE,
                "cookie": "legacy_sid=secret-cookie-value",
                "x-request-id": "lb-42",
            },
            timeout=10,
        )
        seen = dict(list(legacy)[-1]["headers"])
    # Leaving the block stopped authswitch, which exports what its batch still held.

    assert response.json()["landed"] == "legacy"
    assert seen["traceparent"] == TRACEPARENT, "propagate off: legacy gets the caller's"
    assert seen["tracestate"] == TRACESTATE
    (callback,) = named(receiver.spans, "authswitch.callback")
    assert (callback.trace_id, callback.parent_span_id) == (CALLER_TRACE, CALLER_SPAN)
    assert callback.kind == SERVER
    assert callback.attributes == {
        "http.request.method": "POST",
        "url.path": "/login/callback",
        "http.route": "/login/callback",
        "authswitch.request_id": "lb-42",
        "authswitch.connection": "acme",
        "authswitch.strategy": "saml_issuer",
        "authswitch.destination": "legacy",
        "authswitch.reason": callback.attributes["authswitch.reason"],
        "authswitch.outcome": "legacy_proxied",
        "http.response.status_code": 200,
    }
    assert children(receiver.spans, callback) == [*STEPS, "authswitch.fall_through"]
    assert all(span.trace_id == CALLER_TRACE for span in receiver.spans)
    assert callback.resource["service.name"] == "authswitch"
    (line,) = access_lines(captured_logs, "callback")
    assert (line["trace_id"], line["span_id"]) == (CALLER_TRACE, callback.span_id)
    exported = b"".join(receiver.raw)
    assert body.split(b"=", 1)[1][:40] not in exported
    for secret in (b"leaky-relay-state", b"secret-cookie-value", b"SAMLResponse"):
        assert secret not in exported


def test_propagation_makes_upstream_spans_children_of_authswitchs(
    tmp_path: Path,
    providers: dict[str, LoopbackServer],
    idps: dict[str, DemoIdP],
    receiver: OtlpReceiver,
) -> None:
    new = providers["new"].app.state.received  # type: ignore[union-attr]
    legacy = providers["legacy"].app.state.received  # type: ignore[union-attr]
    tracing = {"enabled": True, "propagate": True}
    with serve(tmp_path, providers, tracing=tracing) as server:
        (tmp_path / "flags.yaml").write_text("version: 2\noverrides: {initech: 'on'}\n")
        server.app.flag_provider.reload_now()
        proxied = httpx.post(
            f"{server.url}/login/callback",
            content=saml_body(idps["initech"]),
            headers={**FORM, "traceparent": TRACEPARENT, "tracestate": TRACESTATE},
            timeout=10,
        )
        at_new = dict(list(new)[-1]["headers"])
        httpx.get(f"{server.url}/account?code=leaky-code&state=leaky-state", timeout=10)
        at_legacy = dict(list(legacy)[-1]["headers"])

    assert proxied.json()["landed"] == "new"
    (forward,) = named(receiver.spans, "authswitch.forward")
    assert at_new["traceparent"] == f"00-{CALLER_TRACE}-{forward.span_id}-01"
    assert at_new["tracestate"] == TRACESTATE
    assert forward.attributes == {
        "authswitch.destination": "new",
        "authswitch.outcome": "new_proxied",
        "http.response.status_code": 200,
    }
    (passed,) = named(receiver.spans, "authswitch.pass_through")
    assert passed.parent_span_id == "", "no caller trace: a trace of its own"
    assert at_legacy["traceparent"] == f"00-{passed.trace_id}-{passed.span_id}-01"
    assert "tracestate" not in at_legacy
    assert passed.attributes["url.path"] == "/account"
    assert passed.attributes["http.response.status_code"] == 200
    assert b"leaky" not in b"".join(receiver.raw), "the query string is never exported"


def test_oidc_code_and_state_never_reach_a_span(
    tmp_path: Path, providers: dict[str, LoopbackServer], receiver: OtlpReceiver
) -> None:
    with serve(tmp_path, providers, tracing={"enabled": True}) as server:
        response = httpx.get(
            f"{server.url}/oidc/hooli/callback?code=leaky-code&state=leaky-state",
            headers={"traceparent": TRACEPARENT},
            timeout=10,
        )
    assert response.status_code == 200
    (callback,) = named(receiver.spans, "authswitch.callback")
    assert callback.attributes["url.path"] == "/oidc/hooli/callback"
    assert callback.attributes["authswitch.connection"] == "hooli"
    values: list[Any] = [v for span in receiver.spans for v in span.attributes.values()]
    assert not any("leaky" in str(value) for value in values)
    assert b"leaky" not in b"".join(receiver.raw)


def test_a_failing_step_is_marked_by_its_exception_type_never_its_message(
    receiver: OtlpReceiver,
) -> None:
    from proxy.ops.tracing import RequestTracing

    tracing = RequestTracing(propagate=False)

    def identify() -> None:
        raise ValueError("SAMLResponse=leaky-artifact in https://idp.example/?code=leaky-code")

    with pytest.raises(ValueError, match="leaky"):
        tracing.step("authswitch.identify", identify)()
    tracing.shutdown()

    (span,) = named(receiver.spans, "authswitch.identify")
    assert (span.status_code, span.status_message) == (2, "ValueError")
    assert span.attributes == {"error.type": "ValueError"}
    assert span.events == [], "no exception event: it would carry the message"
    assert b"leaky" not in b"".join(receiver.raw)
