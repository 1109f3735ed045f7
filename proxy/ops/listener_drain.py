"""Taking a listening socket out of service without resetting connections the kernel has
already completed, or is completing.

Closing (or shutting down) a listener resets every connection still in its accept queue,
and those clients may already have sent their request: a callback lost after sending. So,
first, a socket filter drops new SYNs (the client retransmits, and is refused once the
socket closes: nothing was sent, a load balancer may retry); every other segment still
passes, so a handshake the kernel had answered before the filter (the client's ACK, often
with its request, one round trip later) completes into the accept queue. Then the workers,
still running, empty the accept queue until no handshake is left half-open; only then does
the socket stop listening. Linux only; elsewhere the socket simply stops.
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
# Classic BPF on a TCP socket sees the segment from its TCP header: byte 13 holds the flags.
_DROP_SYNS = [
    (0x30, 0, 0, 13),  # BPF_LD|BPF_B|BPF_ABS: A = flags
    (0x45, 0, 1, 0x02),  # BPF_JMP|BPF_JSET|BPF_K: SYN set? next; else skip one
    (0x06, 0, 0, 0),  # BPF_RET|BPF_K: keep 0 bytes, a drop
    (0x06, 0, 0, 0xFFFFFFFF),  # BPF_RET|BPF_K: keep the whole segment
]
_TCPI_UNACKED = 24  # offset in struct tcp_info; for a listener, its accept queue length
_SYN_RECV = "03"  # the state column of /proc/net/tcp*
_PROC_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")
_POLL_SECONDS = 0.005


def drop_new_connections(fd: int) -> bool:
    """Make the listener on `fd` ignore new SYNs; False where that is not possible."""
    if sys.platform != "linux":
        return False
    program = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *op) for op in _DROP_SYNS))
    sock_fprog = struct.pack("HL", len(_DROP_SYNS), ctypes.addressof(program))
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


def half_open_count(fds: list[int]) -> int:
    """Handshakes answered (SYN-ACK sent) but not completed on the listeners' ports.

    Counted by port, whatever the local address: a listener on a wildcard address answers
    on each of them, and counting a stranger's on the same port only makes the wait longer.
    """
    return _half_open(_ports(fds))


def _ports(fds: list[int]) -> frozenset[str]:
    """The listeners' ports as /proc/net/tcp writes them after the address (`:1F90`)."""
    ports = set()
    for fd in fds:
        with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fd)) as listener:
            ports.add(f":{listener.getsockname()[1]:04X}")
    return frozenset(ports)


def _half_open(ports: frozenset[str]) -> int:
    count = 0
    for table in _PROC_TABLES:
        try:
            with open(table, encoding="ascii") as rows:
                next(rows, None)  # the header line
                for row in rows:
                    fields = row.split(None, 4)
                    if fields[3] == _SYN_RECV and fields[1][fields[1].rfind(":") :] in ports:
                        count += 1
        except OSError:
            continue
    return count


def _settling(fds: list[int], ports: frozenset[str]) -> bool:
    return any(accept_queue_length(fd) for fd in fds) or _half_open(ports) > 0


def quiesce(fds: list[int], wait_seconds: float) -> None:
    """Drop new SYNs and wait, at most `wait_seconds`, until no connection is queued or
    half-open."""
    if not all([drop_new_connections(fd) for fd in fds]):
        return
    ports = _ports(fds)
    deadline = time.monotonic() + wait_seconds
    while _settling(fds, ports) and time.monotonic() < deadline:
        time.sleep(_POLL_SECONDS)


async def quiesce_async(fds: list[int], wait_seconds: float) -> None:
    """`quiesce` for a process whose own event loop does the accepting."""
    if not all([drop_new_connections(fd) for fd in fds]):
        return
    ports = _ports(fds)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(wait_seconds):
            # The kernel signals nothing when its accept queue empties: poll it.
            while _settling(fds, ports):  # noqa: ASYNC110
                await asyncio.sleep(_POLL_SECONDS)
