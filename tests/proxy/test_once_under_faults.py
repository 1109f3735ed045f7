"""Once: a callback reaches an upstream at most once, whatever the upstream does to the
connection after reading it, and every such callback is answered and accounted for."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn

from flags import RolloutState, write_rollout_state
from proxy.app import AuthSwitch
from proxy.config import load_config
from proxy.demo.idp import DemoIdP
from proxy.demo.loopback_server import LoopbackServer
from proxy.ops import metrics
from tests.conftest import LEGACY_SP_ENTITY_ID, PUBLIC_ACS, write_proxy_files

FORM = {"content-type": "application/x-www-form-urlencoded"}


class BreakingUpstream:
    """A raw socket server that reads each request whole, records it, then resets (RST) or
    closes (FIN) the connection without answering. `answer` makes it answer instead."""

    def __init__(self, how: str, answer: bytes | None = None) -> None:
        self.how = how
        self.answer = answer
        self.requests: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> BreakingUpstream:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            while True:
                request = _read_request(conn)
                if request is None:
                    return
                self.requests.append(request)
                if self.answer is not None:
                    conn.sendall(self.answer)
                    continue
                if self.how == "hang":
                    conn.recv(1)  # until the other side gives up
                    return
                if self.how == "reset":
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return


def _read_request(conn: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


def _callback_count(destination: str, outcome: str) -> float:
    total = 0.0
    for family in metrics.CALLBACKS.collect():
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name.endswith("_total")
                and labels["destination"] == destination
                and labels["outcome"] == outcome
            ):
                total += sample.value
    return total


def _flags_on(directory: Path, connection: str) -> None:
    write_rollout_state(
        directory / "flags.yaml", RolloutState(version=1, overrides={connection: "on"})
    )


@pytest.mark.parametrize("how", ["reset", "close"])
@pytest.mark.parametrize(
    ("method", "destination"),
    [("GET", "legacy"), ("POST", "legacy"), ("GET", "new"), ("POST", "new")],
)
def test_oidc_code_reaches_a_breaking_upstream_once_and_the_client_gets_a_clear_502(
    tmp_path: Path, how: str, method: str, destination: str
) -> None:
    with BreakingUpstream(how) as breaking, BreakingUpstream(how, answer=b"") as idle:
        legacy_url, new_url = (
            (breaking.url, idle.url) if destination == "legacy" else (idle.url, breaking.url)
        )
        config = load_config(write_proxy_files(tmp_path, legacy_url, new_url))
        if destination == "new":
            _flags_on(tmp_path, "piedpiper")
        app = AuthSwitch(config)
        outcome = f"{destination}_upstream_error"
        before = _callback_count(destination, outcome)
        with LoopbackServer(app, name="authswitch") as server:
            fields = {"code": "leaky-code-once", "state": "leaky-state-once"}
            url = f"{server.url}/oidc/piedpiper/callback"
            if method == "GET":
                response = httpx.get(f"{url}?{urlencode(fields)}", timeout=10)
            else:
                response = httpx.post(url, content=urlencode(fields), headers=FORM, timeout=10)

        assert len(breaking.requests) == 1, "the code must reach the upstream exactly once"
        assert b"leaky-code-once" in breaking.requests[0]
        assert idle.requests == []
        assert response.status_code == 502
        answer = response.json()
        assert answer["error"] == "upstream_disconnected"
        assert "closed the connection without answering" in answer["message"]
        assert "leaky" not in response.text
        assert _callback_count(destination, outcome) == before + 1


@pytest.mark.parametrize("how", ["reset", "close"])
def test_saml_post_to_a_breaking_new_provider_is_sent_once(
    tmp_path: Path, idps: dict[str, DemoIdP], how: str
) -> None:
    body = idps["initech"].mint_form_body(
        destination=PUBLIC_ACS, audience=LEGACY_SP_ENTITY_ID, name_id="alice@example.com"
    )
    with BreakingUpstream(how) as new, BreakingUpstream(how, answer=b"") as legacy:
        config = load_config(write_proxy_files(tmp_path, legacy.url, new.url))
        _flags_on(tmp_path, "initech")
        with LoopbackServer(AuthSwitch(config), name="authswitch") as server:
            response = httpx.post(
                f"{server.url}/login/callback", content=body, headers=FORM, timeout=10
            )
    assert response.status_code == 502
    assert len(new.requests) == 1
    assert legacy.requests == [], "a callback the new provider may have read never goes on"


def test_pass_through_get_keeps_its_documented_single_resend(tmp_path: Path) -> None:
    """Pass-through requests are not callbacks: an idempotent one is resent once when the
    upstream drops the connection without answering (RFC 9112 9.3.1), as documented."""
    with BreakingUpstream("close") as legacy:
        config = load_config(write_proxy_files(tmp_path, legacy.url, legacy.url))
        with LoopbackServer(AuthSwitch(config), name="authswitch") as server:
            response = httpx.get(f"{server.url}/account/page", timeout=10)
            post = httpx.post(f"{server.url}/account/form", content=b"a=1", timeout=10)
    assert response.status_code == 502
    paths = [request.split(b" ")[1] for request in legacy.requests]
    assert paths.count(b"/account/page") == 2
    assert paths.count(b"/account/form") == 1, "a non-idempotent request is never resent"
    assert post.status_code == 502


def test_upstream_answer_with_too_many_or_too_large_headers_gets_a_502_saying_so(
    tmp_path: Path,
) -> None:
    many = b"HTTP/1.1 200 OK\r\n" + b"".join(b"x-h%d: v\r\n" % i for i in range(300))
    large = b"HTTP/1.1 200 OK\r\nset-cookie: big=" + b"a" * 20_000 + b"\r\n"
    for answer, reason, limit in (
        (many, "upstream_too_many_headers", "limits.upstream_max_headers"),
        (large, "upstream_header_too_large", "limits.upstream_max_header_bytes"),
    ):
        with BreakingUpstream("close", answer=answer + b"content-length: 0\r\n\r\n") as legacy:
            config = load_config(write_proxy_files(tmp_path, legacy.url, legacy.url))
            with LoopbackServer(AuthSwitch(config), name="authswitch") as server:
                response = httpx.get(f"{server.url}/account/page", timeout=10)
        assert response.status_code == 502
        assert response.json()["error"] == reason
        assert limit in response.json()["message"]
        assert "big=" not in response.text, "the upstream's header bytes are never echoed"
        assert "did not answer in time" not in response.text


def test_upstream_answer_within_common_server_limits_passes(tmp_path: Path) -> None:
    """150 header lines and a 9 000-byte cookie: over aiohttp's defaults, within ours."""
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(b"x-h%d: v\r\n" % i for i in range(150))
    head += b"set-cookie: big=" + b"a" * 9000 + b"\r\ncontent-length: 2\r\n\r\nok"
    with BreakingUpstream("close", answer=head) as legacy:
        config = load_config(write_proxy_files(tmp_path, legacy.url, legacy.url))
        with LoopbackServer(AuthSwitch(config), name="authswitch") as server:
            response = httpx.get(f"{server.url}/account/page", timeout=10)
    assert response.status_code == 200
    assert response.text == "ok"
    assert len(response.headers["set-cookie"]) == 9004


