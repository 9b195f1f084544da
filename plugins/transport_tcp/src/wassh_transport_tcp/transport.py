"""The direct TCP transport: one non-blocking OS socket per guest connection."""

from __future__ import annotations

from collections.abc import Mapping

from wassh import STREAM, Offer, SocketHandle, TransportConfig, hookimpl, os_socket, resolve

RANK = 100


class TcpTransport(os_socket.OSSocketHooks[os_socket.Dialled]):
    """Dials the address a name resolves to (checked by the network policy)."""

    name = "tcp"

    @hookimpl
    def wassh_transport_offer(
        self, config: TransportConfig, settings: Mapping[str, object]
    ) -> Offer:
        if settings:
            raise ValueError(f"takes no settings (given: {', '.join(sorted(settings))})")
        return Offer(
            name="tcp",
            kinds=frozenset({STREAM}),
            rank=RANK,
            checks_addresses=True,
            os_sockets=True,
        )

    @hookimpl
    def wassh_sock_connect(
        self, sock: SocketHandle[os_socket.Dialled], host: str, port: int
    ) -> bool:
        address = resolve(sock, host, port)
        return os_socket.dial(sock, os_socket.open_socket(sock, cls=os_socket.Dialled), address)

    @hookimpl
    def wassh_sock_connect_check(self, sock: SocketHandle[os_socket.Dialled]) -> bool:
        return os_socket.dial_check(sock)
