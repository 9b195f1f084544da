"""The hook implementations: listening TCP, UDP and AF_UNIX streams on host sockets.

Every socket here is a non-blocking OS socket driven from the guest thread, as
in transport_tcp: the kernel's buffers are the socket's buffers and poll(2) on
the socket is its readiness, so ``recv``/``send`` are one OS call each.

``transport_state`` is one of:

* ``Bound``: a TCP socket after ``bind`` (listening, or connecting from its
  address), or an AF_UNIX socket connected to the host path it is mapped to;
* ``Datagram``: a UDP socket (bound explicitly, by its first ``sendto``, or by
  ``connect``, which lets the kernel filter datagrams by peer);
* a plain ``socket.socket``: an accepted connection.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket
import sys
from typing import Any

from wassh import (
    DGRAM,
    LISTEN,
    STREAM,
    UNIX,
    Offer,
    SocketHandle,
    TransportConfig,
    hookimpl,
    os_socket,
)
from wassh import resolve as resolve_name

RANK = 100

log = logging.getLogger("wassh.listen")

_NOSIGNAL = getattr(socket, "MSG_NOSIGNAL", 0)
# Linux reports a datagram's full length under MSG_TRUNC, so truncation is seen.
_TRUNC = socket.MSG_TRUNC if sys.platform.startswith("linux") else 0
_PEEK = socket.MSG_PEEK
_POLLIN, _POLLOUT = select.POLLIN, select.POLLOUT


class Bound(socket.socket):
    """An OS socket the guest bound, or an AF_UNIX one; ``target`` is where it connects."""

    __slots__ = ("target",)
    target: Any


class Datagram(Bound):
    """A UDP socket; receives report their source in ``sock.last_source``."""

    __slots__ = ()


def _open(sock: SocketHandle, cls: type[Bound], type_: int) -> Bound:
    """A non-blocking OS socket of ``cls`` with the options the guest set so far."""
    conn = cls(sock.family, type_)
    conn.setblocking(False)
    for (level, name), value in sock.options.items():
        try:
            conn.setsockopt(level, name, value)
        except OSError as exc:
            log.debug("option %s/%s not applied: %s", level, name, exc)
    return conn


# ---------------------------------------------------------------------------
# Offers
# ---------------------------------------------------------------------------


@hookimpl
def wassh_transport_offer(config: TransportConfig) -> list[Offer]:
    has_unix = hasattr(socket, "AF_UNIX")
    return [
        Offer("listen", frozenset({LISTEN}), RANK, checks_addresses=True),
        Offer("udp", frozenset({DGRAM}), RANK, checks_addresses=True),
        Offer(
            "unix",
            frozenset({UNIX}),
            RANK,
            available=has_unix,
            reason="" if has_unix else "this host has no AF_UNIX sockets",
        ),
    ]


# ---------------------------------------------------------------------------
# Set-up: bind, listen, accept, connect
# ---------------------------------------------------------------------------


@hookimpl
def wassh_sock_bind(sock: SocketHandle, host: str, port: int) -> None:
    udp = sock.kind == DGRAM
    # The core checked a literal against the listen rules; resolve checks names.
    # UDP port 0 is what a first sendto binds anyway: only fixed ports serve.
    address = resolve_name(sock, host, port, listening=not (udp and port == 0))
    if udp:
        conn = _open(sock, Datagram, socket.SOCK_DGRAM)
    else:
        conn = _open(sock, Bound, socket.SOCK_STREAM)
    try:
        conn.bind(address)
    except BaseException:
        conn.close()
        raise
    sock.transport_state = conn


@hookimpl
def wassh_sock_listen(sock: SocketHandle, backlog: int) -> None:
    conn: Bound = sock.transport_state
    conn.listen(backlog)


@hookimpl
def wassh_sock_accept(sock: SocketHandle) -> socket.socket:
    listener: Bound = sock.transport_state
    conn, _ = listener.accept()  # BlockingIOError when nothing is pending
    conn.setblocking(False)
    return conn


@hookimpl
def wassh_sock_connect(sock: SocketHandle, host: str, port: int) -> bool:
    if sock.family == socket.AF_UNIX:
        return _connect_unix(sock, host)
    address = resolve_name(sock, host, port)
    if sock.kind == DGRAM:
        conn = sock.transport_state
        if conn is None:
            conn = sock.transport_state = _open(sock, Datagram, socket.SOCK_DGRAM)
        conn.connect(address)  # no packet is sent; from now on only this peer is heard
        return True
    # A bound TCP socket connecting from its address.
    bound: Bound = sock.transport_state
    bound.target = address
    return _connect_step(bound)


def _connect_unix(sock: SocketHandle, path: str) -> bool:
    host_path = sock.config.unix_map.get(path)
    if host_path is None:
        log.info("AF_UNIX connect to %r refused: the path is not mapped (--unix)", path)
        raise ConnectionRefusedError(errno.ECONNREFUSED, f"{path} is not mapped to a host socket")
    type_ = socket.SOCK_STREAM if sock.kind == STREAM else socket.SOCK_DGRAM
    conn = Bound(socket.AF_UNIX, type_)
    conn.setblocking(False)
    conn.target = host_path
    sock.transport_state = conn
    try:
        return _connect_step(conn)
    except BaseException:
        sock.transport_state = None
        conn.close()
        raise


def _connect_step(conn: Bound) -> bool:
    err = conn.connect_ex(conn.target)
    if err in (0, errno.EISCONN):
        return True
    # AF_UNIX answers EAGAIN while the server's backlog is full: try again later.
    if err in (errno.EINPROGRESS, errno.EALREADY, errno.EAGAIN):
        return False
    raise OSError(err, os.strerror(err))


@hookimpl
def wassh_sock_connect_check(sock: SocketHandle) -> bool:
    return _connect_step(sock.transport_state)


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


@hookimpl
def wassh_sock_recv_into(sock: SocketHandle, buf: memoryview, peek: bool) -> int:
    conn: socket.socket = sock.transport_state
    if type(conn) is Datagram:
        n, source = conn.recvfrom_into(buf, 0, (_TRUNC | _PEEK) if peek else _TRUNC)
        sock.last_source = (source[0], source[1])
        return n
    return conn.recv_into(buf, 0, _PEEK if peek else 0)


wassh_sock_send = hookimpl(os_socket.send)


@hookimpl
def wassh_sock_sendto(sock: SocketHandle, data: memoryview, host: str, port: int) -> int:
    address = resolve_name(sock, host, port)
    conn = sock.transport_state
    if conn is None:
        conn = sock.transport_state = _open(sock, Datagram, socket.SOCK_DGRAM)
    sent: int = conn.sendto(data, address)
    return sent


# Readiness, options, half-close, names and close are those of any OS socket.
wassh_sock_wait_handle = hookimpl(os_socket.wait_handle)
wassh_sock_setsockopt = hookimpl(os_socket.setsockopt)
wassh_sock_getsockopt = hookimpl(os_socket.getsockopt)
wassh_sock_shutdown = hookimpl(os_socket.shutdown)
wassh_sock_close = hookimpl(os_socket.close)
wassh_sock_name = hookimpl(os_socket.name)
