"""The suite's shared helpers: a loopback echo server that records what it saw,
and running a guest in-process. Plain module (not conftest.py), so test files and
plugins' tests import it by a name no other conftest shadows."""

from __future__ import annotations

import hashlib
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import wassh

GUESTS = Path(__file__).parent / "guests"


def wait_ready(fd: int | socket.socket, events: int, timeout: float) -> bool:
    """Whether ``fd`` reports one of ``events`` (``select.POLLIN``, ...) within
    ``timeout`` seconds. poll(2), not select(2): select refuses descriptors above
    1023, which a long test process reaches."""
    poller = select.poll()
    poller.register(fd, events)
    return bool(poller.poll(max(0, int(timeout * 1000))))


def stop_listening(sock: socket.socket, acceptor: threading.Thread | None = None) -> None:
    """Close a listening socket another thread is blocked in ``accept()`` on.

    ``close()`` alone does not wake that thread on Linux: it stays blocked in the
    kernel for ever, holding the socket, and a long run (a test repeated many times)
    piles up thousands of them. ``shutdown()`` wakes it first.
    """
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
    if acceptor is not None and acceptor is not threading.current_thread():
        acceptor.join(timeout=10)


@dataclass
class ConnRecord:
    received: int = 0
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)  # type: ignore[name-defined]
    saw_eof: bool = False


class LoopbackServer:
    """A TCP listener on 127.0.0.1 that hands each accepted connection to
    ``handle`` on a thread of its own; ``close`` stops it and closes what it kept."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.kept: list[socket.socket] = []  # connections a subclass holds open
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        stop_listening(self.sock, self._acceptor)
        for conn in self.kept:
            conn.close()


class EchoServer:
    """A threaded TCP echo server on loopback that records what each connection sent.

    With ``echo=False`` it only reads (a sink), still recording every connection.
    """

    def __init__(self, host: str = "127.0.0.1", *, echo: bool = True) -> None:
        self.echo = echo
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(1024)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.records: list[ConnRecord] = []
        self.lock = threading.Lock()
        self.accepted = threading.Condition(self.lock)
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            rec = ConnRecord()
            with self.accepted:
                self.records.append(rec)
                self.accepted.notify_all()
            threading.Thread(target=self._serve, args=(conn, rec), daemon=True).start()

    def _serve(self, conn: socket.socket, rec: ConnRecord) -> None:
        with conn:
            while True:
                try:
                    data = conn.recv(1 << 16)
                except OSError:
                    return
                if not data:
                    rec.saw_eof = True
                    break
                rec.received += len(data)
                rec.digest.update(data)
                if not self.echo:
                    continue
                try:
                    conn.sendall(data)
                except OSError:
                    return
            try:
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def wait_connections(self, count: int, timeout: float = 5.0) -> int:
        """How many connections were accepted, once ``count`` were (or at timeout).

        A client's connect returns when the kernel queues the connection, before
        this server's thread has accepted and recorded it.
        """
        with self.accepted:
            self.accepted.wait_for(lambda: len(self.records) >= count, timeout)
            return len(self.records)

    def wait_total(self, total: int, timeout: float = 5.0) -> list[int]:
        """Per-connection byte counts, once ``total`` bytes arrived in all (or at timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and sum(r.received for r in self.records) < total:
            time.sleep(0.01)
        return [r.received for r in self.records]

    def close(self) -> None:
        stop_listening(self.sock, self._acceptor)


@dataclass
class GuestResult:
    code: int
    stdout: str
    stderr: str
    raw_stdout: bytes


def run_guest(wasm: Path, *args: str, stdin: bytes = b"", **options: Any) -> GuestResult:
    out, err = wassh.Capture(), wassh.Capture()
    code = wassh.run_sync(wasm, [wasm.stem, *args], stdin=stdin, stdout=out, stderr=err, **options)
    return GuestResult(code, out.text(), err.text(), bytes(out.data))
