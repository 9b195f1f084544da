"""The direct TCP transport: one non-blocking OS socket per guest connection."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any

from wassh import STREAM, Offer, SocketHandle, TransportConfig, hookimpl, os_socket, resolve

RANK = 100


class TcpConnection(socket.socket):
    """The OS socket plus the address a connect in progress is heading for."""

    __slots__ = ("target",)
    target: Any


class TcpTransport(os_socket.OSSocketHooks[TcpConnection]):
    """Dials the address a name resolves to (checked by the network policy)."""

    name = "tcp"

    @hookimpl
    def wassh_transport_offer(
        self, config: TransportConfig, settings: Mapping[str, object]
    ) -> Offer:
        if settings:
            raise ValueError(f"takes no settings (given: {', '.join(sorted(settings))})")
        return Offer(name="tcp", kinds=frozenset({STREAM}), rank=RANK, checks_addresses=True)

    @hookimpl
    def wassh_sock_connect(self, sock: SocketHandle[TcpConnection], host: str, port: int) -> bool:
        address = resolve(sock, host, port)
        conn: TcpConnection = os_socket.open_socket(sock, socket.SOCK_STREAM, TcpConnection)
        conn.target = address
        try:
            done = os_socket.connect_step(conn, address)
        except BaseException:
            conn.close()
            raise
        sock.state = conn
        return done

    @hookimpl
    def wassh_sock_connect_check(self, sock: SocketHandle[TcpConnection]) -> bool:
        conn = sock.state
        return os_socket.connect_step(conn, conn.target)