def test_callback_cut_by_the_graceful_timeout_gets_an_answer_a_log_line_and_a_metric(
    tmp_path: Path, captured_logs: pytest.LogCaptureFixture
) -> None:
    with BreakingUpstream("hang") as legacy:
        config = load_config(write_proxy_files(tmp_path, legacy.url, legacy.url))
        before = _callback_count("legacy", "cancelled")
        listener = socket.create_server(("127.0.0.1", 0))
        server = uvicorn.Server(
            uvicorn.Config(
                AuthSwitch(config), lifespan="on", log_config=None, timeout_graceful_shutdown=0.5
            )
        )
        thread = threading.Thread(target=asyncio.run, args=(server.serve([listener]),))
        thread.start()
        while not server.started:
            time.sleep(0.01)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/oidc/piedpiper/callback"
        answers: list[httpx.Response] = []
        client = threading.Thread(
            target=lambda: answers.append(httpx.get(f"{url}?code=leaky-cut", timeout=10))
        )
        client.start()
        while not legacy.requests:
            time.sleep(0.01)
        server.should_exit = True  # what SIGTERM does
        client.join(10)
        thread.join(10)
        listener.close()

    assert len(legacy.requests) == 1
    assert answers[0].status_code == 503
    assert answers[0].json()["error"] == "cancelled"
    assert "may have reached the upstream" in answers[0].json()["message"]
    assert _callback_count("legacy", "cancelled") == before + 1
    fields = [r.fields for r in captured_logs.records if r.name == "authswitch.access"]
    assert [f["outcome"] for f in fields] == ["cancelled"]
    assert fields[0]["status"] == 503 and fields[0]["destination"] == "legacy"
