"""The hook implementations of the direct TCP transport."""

from __future__ import annotations

import errno
import os
import select
import socket
from typing import Any

from wassh import STREAM, Offer, SocketHandle, TransportConfig, hookimpl, resolve

RANK = 100


class TcpConnection(socket.socket):
    """The OS socket plus the address a connect in progress is heading for."""

    __slots__ = ("target",)
    target: Any


@hookimpl
def wassh_transport_offer(config: TransportConfig) -> Offer:
    return Offer(name="tcp", kinds=frozenset({STREAM}), rank=RANK)


@hookimpl
def wassh_sock_connect(sock: SocketHandle, host: str, port: int) -> bool:
    address = resolve(sock.config, host, port, sock.family)
    conn = TcpConnection(sock.family, socket.SOCK_STREAM)
    conn.setblocking(False)
    for (level, name), value in sock.options.items():
        try:
            conn.setsockopt(level, name, value)
        except OSError:
            pass
    conn.target = address
    err = conn.connect_ex(address)
    if err in (0, errno.EISCONN):
        sock.transport_state = conn
        return True
    if err in (errno.EINPROGRESS, errno.EALREADY, errno.EAGAIN):
        sock.transport_state = conn
        return False
    conn.close()
    raise OSError(err, os.strerror(err))


@hookimpl
def wassh_sock_connect_check(sock: SocketHandle) -> bool:
    conn: TcpConnection = sock.transport_state
    err = conn.connect_ex(conn.target)
    if err in (0, errno.EISCONN):
        return True
    if err in (errno.EINPROGRESS, errno.EALREADY):
        return False
    raise OSError(err, os.strerror(err))


@hookimpl
def wassh_sock_recv_into(sock: SocketHandle, buf: memoryview, peek: bool) -> int:
    conn: socket.socket = sock.transport_state
    return conn.recv_into(buf, 0, socket.MSG_PEEK if peek else 0)


@hookimpl
def wassh_sock_send(sock: SocketHandle, data: memoryview) -> int:
    conn: socket.socket = sock.transport_state
    return conn.send(data, socket.MSG_NOSIGNAL)


@hookimpl
def wassh_sock_wait_handle(sock: SocketHandle, write: bool) -> tuple[int, int]:
    conn: socket.socket = sock.transport_state
    return conn.fileno(), select.POLLOUT if write else select.POLLIN


@hookimpl
def wassh_sock_setsockopt(sock: SocketHandle, level: int, name: int, value: int) -> None:
    conn: socket.socket = sock.transport_state
    conn.setsockopt(level, name, value)


@hookimpl
def wassh_sock_getsockopt(sock: SocketHandle, level: int, name: int) -> int | None:
    conn: socket.socket = sock.transport_state
    return conn.getsockopt(level, name)


@hookimpl
def wassh_sock_shutdown(sock: SocketHandle, how: int) -> None:
    conn: socket.socket = sock.transport_state
    try:
        conn.shutdown(how)
    except OSError as exc:
        if exc.errno != errno.ENOTCONN:  # the peer may already be gone: nothing to do
            raise


@hookimpl
def wassh_sock_close(sock: SocketHandle) -> None:
    conn: socket.socket = sock.transport_state
    conn.close()


@hookimpl
def wassh_sock_name(sock: SocketHandle, remote: bool) -> tuple[str, int] | None:
    conn: socket.socket = sock.transport_state
    try:
        addr = conn.getpeername() if remote else conn.getsockname()
    except OSError:
        return None
    return str(addr[0]), int(addr[1])
