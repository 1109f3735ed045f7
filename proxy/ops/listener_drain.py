"""Taking a listening socket out of service without resetting connections the kernel has
already completed.

Closing (or shutting down) a listener resets every connection still in its accept queue,
and those clients may already have sent their request: a callback lost after sending. So,
first, a socket filter drops new SYNs (the client retransmits, and is refused once the
socket closes: nothing was sent, a load balancer may retry); then the workers, still
running, empty the accept queue; only then does the socket stop listening. Linux only;
elsewhere the socket simply stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import socket
import struct
import sys
import time

_SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", 26)
_DROP_EVERYTHING = struct.pack("HBBI", 0x06, 0, 0, 0)  # classic BPF: BPF_RET|BPF_K, keep 0
_TCPI_UNACKED = 24  # offset in struct tcp_info; for a listener, its accept queue length
_POLL_SECONDS = 0.005


def drop_new_connections(fd: int) -> bool:
    """Make the listener on `fd` ignore new SYNs; False where that is not possible."""
    if sys.platform != "linux":
        return False
    program = ctypes.create_string_buffer(_DROP_EVERYTHING)
    sock_fprog = struct.pack("HL", 1, ctypes.addressof(program))
    try:
        with socket.socket(fileno=os.dup(fd)) as listener:
            listener.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, sock_fprog)
    except OSError:
        return False
    return True


def accept_queue_length(fd: int) -> int:
    """Connections the kernel completed that no process has accepted yet (0 if unknown)."""
    try:
        with socket.socket(fileno=os.dup(fd)) as listener:
            info = listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    except (OSError, AttributeError):
        return 0
    queued: int = struct.unpack_from("I", info, _TCPI_UNACKED)[0]
    return queued


def quiesce(fds: list[int], wait_seconds: float) -> None:
    """Drop new SYNs and wait, at most `wait_seconds`, until the accept queues are empty."""
    if not all([drop_new_connections(fd) for fd in fds]):
        return
    deadline = time.monotonic() + wait_seconds
    while any(accept_queue_length(fd) for fd in fds) and time.monotonic() < deadline:
        time.sleep(_POLL_SECONDS)


async def quiesce_async(fds: list[int], wait_seconds: float) -> None:
    """`quiesce` for a process whose own event loop does the accepting."""
    if not all([drop_new_connections(fd) for fd in fds]):
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(wait_seconds):
            # The kernel signals nothing when its accept queue empties: poll it.
            while any(accept_queue_length(fd) for fd in fds):  # noqa: ASYNC110
                await asyncio.sleep(_POLL_SECONDS)
