"""A listener taken out of service keeps what the kernel already accepted for it: the
queued connection (request already sent) is served; a new one is refused, never reset."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from proxy.ops.listener_drain import accept_queue_length, quiesce


def test_queued_connection_is_accepted_before_the_listener_stops() -> None:
    listener = socket.create_server(("127.0.0.1", 0), backlog=16)
    address = listener.getsockname()
    queued = socket.create_connection(address, timeout=5)
    queued.sendall(b"POST /login/callback HTTP/1.1\r\n\r\n")  # sent, sitting in the queue
    time.sleep(0.05)
    assert accept_queue_length(listener.fileno()) == 1

    stopped = threading.Event()

    def take_out_of_service() -> None:
        quiesce([listener.fileno()], wait_seconds=5)
        listener.shutdown(socket.SHUT_RDWR)
        stopped.set()

    threading.Thread(target=take_out_of_service).start()
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
