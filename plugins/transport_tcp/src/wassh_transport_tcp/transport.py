"""The hook implementations of the direct TCP transport."""

from __future__ import annotations

import errno
import os
import socket
from typing import Any

from wassh import STREAM, Offer, SocketHandle, TransportConfig, hookimpl, os_socket, resolve

RANK = 100


class TcpConnection(socket.socket):
    """The OS socket plus the address a connect in progress is heading for."""

    __slots__ = ("target",)
    target: Any


@hookimpl
def wassh_transport_offer(config: TransportConfig) -> Offer:
    return Offer(name="tcp", kinds=frozenset({STREAM}), rank=RANK, checks_addresses=True)


@hookimpl
def wassh_sock_connect(sock: SocketHandle, host: str, port: int) -> bool:
    address = resolve(sock, host, port)
    conn = TcpConnection(sock.family, socket.SOCK_STREAM)
    conn.setblocking(False)
    os_socket.apply_options(sock, conn)
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


# The data path, options, half-close and names are those of any OS socket.
wassh_sock_recv_into = hookimpl(os_socket.recv_into)
wassh_sock_send = hookimpl(os_socket.send)
wassh_sock_wait_handle = hookimpl(os_socket.wait_handle)
wassh_sock_setsockopt = hookimpl(os_socket.setsockopt)
wassh_sock_getsockopt = hookimpl(os_socket.getsockopt)
wassh_sock_shutdown = hookimpl(os_socket.shutdown)
wassh_sock_close = hookimpl(os_socket.close)
wassh_sock_name = hookimpl(os_socket.name)
