"""Hook implementations shared by transports whose connections are host OS sockets.

``transport_tcp`` and ``transport_listen`` keep a non-blocking ``socket.socket``
in ``sock.transport_state``; for them these functions are the whole data path
and option handling. A plugin re-exports each under its hook name, e.g.
``wassh_sock_send = hookimpl(os_socket.send)``.
"""

from __future__ import annotations

import errno
import select
import socket

from .host.sockets import Socket as SocketHandle

_NOSIGNAL = getattr(socket, "MSG_NOSIGNAL", 0)
_PEEK = socket.MSG_PEEK
_POLLIN, _POLLOUT = select.POLLIN, select.POLLOUT


def recv_into(sock: SocketHandle, buf: memoryview, peek: bool) -> int:
    conn: socket.socket = sock.transport_state
    return conn.recv_into(buf, 0, _PEEK if peek else 0)


def send(sock: SocketHandle, data: memoryview) -> int:
    conn: socket.socket = sock.transport_state
    return conn.send(data, _NOSIGNAL)


def wait_handle(sock: SocketHandle, write: bool) -> tuple[int, int]:
    conn: socket.socket = sock.transport_state
    return conn.fileno(), _POLLOUT if write else _POLLIN


def setsockopt(sock: SocketHandle, level: int, name: int, value: int) -> None:
    conn: socket.socket = sock.transport_state
    conn.setsockopt(level, name, value)


def getsockopt(sock: SocketHandle, level: int, name: int) -> int | None:
    conn: socket.socket = sock.transport_state
    return conn.getsockopt(level, name)


def shutdown(sock: SocketHandle, how: int) -> None:
    conn: socket.socket = sock.transport_state
    try:
        conn.shutdown(how)
    except OSError as exc:
        if exc.errno != errno.ENOTCONN:  # the peer may already be gone: nothing to do
            raise


def close(sock: SocketHandle) -> None:
    conn: socket.socket = sock.transport_state
    conn.close()


def name(sock: SocketHandle, remote: bool) -> tuple[str, int] | None:
    conn: socket.socket = sock.transport_state
    if conn.family == socket.AF_UNIX:
        return None  # AF_UNIX names answer EPROTONOSUPPORT, as the original runtime does
    try:
        addr = conn.getpeername() if remote else conn.getsockname()
    except OSError:
        return None
    return str(addr[0]), int(addr[1])


def apply_options(sock: SocketHandle, conn: socket.socket) -> None:
    """Apply the options the guest set before the OS socket existed."""
    for (level, opt), value in sock.options.items():
        try:
            conn.setsockopt(level, opt, value)
        except OSError:  # answered again, with its errno, if the guest sets it live
            pass
