"""The kit's loopback servers: the TCP peer, the UDP echo, a refusing port.

The TCP peer serves every stream case. A connection's first line,
``TOKEN MODE [ARG]\\n``, says how the peer behaves on it and names it, so a
case finds its own connections (``PeerServer.connection(token)``) while
other cases run against the same server:

=========  ==================================================================
``echo``    echo every byte; at end of stream, end its own side and close
``eof``     echo; at end of stream send ``[eof after N]``, then close
``closer``  echo; once ``bye\\n`` has been echoed, end its side (the guest sees EOF)
``source``  send ARG bytes of the pattern, end its side, read until the guest closes
``sink``    read and count until end of stream; never send
``stall``   never send; read (nothing comes) until the guest closes
``hold``    neither read nor send until ``release()``; then read until end of stream
``reset``   reset the connection (RST) at once
=========  ==================================================================

Every connection records the bytes it received after the first line (count
and SHA-256) and how it ended.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import struct
import threading
from dataclasses import dataclass, field
from functools import cache

from ._guest import ConformanceFailure
from ._spec import Endpoint

PERIOD = 65521


@cache
def _block() -> bytes:
    out = bytearray(PERIOD)
    x = 0x9E3779B9
    for i in range(PERIOD):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out[i] = x >> 24
    return bytes(out)


def pattern(offset: int, size: int) -> bytes:
    """``size`` bytes of the stream the guest sends and checks, from ``offset``.

    Byte ``i`` is ``block[i % 65521]`` for a fixed pseudo-random block: a
    prime period, so a chunk lost, repeated or reordered at any buffer size
    shows as wrong bytes.
    """
    block = _block()
    start = offset % PERIOD
    reps = (start + size) // PERIOD + 1
    return (block * reps)[start : start + size]


def pattern_digest(size: int) -> str:
    """The SHA-256 of the first ``size`` pattern bytes (hex)."""
    h = hashlib.sha256()
    done = 0
    while done < size:
        n = min(1 << 20, size - done)
        h.update(pattern(done, n))
        done += n
    return h.hexdigest()


def has_ipv6() -> bool:
    """True when this host has an IPv6 loopback to listen on."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@dataclass
class PeerConnection:
    """One connection at the peer server, as the peer saw it."""

    token: str
    mode: str
    arg: str
    client: tuple[str, int]
    received: int = 0
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)
    # "eof" (the guest's side ended cleanly), "reset", "error: ...", "" while open
    end: str = ""
    ended: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    sent: int = 0

    def wait_ended(self, timeout: float) -> bool:
        """True once the connection has ended (within ``timeout`` seconds)."""
        return self.ended.wait(timeout)

    def release(self) -> None:
        """A ``hold`` connection starts reading (to see the guest's close)."""
        self.released.set()

    def describe(self) -> str:
        return (
            f"peer connection {self.token!r} ({self.mode}): received {self.received} bytes, "
            f"sent {self.sent}, end {self.end or 'still open'}"
        )


