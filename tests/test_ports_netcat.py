"""The classic netcat (Debian's netcat 1.10-47), unmodified, both directions.

netcat is select() over a socket and stdin, alarm() with sigsetjmp/siglongjmp for
its timeouts, getservbyport and gethostbyaddr for its verbose lines. Its peers
here are plain Python sockets on loopback, and Debian's native netcat is the
reference for the verbose lines and exit codes.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from portkit import (
    RUN_TIMEOUT,
    accepts,
    build,
    free_port,
    listening,
    run_guest,
    run_native,
    wait_until,
)
from sshkit import WASSH

pytestmark = pytest.mark.ports

NATIVE = "nc.traditional"


@pytest.fixture(scope="module")
def nc() -> Path:
    return build("netcat")["nc"]


class OneShotServer:
    """Accepts one connection, reads ``expect`` bytes, answers ``reply`` and closes."""

    def __init__(self, expect: int, reply: bytes) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.expect = expect
        self.reply = reply
        self.received = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(RUN_TIMEOUT)
        conn, _ = self.sock.accept()
        with conn:
            while len(self.received) < self.expect:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                self.received += chunk
            conn.sendall(self.reply)
        self.sock.close()


def test_client_sends_and_receives(nc: Path) -> None:
    data = os.urandom(1 << 20)
    reply = os.urandom(300_000)
    server = OneShotServer(len(data), reply)
    r = run_guest(nc, "127.0.0.1", str(server.port), stdin=data)
    server.thread.join(RUN_TIMEOUT)
    assert server.received == data
    assert r.stdout == reply
    assert r.returncode == 0, r.stderr.decode(errors="replace")


def test_listener_receives_from_a_native_client(nc: Path) -> None:
    port = free_port()
    payload = os.urandom(500_000)
    guest = subprocess.Popen(
        [*WASSH, "run", str(nc), "-l", "-s", "127.0.0.1", "-p", str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: listening(port), f"nc -l on port {port}", timeout=30)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(payload)
        out, err = guest.communicate(timeout=RUN_TIMEOUT)
    finally:
        if guest.poll() is None:
            guest.kill()
            guest.wait()
    assert out == payload, err.decode(errors="replace")


def test_listener_answers_a_native_client(nc: Path) -> None:
    """What the guest reads on stdin goes to the client that connected."""
    port = free_port()
    answer = b"from the guest\n" * 1000
    guest = subprocess.Popen(
        [*WASSH, "run", str(nc), "-q", "0", "-l", "-s", "127.0.0.1", "-p", str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: listening(port), f"nc -l on port {port}", timeout=30)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            assert guest.stdin is not None
            guest.stdin.write(answer)
            guest.stdin.close()
            got = b""
            while chunk := s.recv(65536):
                got += chunk
        guest.wait(RUN_TIMEOUT)
    finally:
        if guest.poll() is None:
            guest.kill()
            guest.wait()
    assert got == answer


def test_verbose_scan_matches_native(nc: Path) -> None:
    """-z -v -n: an open port and a refused one get native netcat's lines (the
    errno text, the service name from getservbyport) and exit codes."""
    with socket.create_server(("127.0.0.1", 0)) as open_sock:
        open_port = open_sock.getsockname()[1]
        # 7 (echo): a named service nothing listens on here
        assert not accepts(7)
        for port in (open_port, 7):
            args = ("-n", "-v", "-z", "127.0.0.1", str(port))
            guest = run_guest(nc, *args)
            native = run_native(NATIVE, *args)
            assert guest.stderr == native.stderr, port
            assert guest.returncode == native.returncode, port
    assert native.stderr == b"(UNKNOWN) [127.0.0.1] 7 (echo) : Connection refused\n"


# wasi-libc's strerror words a few errors differently from glibc's
STRERROR_AS_GLIBC = {b"Operation timed out": b"Connection timed out"}


def as_glibc(line: bytes) -> bytes:
    for ours, glibc in STRERROR_AS_GLIBC.items():
        line = line.replace(ours, glibc)
    return line


def test_listen_timeout_uses_alarm(nc: Path) -> None:
    """-w 1 with nobody connecting: netcat's alarm() fires, its handler
    longjmps out of the blocked accept, and it exits as the native one does."""
    args = ("-v", "-w", "1", "-s", "127.0.0.1", "-l", "-p", str(free_port()))
    t0 = time.monotonic()
    guest = run_guest(nc, *args)
    took = time.monotonic() - t0
    native = run_native(NATIVE, *args)
    assert guest.returncode == native.returncode == 1
    assert as_glibc(guest.stderr) == native.stderr
    assert native.stderr.endswith(b"no connection : Connection timed out\n")
    assert 1 <= took < 10


def test_udp_datagram(nc: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(RUN_TIMEOUT)
        port = rx.getsockname()[1]
        r = run_guest(nc, "-u", "-q", "0", "127.0.0.1", str(port), stdin=b"one datagram\n")
        data, _ = rx.recvfrom(2048)
    assert data == b"one datagram\n"
    assert r.returncode == 0, r.stderr.decode(errors="replace")


def test_quit_a_delay_after_the_end_of_input(nc: Path) -> None:
    """``-q 1``: the end of stdin arms alarm(1), whose handler (defined K&R-style,
    without parameters) ends netcat with 0 while the peer keeps the connection open."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = str(server.getsockname()[1])
        held: list[socket.socket] = []
        accepting = threading.Thread(
            target=lambda: [held.append(server.accept()[0]) for _ in range(2)], daemon=True
        )
        accepting.start()
        results = []
        for run in (
            lambda: run_native(NATIVE, "-q", "1", "127.0.0.1", port, stdin=b"hello\n"),
            lambda: run_guest(nc, "-q", "1", "127.0.0.1", port, stdin=b"hello\n"),
        ):
            start = time.monotonic()
            r = run()
            results.append((r.returncode, time.monotonic() - start, r.stderr))
        accepting.join(RUN_TIMEOUT)
        for conn in held:
            assert conn.recv(64) == b"hello\n"
            conn.close()
    (native_code, native_took, _), (code, took, err) = results
    assert native_code == code == 0, err.decode(errors="replace")
    assert native_took >= 0.9 and 0.9 <= took < 10
