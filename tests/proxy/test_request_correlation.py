"""Request ids and trace ids over real HTTP: authswitch's log lines join the load balancer's,
and the upstreams receive these headers exactly as they arrived."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from proxy.app import AuthSwitch
from proxy.config import ConfigError, load_config
from proxy.demo.idp import DemoIdP
from proxy.demo.loopback_server import LoopbackServer
from tests.conftest import ProxyEnv, write_proxy_files
from tests.proxy.test_callback_routing import post, saml_body

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACESTATE = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"


def access_lines(
    caplog: pytest.LogCaptureFixture, event: str, at_least: int = 1
) -> list[dict[str, Any]]:
    """The access lines of `event`, once `at_least` are there: a line is written after the
    answer went out, so the client may hold the answer a moment before the line exists."""
    deadline = time.monotonic() + 5
    while True:
        lines = [
            r.__dict__["fields"]
            for r in caplog.records
            if r.name == "authswitch.access" and r.getMessage() == event
        ]
        if len(lines) >= at_least or time.monotonic() > deadline:
            return lines
        time.sleep(0.01)


def test_callback_line_carries_the_load_balancers_request_id_and_trace_id(
    proxy_env: ProxyEnv, idps: dict[str, DemoIdP], captured_logs: pytest.LogCaptureFixture
) -> None:
    body = saml_body(idps["acme"])
    response = post(
        proxy_env,
        "/login/callback",
        body,
        **{"x-request-id": "lb-7f3a9c", "traceparent": TRACEPARENT, "tracestate": TRACESTATE},
    )

    assert response.status_code == 200 and response.json()["landed"] == "legacy"
    assert response.headers["x-request-id"] == "lb-7f3a9c"
    (line,) = access_lines(captured_logs, "callback")
    assert line["request_id"] == "lb-7f3a9c"
    assert line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert line["span_id"] is None, "no span of authswitch's own with tracing off"
    seen = dict(proxy_env.received("legacy")[-1]["headers"])
    assert seen["x-request-id"] == "lb-7f3a9c"
    assert seen["traceparent"] == TRACEPARENT and seen["tracestate"] == TRACESTATE


def test_proxy_mode_passes_the_trace_headers_to_the_new_provider_unchanged(
    proxy_env: ProxyEnv, idps: dict[str, DemoIdP], captured_logs: pytest.LogCaptureFixture
) -> None:
    proxy_env.set_flags(overrides={"initech": "on"})
    response = post(
        proxy_env,
        "/login/callback",
        saml_body(idps["initech"]),
        **{"x-request-id": "lb-1", "traceparent": TRACEPARENT, "tracestate": TRACESTATE},
    )

    assert response.json()["landed"] == "new"
    assert response.headers["x-request-id"] == "lb-1"
    seen = dict(proxy_env.received("new")[-1]["headers"])
    assert (seen["x-request-id"], seen["traceparent"], seen["tracestate"]) == (
        "lb-1",
        TRACEPARENT,
        TRACESTATE,
    )
    (line,) = access_lines(captured_logs, "callback")
    assert line["destination"] == "new" and line["request_id"] == "lb-1"


def test_without_incoming_ids_legacy_gets_no_header_it_would_not_have_had(
    proxy_env: ProxyEnv, idps: dict[str, DemoIdP], captured_logs: pytest.LogCaptureFixture
) -> None:
    post(proxy_env, "/login/callback", saml_body(idps["acme"]))
    httpx.get(f"{proxy_env.url}/account", timeout=10)

    for seen in proxy_env.received("legacy")[-2:]:
        names = {name for name, _ in seen["headers"]}
        assert not names & {"x-request-id", "traceparent", "tracestate"}
    callback, request = access_lines(captured_logs, "callback") + access_lines(
        captured_logs, "request"
    )
    assert len(callback["request_id"]) == 16 and callback["trace_id"] is None
    assert len(request["request_id"]) == 16 and request["trace_id"] is None


def test_an_unsafe_request_id_is_not_logged_but_still_reaches_legacy_unchanged(
    proxy_env: ProxyEnv, captured_logs: pytest.LogCaptureFixture
) -> None:
    forged = "x" * 200
    response = httpx.get(
        f"{proxy_env.url}/account",
        headers={"x-request-id": forged, "traceparent": TRACEPARENT.upper()},
        timeout=10,
    )

    (line,) = access_lines(captured_logs, "request")
    assert line["request_id"] != forged and response.headers["x-request-id"] == line["request_id"]
    assert line["trace_id"] is None, "an invalid traceparent names no trace"
    seen = dict(proxy_env.received("legacy")[-1]["headers"])
    assert seen["x-request-id"] == forged and seen["traceparent"] == TRACEPARENT.upper()


def serve(directory: Path, providers: dict[str, LoopbackServer], **config: Any) -> LoopbackServer:
    legacy, new = providers["legacy"], providers["new"]
    return LoopbackServer(
        AuthSwitch(load_config(write_proxy_files(directory, legacy.url, new.url, **config))),
        name="authswitch",
    )


def test_configured_header_and_send_request_id(
    tmp_path: Path,
    providers: dict[str, LoopbackServer],
    idps: dict[str, DemoIdP],
    captured_logs: pytest.LogCaptureFixture,
) -> None:
    tracing = {"request_id_header": "x-amzn-trace-id", "send_request_id": True}
    legacy = providers["legacy"].app.state.received  # type: ignore[union-attr]
    with serve(tmp_path, providers, tracing=tracing) as server:
        given = httpx.get(f"{server.url}/account", headers={"x-amzn-trace-id": "Root=1-ab"})
        made = httpx.get(f"{server.url}/account", timeout=10)
        httpx.post(
            f"{server.url}/login/callback",
            content=saml_body(idps["acme"]),
            headers={"content-type": "application/x-www-form-urlencoded"},
            timeout=10,
        )

    assert given.headers["x-request-id"] == "Root=1-ab"
    lines = access_lines(captured_logs, "request", 2) + access_lines(captured_logs, "callback")
    assert lines[0]["request_id"] == "Root=1-ab"
    sent = [dict(seen["headers"]) for seen in list(legacy)[-3:]]
    assert sent[0]["x-amzn-trace-id"] == "Root=1-ab", "the client's own reaches legacy as it was"
    assert sent[1]["x-amzn-trace-id"] == made.headers["x-request-id"] == lines[1]["request_id"]
    assert sent[2]["x-amzn-trace-id"] == lines[2]["request_id"], "callbacks too"


def test_tracing_settings_are_checked_at_the_edge(
    tmp_path: Path, providers: dict[str, LoopbackServer]
) -> None:
    legacy, new = providers["legacy"].url, providers["new"].url
    bad_header = write_proxy_files(tmp_path, legacy, new, tracing={"request_id_header": "X Id"})
    with pytest.raises(ConfigError, match=r"tracing\.request_id_header"):
        load_config(bad_header)
    lonely = write_proxy_files(tmp_path, legacy, new, tracing={"propagate": True})
    with pytest.raises(ConfigError, match=r"tracing.propagate needs tracing.enabled"):
        load_config(lonely)
