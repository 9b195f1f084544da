"""Socket errno and options as Linux gives them: each guest program here is also
built natively with gcc, and the two runs must print the same lines."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from guestbuild import build_guest
from nativebuild import build_native, run_native
from suitekit import GUESTS, LoopbackServer, run_guest

POSIX = GUESTS / "posix"


def _both(name: str) -> tuple[Path, Path]:
    src = POSIX / f"{name}.c"
    return build_guest(src, sdk=True), build_native(src)


def test_socket_calls_and_options_answer_as_on_linux() -> None:
    """socket() protocols, addresses of the wrong family, listen on UDP, a recv on
    an unbound UDP socket, and the IP/TCP/socket options (IP_TOS and IPV6_TCLASS
    across families, SO_SNDBUF/SO_RCVBUF doubled and bounded, TCP keepalive
    tuning, TCP_MAXSEG) before and after connecting."""
    wasm, native = _both("sockerrno")
    expected = run_native(native)
    # The lines the issue names, so a change in the reference is noticed too.
    for line in (
        "socket inet stream udp: EPROTONOSUPPORT",
        "tcp4 connect sockaddr_in6: EAFNOSUPPORT",
        "udp listen bound: EOPNOTSUPP",
        "udp recv unbound dontwait: EAGAIN",
        "tcp6 IP_TOS set 16: ok",
        "tcp4 SO_SNDBUF get: 131072",
    ):
        assert line in expected.splitlines()
    r = run_guest(wasm)
    assert r.code == 0, r.stderr
    assert r.stdout.splitlines() == expected.splitlines()


class ResettingServer(LoopbackServer):
    """Resets each connection at once (SO_LINGER 0, then close)."""

    def handle(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()


@pytest.fixture
def resetting_server() -> Iterator[ResettingServer]:
    server = ResettingServer()
    yield server
    server.close()


def test_connect_to_a_peer_that_resets_at_once_succeeds_and_the_reset_comes_next(
    resetting_server: ResettingServer,
) -> None:
    """Blocking connect returns 0; the next recv is ECONNRESET, then end of
    stream, then a send is EPIPE: every one of 200 rounds, as natively."""
    wasm, native = _both("connreset")
    port = str(resetting_server.port)
    expected = "200 x connect 0, recv ECONNRESET, recv 0, send EPIPE\n"
    assert run_native(native, port, "200") == expected
    r = run_guest(wasm, port, "200")
    assert r.code == 0, r.stderr
    assert r.stdout == expected


def test_recv_on_an_unbound_udp_socket_blocks_until_a_signal() -> None:
    """Nothing can reach a UDP socket without an address: recv waits, and
    SIGALRM's handler ends it with EINTR (not ENOTCONN at once)."""
    wasm, native = _both("udpblock")
    expected = "recv -1 EINTR, alarm rang\n"
    assert run_native(native) == expected
    r = run_guest(wasm)
    assert r.code == 0, r.stderr
    assert r.stdout == expected


def test_receive_and_send_timeouts_as_on_linux() -> None:
    """SO_RCVTIMEO ends recv, read, MSG_PEEK, MSG_WAITALL (with what came),
    accept and an unbound UDP recv with EAGAIN; SO_SNDTIMEO ends a send into a
    full pipe with a partial count and a connect to a full queue with
    EINPROGRESS; out-of-range microseconds are EDOM."""
    wasm, native = _both("sotimeo")
    expected = run_native(native)
    assert "send into a full pipe: partial, waited enough yes" in expected.splitlines()
    r = run_guest(wasm)
    assert r.code == 0, r.stderr
    assert r.stdout.splitlines() == expected.splitlines()


def test_so_linger_zero_set_before_connect_resets_on_close() -> None:
    """SO_LINGER {1, 0} set before the socket has a transport reaches the OS
    socket: the guest's close is a reset the peer sees."""
    wasm = build_guest(POSIX / "lingerclose.c", sdk=True)
    with socket.create_server(("127.0.0.1", 0)) as server:
        outcome: list[str] = []

        def serve() -> None:
            conn, _ = server.accept()
            with conn:
                conn.sendall(conn.recv(1))
                try:
                    outcome.append(f"read {conn.recv(1)!r}")
                except ConnectionResetError:
                    outcome.append("reset")

        peer = threading.Thread(target=serve)
        peer.start()
        r = run_guest(wasm, str(server.getsockname()[1]))
        peer.join(timeout=30)
    assert r.stdout == "closed\n", r.stderr
    assert outcome == ["reset"]


def test_connect_called_again_answers_as_on_linux() -> None:
    """A second connect: 0 once for a non-blocking connect that finished, then
    EISCONN; the refusal itself for a refused one; EALREADY while under way,
    and a blocking one waits for it (here until SO_SNDTIMEO)."""
    wasm, native = _both("connagain")
    expected = run_native(native)
    assert "again once done: 0" in expected.splitlines()
    r = run_guest(wasm)
    assert r.code == 0, r.stderr
    assert r.stdout.splitlines() == expected.splitlines()


def test_socketpair_as_on_linux() -> None:
    """AF_UNIX stream and datagram pairs carry data both ways (boundaries kept),
    poll, shutdown and a closed peer as on Linux; other families are refused."""
    wasm, native = _both("sockpair")
    expected = run_native(native)
    assert "inet pair: EOPNOTSUPP" in expected.splitlines()
    r = run_guest(wasm)
    assert r.code == 0, r.stderr
    assert r.stdout.splitlines() == expected.splitlines()


class CountingServer(LoopbackServer):
    """Reads each connection to its end, then answers ``got N`` and closes."""

    def handle(self, conn: socket.socket) -> None:
        with conn:
            total = 0
            while chunk := conn.recv(4096):
                total += len(chunk)
            conn.sendall(b"got %d\n" % total)


def test_shutdown_takes_linuxs_numbers_and_the_reply_after_a_half_close_arrives() -> None:
    """SHUT_WR is 1 as on Linux, so ``shutdown(fd, 1)`` in older code ends the
    writing half (it ended the reading half, and the reply was lost)."""
    wasm, native = _both("halfclose")
    server = CountingServer()
    try:
        expected = run_native(native, str(server.port))
        assert "literal 1: shutdown 0, reply got 6" in expected.splitlines()
        r = run_guest(wasm, str(server.port))
        assert r.code == 0, r.stderr
        assert r.stdout.splitlines() == expected.splitlines()
    finally:
        server.close()


class StallingServer(LoopbackServer):
    """Sends 4 bytes on its first connection and then nothing; reads nothing on the
    second; holds both open until closed."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def handle(self, conn: socket.socket) -> None:
        with self._lock:  # the client dials the second only after the first's recv
            first = not self.kept
            self.kept.append(conn)
        if first:
            conn.sendall(b"four")


@pytest.mark.parametrize("round_", range(2))
def test_a_signal_after_some_bytes_moved_returns_the_count(round_: int) -> None:
    """recv(MSG_WAITALL) with 4 of 10 bytes and a send of 64 MiB into a peer that
    reads nothing, each ended by SIGALRM (no SA_RESTART): the count so far, as natively."""
    wasm, native = _both("partialintr")
    expected = "recv waitall: 4\nsend: a partial count\n"
    for program, run in ((native, run_native), (wasm, None)):
        server = StallingServer()
        try:
            if run is not None:
                assert run(program, str(server.port)) == expected
            else:
                r = run_guest(program, str(server.port))
                assert r.code == 0, r.stderr
                assert r.stdout == expected
        finally:
            server.close()
