"""Shutdown on a served authswitch: a connection that already carries a request (accepted but
not yet read, or mid-head) gets it answered; only idle connections are closed at once."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from proxy.config import load_config
from proxy.demo.loopback_server import LoopbackServer
from proxy.ops.http_protocol import FIRST_REQUEST_GRACE_SECONDS
from tests.conftest import write_proxy_files
from tests.proxy.test_server_limits import ServedAuthSwitch, _answer, _status

_BODY = b"RelayState=r1"
_HEAD = (
    b"POST /login/callback HTTP/1.1\r\nhost: authswitch\r\n"
    b"content-type: application/x-www-form-urlencoded\r\n"
)
_REQUEST = _HEAD + b"content-length: %d\r\n\r\n%s" % (len(_BODY), _BODY)


def _served(tmp_path: Path, providers: dict[str, LoopbackServer]) -> ServedAuthSwitch:
    path = write_proxy_files(tmp_path, providers["legacy"].url, providers["new"].url)
    return ServedAuthSwitch(load_config(path)).__enter__()


def _one_answer(sock: socket.socket) -> bytes:
    """One whole answer (head and Content-Length body), leaving the connection open."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def _begin_shutdown(server: ServedAuthSwitch) -> threading.Thread:
    """Starts the shutdown and returns once the listener is closed: by then uvicorn has told
    every open connection to shut down (the same step, with no await between)."""
    stopping = threading.Thread(target=server.__exit__)
    stopping.start()
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
        except ConnectionRefusedError:
            return stopping
        time.sleep(0.01)
    raise AssertionError("the listener never closed")


def test_a_connection_accepted_before_shutdown_gets_its_first_request_answered(
    tmp_path: Path, providers: dict[str, LoopbackServer]
) -> None:
    server = _served(tmp_path, providers)
    with server.connect() as quiet, server.connect() as mid_head:
        mid_head.sendall(_HEAD)  # half a head: a request is under way
        time.sleep(0.1)  # both accepted and seen by the server
        stopping = _begin_shutdown(server)
        quiet.sendall(_REQUEST)  # it was on its way when the shutdown began
        mid_head.sendall(b"content-length: %d\r\n\r\n%s" % (len(_BODY), _BODY))
        answers = [_answer(quiet), _answer(mid_head)]
    stopping.join(10)
    assert not stopping.is_alive(), "the shutdown finished"
    for answer in answers:
        assert _status(answer) == 200, answer[:200]
        assert b"connection: close" in answer.lower()
        assert b'"landed":"legacy"' in answer


def test_a_silent_connection_is_closed_after_the_grace_and_does_not_hold_the_shutdown(
    tmp_path: Path, providers: dict[str, LoopbackServer]
) -> None:
    server = _served(tmp_path, providers)
    with server.connect() as silent:
        time.sleep(0.1)
        stopping = _begin_shutdown(server)
        silent.settimeout(FIRST_REQUEST_GRACE_SECONDS + 5)
        assert silent.recv(1) == b"", "closed without an answer: it asked nothing"
    stopping.join(10)
    assert not stopping.is_alive()


def test_a_keep_alive_connection_idle_after_an_answer_is_closed_at_once(
    tmp_path: Path, providers: dict[str, LoopbackServer]
) -> None:
    server = _served(tmp_path, providers)
    with server.connect() as idle:
        idle.sendall(_REQUEST)
        first = _one_answer(idle)
        assert _status(first) == 200
        stopping = _begin_shutdown(server)
        idle.settimeout(FIRST_REQUEST_GRACE_SECONDS / 2)  # well before any grace would end
        assert idle.recv(1) == b""
    stopping.join(10)
    assert not stopping.is_alive()
