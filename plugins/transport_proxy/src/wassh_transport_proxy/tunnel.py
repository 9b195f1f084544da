"""A handshake in progress (``Tunnel``), driven one non-blocking step at a time.

Loaded at the first proxied connect, not when wassh starts: a run without a
proxy never needs it.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import math
import select
import socket
import time
from typing import Any

from wassh import SocketHandle, os_socket

from .protocol import Handshake, HandshakeError, Read, ReadHead, Send, head_end
from .waker import Waker

log = logging.getLogger("wassh.proxy")

_NOSIGNAL = getattr(socket, "MSG_NOSIGNAL", 0)
_PEEK_SIZE = 4096


class ProxyConnection(socket.socket):
    """The OS socket to the proxy; the guest's connection once the tunnel is up."""

    __slots__ = ("local", "peer", "tunnel")
    tunnel: Tunnel | None  # the handshake while it runs
    peer: tuple[str, int] | None  # the destination, when it is an address
    local: tuple[str, int] | None  # where the destination sees us: the proxy's end


Handle = SocketHandle[ProxyConnection]


class Tunnel:
    """One handshake in progress, driven without blocking (see ``advance``)."""

    __slots__ = (
        "addresses",
        "bound",
        "connecting",
        "deadline",
        "label",
        "op",
        "out",
        "received",
        "steps",
        "timeout",
        "waker",
    )

    def __init__(
        self,
        steps: Handshake,
        addresses: list[tuple[int, Any]],
        timeout: float,
        label: str,
        deadline: float = math.inf,
    ) -> None:
        self.steps = steps
        self.addresses = addresses  # the proxy's addresses still to try, first is current
        self.timeout = timeout
        # The core's connect deadline when it gave one (the lookup of the proxy's
        # name has spent part of the timeout already).
        self.deadline = min(deadline, time.monotonic() + timeout)
        self.label = label  # "PROXY -> TARGET" for log lines
        self.connecting = True  # the TCP connect to the proxy is in progress
        self.op: Send | Read | ReadHead | None = None
        self.out = memoryview(b"")
        self.received = bytearray()
        self.waker: Waker | None = None
        self.bound: tuple[str, int] | None = None  # the handshake's value: BND.ADDR/PORT

    # -- driving -----------------------------------------------------------------------
    def advance(self, sock: Handle) -> bool:
        """Take every step that does not block: True once the tunnel is up.

        :raises HandshakeError: the connect failed (logged here, once).
        """
        try:
            done = self._advance(sock)
        except HandshakeError as exc:
            self._log(exc)
            raise
        except OSError as exc:  # the proxy's socket failed under the handshake
            failed = HandshakeError(
                errno.ECONNRESET, f"the proxy connection failed: {exc.strerror or exc}"
            )
            self._log(failed)
            raise failed from exc
        if not done:
            self._watch(sock.state)
        return done

    def _advance(self, sock: Handle) -> bool:
        if time.monotonic() >= self.deadline:
            stage = "connecting to the proxy" if self.connecting else "waiting for the proxy"
            raise HandshakeError(errno.ETIMEDOUT, f"timed out after {self.timeout:g} s {stage}")
        if self.connecting:
            if not self._connect(sock):
                return False
            self.connecting = False
            self.op = self._resume(None)
        conn = sock.state
        while self.op is not None:
            op = self.op
            if isinstance(op, Send):
                if not self.out:
                    self.out = memoryview(op.data)
                try:
                    sent = conn.send(self.out, _NOSIGNAL)
                except BlockingIOError:
                    return False
                self.out = self.out[sent:]
                if not self.out:
                    self.op = self._resume(b"")
                continue
            reply = self._read(conn, op)
            if reply is None:
                return False
            self.op = self._resume(reply)
        return True

    def _connect(self, sock: Handle) -> bool:
        """Advance the TCP connect to the proxy, trying its next address on failure."""
        while True:
            conn = sock.state
            try:
                return os_socket.connect_step(conn, self.addresses[0][1])
            except OSError as exc:
                if len(self.addresses) == 1:
                    raise HandshakeError(
                        errno.ECONNREFUSED,
                        f"cannot reach the proxy: {exc.strerror or exc}",
                    ) from exc
                log.debug("proxy %s: %s; trying its next address", self.label, exc)
            del self.addresses[0]
            fresh = open_connection(sock, self.addresses[0][0])
            fresh.tunnel, fresh.peer = conn.tunnel, conn.peer
            conn.tunnel = None
            sock.state = fresh
            conn.close()

    def _read(self, conn: ProxyConnection, op: Read | ReadHead) -> bytes | None:
        """The reply ``op`` asks for once it is all here; None while it is not."""
        received = self.received
        while True:
            if isinstance(op, Read):
                want = op.size - len(received)
                flags = 0
            else:
                want = min(op.limit - len(received), _PEEK_SIZE)
                if want <= 0:
                    raise HandshakeError(
                        errno.EPROTO,
                        f"the proxy's HTTP response head is over {op.limit} bytes",
                    )
                # Peek, then take exactly up to the end of the head: what follows
                # belongs to the guest and stays in the kernel's buffer.
                flags = socket.MSG_PEEK
            try:
                data = conn.recv(want, flags)
            except BlockingIOError:
                return None
            if not data:
                raise HandshakeError(errno.ECONNRESET, "the proxy closed the connection")
            if isinstance(op, ReadHead):
                start = max(0, len(received) - 2)
                window = received[start:] + data
                end = head_end(window)
                take = len(data) if end is None else end - (len(received) - start)
                data = conn.recv(take)  # peeked: all there
                received += data
                if end is None:
                    continue
            else:
                received += data
                if len(received) < op.size:
                    continue
            reply = bytes(received)
            received.clear()
            return reply

    def _resume(self, value: bytes | None) -> Send | Read | ReadHead | None:
        """The handshake's next step, given what the last one read (None to start)."""
        try:
            return next(self.steps) if value is None else self.steps.send(value)
        except StopIteration as done:
            self.bound = done.value
            return None

    def _watch(self, conn: ProxyConnection) -> None:
        wants_out = self.connecting or isinstance(self.op, Send)
        events = select.EPOLLOUT if wants_out else select.EPOLLIN
        if self.waker is None:
            self.waker = Waker(conn, events, self.deadline - time.monotonic())
        else:
            self.waker.watch(conn, events)

    def _log(self, exc: HandshakeError) -> None:
        log.log(
            logging.INFO if exc.routine else logging.WARNING, "%s: %s", self.label, exc.strerror
        )

    def poll_fd(self, conn: ProxyConnection) -> int:
        if self.waker is None:
            self._watch(conn)
        assert self.waker is not None
        return self.waker.fileno()

    def close(self) -> None:
        self.steps.close()
        if self.waker is not None:
            self.waker.close()
            self.waker = None


def open_connection(sock: Handle, family: int) -> ProxyConnection:
    """A non-blocking socket of the proxy's family, with the options the guest set."""
    conn = ProxyConnection(family, socket.SOCK_STREAM)
    conn.tunnel = None
    conn.peer = None
    conn.local = None
    conn.setblocking(False)
    os_socket.apply_options(sock, conn)
    return conn


def in_family(host: str, port: int, family: int) -> tuple[str, int] | None:
    """An address as a guest socket of ``family`` can report it (IPv4 mapped into IPv6)."""
    address = ipaddress.ip_address(host.split("%", 1)[0])
    if family == socket.AF_INET6 and address.version == 4:
        return f"::ffff:{address}", port
    if family == socket.AF_INET and isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        return (str(mapped), port) if mapped is not None else None
    return host, port
