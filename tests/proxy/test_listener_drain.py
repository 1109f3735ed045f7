"""A listener taken out of service keeps what the kernel already accepted for it: the
queued connection (request already sent) is served; a new one is refused, never reset."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from proxy.ops.listener_drain import accept_queue_length, half_open_count, quiesce


def _take_out_of_service(listener: socket.socket) -> threading.Event:
    """Quiesce `listener` and stop it, on a thread; the event is set once it stopped."""
    stopped = threading.Event()

    def take_out_of_service() -> None:
        quiesce([listener.fileno()], wait_seconds=5)
        listener.shutdown(socket.SHUT_RDWR)
        stopped.set()

    threading.Thread(target=take_out_of_service).start()
    return stopped


def test_queued_connection_is_accepted_before_the_listener_stops() -> None:
    listener = socket.create_server(("127.0.0.1", 0), backlog=16)
    address = listener.getsockname()
    queued = socket.create_connection(address, timeout=5)
    queued.sendall(b"POST /login/callback HTTP/1.1\r\n\r\n")  # sent, sitting in the queue
    time.sleep(0.05)
    assert accept_queue_length(listener.fileno()) == 1

    stopped = _take_out_of_service(listener)
    time.sleep(0.2)
    assert not stopped.is_set(), "it waits while a completed connection is queued"
    with pytest.raises(TimeoutError):  # new SYNs are dropped meanwhile: never completed
        socket.create_connection(address, timeout=0.3)
    accepted, _ = listener.accept()  # a worker still accepting
    assert stopped.wait(5)
    with accepted:
        assert accepted.recv(100).startswith(b"POST /login/callback")
        accepted.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
    assert queued.recv(100).startswith(b"HTTP/1.1 200")
    queued.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=5)
    listener.close()


def test_a_handshake_half_done_when_the_filter_lands_is_completed_and_served() -> None:
    """The kernel had answered the SYN; the client's ACK (and its request) comes after the
    listener started dropping SYNs. It must join the queue and be served, not be reset."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=16)
    # Holds the server side half-open until the client's first data: the round trip of a
    # distant client, made as long as the test needs.
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 10)
    address = listener.getsockname()
    client = socket.create_connection(address, timeout=5)  # established on the client's side
    time.sleep(0.05)
    assert accept_queue_length(listener.fileno()) == 0
    assert half_open_count([listener.fileno()]) == 1

    stopped = _take_out_of_service(listener)
    time.sleep(0.2)
    assert not stopped.is_set(), "it waits while a handshake is half-open"
    client.sendall(b"POST /login/callback HTTP/1.1\r\n\r\n")  # the ACK the kernel waited for
    listener.settimeout(5)
    accepted, _ = listener.accept()
    assert stopped.wait(5)
    with accepted:
        assert accepted.recv(100).startswith(b"POST /login/callback")
        accepted.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
    assert client.recv(100).startswith(b"HTTP/1.1 200")
    client.close()
    listener.close()


def test_the_wait_for_half_open_handshakes_is_bounded() -> None:
    """A client that never completes its handshake holds the shutdown only `wait_seconds`."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=16)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 10)
    silent = socket.create_connection(listener.getsockname(), timeout=5)
    time.sleep(0.05)
    started = time.monotonic()
    quiesce([listener.fileno()], wait_seconds=0.3)
    assert 0.3 <= time.monotonic() - started < 3
    silent.close()
    listener.close()
