"""The metrics port under half-open connections: threads stay bounded, scrapes still work,
and a connection that never sends its request is closed."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import httpx

from proxy.ops.metrics_server import MetricsServer


def test_hundreds_of_half_open_connections_add_no_threads_and_a_scrape_works() -> None:
    server = MetricsServer("127.0.0.1", 0, head_seconds=30).start()
    time.sleep(0.1)
    threads_before = threading.active_count()
    half_open = []
    try:
        for _ in range(400):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(b"GET /metrics HTTP/1.1\r\n")  # and never the rest
            half_open.append(sock)
        time.sleep(0.3)
        assert threading.active_count() == threads_before
        scrape = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=5)
        assert scrape.status_code == 200
        assert "authswitch_callbacks_total" in scrape.text
    finally:
        for sock in half_open:
            sock.close()


def test_connection_without_a_request_is_closed_at_the_deadline() -> None:
    server = MetricsServer("127.0.0.1", 0, head_seconds=0.5).start()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\n")
        assert sock.recv(1) == b""  # a TimeoutError here means it was kept open


def test_connections_over_the_cap_are_closed_at_once() -> None:
    server = MetricsServer("127.0.0.1", 0, head_seconds=30, max_connections=10).start()
    held = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(10)]
    try:
        time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as extra:
            extra.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
            with contextlib.suppress(ConnectionResetError):
                assert extra.recv(1) == b""
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    assert httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=5).status_code == 200
