"""Listening TCP, UDP and AF_UNIX sockets on host OS sockets.

Every socket here is a non-blocking OS socket driven from the guest thread, as
in transport_tcp: the kernel's buffers are the socket's buffers and poll(2) on
the socket is its readiness, so ``recv``/``send`` are one OS call each.

``sock.state`` is one of:

* ``Bound``: a TCP socket after ``bind`` (listening, or connecting from its
  address), or an AF_UNIX socket connected to the host path it is mapped to;
* ``Datagram``: a UDP socket (bound explicitly, by its first ``sendto``, or by
  ``connect``, which lets the kernel filter datagrams by peer);
* a plain ``socket.socket``: an accepted connection.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Mapping
from typing import Any

from wassh import (
    DGRAM,
    LISTEN,
    STREAM,
    UNIX,
    Offer,
    PluginOptions,
    SocketHandle,
    TransportConfig,
    hookimpl,
    os_socket,
    parse_pairs,
    resolve,
)

RANK = 100

log = logging.getLogger("wassh.listen")


class Bound(os_socket.Dialled):
    """An OS socket the guest bound, or an AF_UNIX one; ``target`` is where it connects."""

    __slots__ = ()


class Datagram(Bound):
    """A UDP socket."""

    __slots__ = ()


Handle = SocketHandle[Any]


class ListenTransport(os_socket.OSSocketHooks[socket.socket]):
    """Three offers: ``listen`` (TCP bind/listen/accept, and the accepted
    connections), ``udp`` and ``unix`` (guest AF_UNIX paths mapped to host
    sockets with ``--unix``)."""

    name = "listen"

    def __init__(self) -> None:
        self.unix_map: dict[str, str] = {}

    @hookimpl
    def wassh_addoption(self, options: PluginOptions) -> None:
        options.add(
            "--unix",
            dest="unix",
            action="append",
            metavar="GUEST_PATH=HOST_PATH",
            help="map a guest AF_UNIX path to a host Unix socket",
        )

    @hookimpl
    def wassh_transport_offer(
        self, config: TransportConfig, settings: Mapping[str, object]
    ) -> list[Offer]:
        unknown = set(settings) - {"unix"}
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))} (known: unix)")
        self.unix_map = parse_pairs(settings.get("unix", {}), "--unix")
        has_unix = hasattr(socket, "AF_UNIX")
        return [
            Offer("listen", frozenset({LISTEN}), RANK, checks_addresses=True, os_sockets=True),
            Offer("udp", frozenset({DGRAM}), RANK, checks_addresses=True),
            Offer(
                "unix",
                frozenset({UNIX}),
                RANK,
                available=has_unix,
                reason="" if has_unix else "this host has no AF_UNIX sockets",
                os_sockets=True,
            ),
        ]

    # -- set-up: bind, listen, accept, connect -------------------------------------------
    @hookimpl
    def wassh_sock_bind(self, sock: Handle, host: str, port: int) -> None:
        udp = sock.kind == DGRAM
        # The core checked a literal against the listen rules; resolve checks names.
        # UDP port 0 is what a first sendto binds anyway: only fixed ports serve.
        address = resolve(sock, host, port, listening=not (udp and port == 0))
        conn: Bound
        if udp:
            conn = os_socket.open_socket(sock, socket.SOCK_DGRAM, Datagram)
        else:
            conn = os_socket.open_socket(sock, socket.SOCK_STREAM, Bound)
        try:
            conn.bind(address)
        except BaseException:
            conn.close()
            raise
        sock.state = conn

    @hookimpl
    def wassh_sock_listen(self, sock: SocketHandle[Bound], backlog: int) -> None:
        sock.state.listen(backlog)

    @hookimpl
    def wassh_sock_connect(self, sock: Handle, host: str, port: int) -> bool:
        if sock.family == socket.AF_UNIX:
            return self._connect_unix(sock, host)
        address = resolve(sock, host, port)
        if sock.kind == DGRAM:
            if sock.state is None:
                sock.state = os_socket.open_socket(sock, socket.SOCK_DGRAM, Datagram)
            sock.state.connect(address)  # no packet is sent; only this peer is heard now
            return True
        # A bound TCP socket connecting from its address.
        return os_socket.dial(sock, sock.state, address)

    def _connect_unix(self, sock: Handle, path: str) -> bool:
        host_path = self.unix_map.get(path)
        if host_path is None:
            log.info("AF_UNIX connect to %r refused: the path is not mapped (--unix)", path)
            raise ConnectionRefusedError(
                errno.ECONNREFUSED, f"{path} is not mapped to a host socket"
            )
        type_ = socket.SOCK_STREAM if sock.kind == STREAM else socket.SOCK_DGRAM
        conn = Bound(socket.AF_UNIX, type_)
        conn.setblocking(False)
        return os_socket.dial(sock, conn, host_path)

    @hookimpl
    def wassh_sock_connect_check(self, sock: SocketHandle[Bound]) -> bool:
        return os_socket.dial_check(sock)

    # -- datagrams -----------------------------------------------------------------------
    @hookimpl
    def wassh_sock_recvfrom(
        self, sock: SocketHandle[socket.socket], buf: memoryview, peek: bool
    ) -> tuple[int, tuple[str, int] | None]:
        return os_socket.recvfrom(sock, buf, peek)

    @hookimpl
    def wassh_sock_sendto(self, sock: Handle, data: memoryview, host: str, port: int) -> int:
        address = resolve(sock, host, port)
        if sock.state is None:
            sock.state = os_socket.open_socket(sock, socket.SOCK_DGRAM, Datagram)
        sent: int = sock.state.sendto(data, address)
        return sent