class PeerServer:
    """The TCP peer on ``127.0.0.1`` (and ``::1`` when the host has IPv6), threaded.

    Also holds the ``refused`` port (bound, never listening) for the session.
    """

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._connections: dict[str, PeerConnection] = {}
        self._open: set[socket.socket] = set()
        self._listeners: dict[int, socket.socket] = {}
        self._closed = False
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            if family == socket.AF_INET6 and not has_ipv6():
                continue
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sock.listen(256)
            self._listeners[family] = sock
            threading.Thread(
                target=self._accept_loop, args=(sock,), daemon=True, name="wassh-peer"
            ).start()
        # Bound but not listening: a connect gets a RST, and no one else takes the port.
        self._refused = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._refused.bind(("127.0.0.1", 0))

    # -- endpoints -----------------------------------------------------------------------
    @property
    def ipv6(self) -> bool:
        return socket.AF_INET6 in self._listeners

    def endpoint(self, family: int = socket.AF_INET) -> Endpoint:
        sock = self._listeners[family]
        host, port = sock.getsockname()[:2]
        return Endpoint("peer", str(host), int(port))

    @property
    def refused(self) -> Endpoint:
        return Endpoint("refused", "127.0.0.1", int(self._refused.getsockname()[1]))

    @property
    def unreachable(self) -> Endpoint:
        # TCP to a multicast address: Linux's tcp_v4_connect answers ENETUNREACH
        # at once, whatever the routes (and nothing can ever answer it).
        return Endpoint("unreachable", "224.0.0.1", 9)

    # -- records -------------------------------------------------------------------------
    def connection(self, token: str, timeout: float = 10.0) -> PeerConnection:
        """The connection that introduced itself as ``token`` (waits for its first line)."""
        with self._lock:
            if not self._lock.wait_for(lambda: token in self._connections, timeout):
                known = ", ".join(sorted(self._connections)[-5:])
                raise ConformanceFailure(
                    f"no connection with token {token!r} reached the peer server within "
                    f"{timeout} s (latest: {known or 'none'})"
                )
            return self._connections[token]

    def find(self, token: str) -> PeerConnection | None:
        with self._lock:
            return self._connections.get(token)

    # -- serving -------------------------------------------------------------------------
    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, client = listener.accept()
            except OSError:
                return
            with self._lock:
                if self._closed:
                    conn.close()
                    return
                self._open.add(conn)
            threading.Thread(
                target=self._serve, args=(conn, client), daemon=True, name="wassh-peer-conn"
            ).start()

    def _serve(self, conn: socket.socket, client: tuple[str, int]) -> None:
        record: PeerConnection | None = None
        try:
            conn.settimeout(30)
            line, rest = _read_line(conn)
            token, _, tail = line.partition(" ")
            mode, _, arg = tail.partition(" ")
            record = PeerConnection(token, mode, arg, (str(client[0]), int(client[1])))
            conn.settimeout(None)
            with self._lock:
                self._connections[token] = record
                self._lock.notify_all()
            handler = getattr(self, "_mode_" + mode, None)
            if handler is None:
                record.end = f"error: unknown mode {mode!r}"
                return
            if rest:
                record.received += len(rest)
                record.digest.update(rest)
            handler(conn, record, rest)
        except ConnectionResetError:
            if record is not None:
                record.end = "reset"
        except OSError as exc:
            if record is not None and not record.end:
                record.end = f"error: {exc}"
        finally:
            with self._lock:
                self._open.discard(conn)
            conn.close()
            if record is not None:
                if not record.end:
                    record.end = "closed"
                record.ended.set()

    @staticmethod
    def _take(conn: socket.socket, record: PeerConnection) -> bytes:
        data = conn.recv(1 << 16)
        record.received += len(data)
        record.digest.update(data)
        return data

    def _echo_until_eof(
        self, conn: socket.socket, record: PeerConnection, first: bytes, bye: bool = False
    ) -> None:
        seen = bytearray()
        data = first
        while True:
            if data:
                conn.sendall(data)
                record.sent += len(data)
                if bye:
                    seen += data
                    if seen.endswith(b"bye\n"):
                        conn.shutdown(socket.SHUT_WR)
                        self._drain(conn, record)
                        return
            data = self._take(conn, record)
            if not data:
                record.end = "eof"
                return

    def _drain(self, conn: socket.socket, record: PeerConnection) -> None:
        while self._take(conn, record):
            pass
        record.end = "eof"

    def _mode_echo(self, conn: socket.socket, record: PeerConnection, first: bytes) -> None:
        self._echo_until_eof(conn, record, first)
        conn.shutdown(socket.SHUT_WR)

    def _mode_eof(self, conn: socket.socket, record: PeerConnection, first: bytes) -> None:
        self._echo_until_eof(conn, record, first)
        trailer = f"[eof after {record.received}]".encode()
        conn.sendall(trailer)
        record.sent += len(trailer)
        conn.shutdown(socket.SHUT_WR)

    def _mode_closer(self, conn: socket.socket, record: PeerConnection, first: bytes) -> None:
        self._echo_until_eof(conn, record, first, bye=True)

    def _mode_source(self, conn: socket.socket, record: PeerConnection, first: bytes) -> None:
        total = int(record.arg)
        done = 0
        while done < total:
            chunk = pattern(done, min(1 << 18, total - done))
            conn.sendall(chunk)
            done += len(chunk)
            record.sent = done
        conn.shutdown(socket.SHUT_WR)
        self._drain(conn, record)

    def _mode_sink(self, conn: socket.socket, record: PeerConnection, first: bytes) -> None:
        self._drain(conn, record)

    def _mode_stall(self, conn: socket.socket, record: PeerConnection, first: bytes) -> None:
        self._drain(conn, record)

    def _mode_hold(self, conn: socket.socket, record: PeerConnection, first: bytes) -> None:
        while not record.released.wait(0.05):
            if self._closed:
                return
        self._drain(conn, record)

    def _mode_reset(self, conn: socket.socket, record: PeerConnection, first: bytes) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        record.end = "reset sent"

    def close(self) -> None:
        with self._lock:
            self._closed = True
            open_now = list(self._open)
        for sock in [*self._listeners.values(), self._refused, *open_now]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def _read_line(conn: socket.socket) -> tuple[str, bytes]:
    """The first line (without ``\\n``) and whatever came after it in the same reads."""
    buf = bytearray()
    while b"\n" not in buf:
        data = conn.recv(4096)
        if not data:
            raise OSError(f"connection ended before its first line ({bytes(buf)!r})")
        buf += data
        if len(buf) > 4096:
            raise OSError("first line too long")
    line, _, rest = bytes(buf).partition(b"\n")
    return line.decode("ascii", "replace").strip(), rest


class UdpEchoServer:
    """Echoes every datagram to where it came from, on ``127.0.0.1`` (and ``::1``)."""

    def __init__(self) -> None:
        self._socks: dict[int, socket.socket] = {}
        self.received = 0
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            if family == socket.AF_INET6 and not has_ipv6():
                continue
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.bind((host, 0))
            self._socks[family] = sock
            threading.Thread(
                target=self._loop, args=(sock,), daemon=True, name="wassh-udp-echo"
            ).start()

    def _loop(self, sock: socket.socket) -> None:
        while True:
            try:
                data, source = sock.recvfrom(1 << 16)
                self.received += 1
                sock.sendto(data, source)
            except OSError:
                if sock.fileno() < 0:
                    return

    def endpoint(self, family: int = socket.AF_INET) -> Endpoint:
        host, port = self._socks[family].getsockname()[:2]
        return Endpoint("udp-peer", str(host), int(port))

    @staticmethod
    def refused() -> Endpoint:
        """A UDP port with no socket (what a closed port answers: ICMP unreachable)."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        return Endpoint("udp-refused", "127.0.0.1", port)

    def close(self) -> None:
        for sock in self._socks.values():
            sock.close()
