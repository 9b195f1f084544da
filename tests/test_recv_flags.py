"""recv flags through the SDK (MSG_PEEK, MSG_WAITALL, MSG_DONTWAIT, MSG_TRUNC) and the
poll readiness of sockets that are not connected, held to what Linux does."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import wasmtime
import wassh
from guestbuild import build_guest
from suitekit import GUESTS, run_guest, stop_listening
from wassh.engine import get_engine
from wassh.signals import SignalAction


@pytest.fixture(scope="session")
def recvflags() -> Path:
    return build_guest(GUESTS / "net" / "recvflags.c", sdk=True)


class ScriptedServer:
    """One TCP connection on loopback, answering command bytes (see recvflags.c)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self._acceptor = threading.Thread(target=self._serve, daemon=True)
        self._acceptor.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            while command := conn.recv(1):
                if command == b"h":
                    conn.sendall(b"hello")
                elif command == b"w":
                    conn.sendall(b"abc")
                    time.sleep(0.3)
                    conn.sendall(b"defgh")
                elif command == b"t":
                    conn.sendall(b"0123456789")

    def close(self) -> None:
        stop_listening(self.sock, self._acceptor)


class UdpEcho:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self._acceptor = threading.Thread(target=self._serve, daemon=True)
        self._acceptor.start()

    def _serve(self) -> None:
        while True:
            try:
                data, source = self.sock.recvfrom(65536)
                if source is None:  # woken by stop_listening's shutdown
                    return
                self.sock.sendto(data, source)
            except OSError:
                return

    def close(self) -> None:
        stop_listening(self.sock, self._acceptor)


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    yield server
    server.close()


@pytest.fixture
def udp_echo() -> Iterator[UdpEcho]:
    server = UdpEcho()
    yield server
    server.close()


def test_stream_flags(recvflags: Path, scripted: ScriptedServer) -> None:
    r = run_guest(recvflags, "tcp", str(scripted.port))
    assert r.code == 0, r
    assert r.stdout.splitlines() == [
        "peek-dontwait-empty -1 EAGAIN",
        "dontwait-empty -1 EAGAIN",
        "peek 5 hello",
        f"peek-again 5 hello from 127.0.0.1 {scripted.port}",
        "poll-after-peek 1 IN",
        "read 5 hello",  # the peeked bytes were still there
        "recvmsg-peek 5 he|llo flags 0",
        "read 5 hello",
        "waitall 8 abcdefgh waited yes",
        "peek-waitall 8 abcdefgh waited yes",
        "read 8 abcdefgh",
        "waitall-dontwait 3 abc",  # MSG_DONTWAIT wins: what is there
        "rest 5 defgh",
        "tcp-trunc 4 ....",  # TCP's MSG_TRUNC discards: the buffer is untouched
        "read 6 456789",
        "tcp-recvmsg-trunc 5 ..|... flags 0",
        "read 5 56789",
        "unknown-flag -1 EINVAL",
    ]


def test_datagram_flags(recvflags: Path, udp_echo: UdpEcho) -> None:
    r = run_guest(recvflags, "udp", str(udp_echo.port))
    assert r.code == 0, r
    source = f"127.0.0.1 {udp_echo.port}"
    assert r.stdout.splitlines() == [
        "unknown-flag -1 EINVAL",
        f"peek 4 0123 from {source}",
        f"then 10 0123456789 from {source}",  # the peeked datagram stayed, whole
        "peek-dontwait-empty -1 EAGAIN",
        "trunc 10 0123",  # the real length; only what fits is copied
        "peek-trunc 10 0123",
        "then 10 0123456789",
        f"recvmsg 4 0123 MSG_TRUNC from {source}",
        "then 4 next",  # the rest of the truncated datagram was dropped
        "recvmsg-peek-iov 5 01|234 MSG_TRUNC",
        "recvmsg-trunc-flag 10 01|234 MSG_TRUNC",  # MSG_TRUNC asked: the real length
        "recvmsg-fits 4 fits flags 0",
        "waitall 10 0123456789",  # one datagram: MSG_WAITALL does not join them
    ]


def _names(revents: int) -> str:
    names = [
        name
        for bit, name in (
            (select.POLLIN, "IN"),
            (select.POLLOUT, "OUT"),
            (select.POLLERR, "ERR"),
            (select.POLLHUP, "HUP"),
            (select.POLLNVAL, "NVAL"),
        )
        if revents & bit
    ]
    return " ".join([str(1 if names else 0), *names])


def _native_fresh() -> list[str]:
    """What this machine's kernel reports for the guest's ``fresh`` checks."""
    lines = []
    for name, family, kind in [
        ("inet-stream", socket.AF_INET, socket.SOCK_STREAM),
        ("inet6-stream", socket.AF_INET6, socket.SOCK_STREAM),
        ("inet-dgram", socket.AF_INET, socket.SOCK_DGRAM),
        ("inet6-dgram", socket.AF_INET6, socket.SOCK_DGRAM),
    ]:
        with socket.socket(family, kind) as s:
            for which, events in [
                ("in", select.POLLIN),
                ("out", select.POLLOUT),
                ("inout", select.POLLIN | select.POLLOUT),
            ]:
                poller = select.poll()
                poller.register(s, events)
                ready = poller.poll(0)
                lines.append(f"fresh {name} {which} {_names(ready[0][1] if ready else 0)}")
    return lines


def test_poll_on_fresh_sockets_matches_linux(recvflags: Path) -> None:
    native = _native_fresh()
    # What Linux answers (a stream socket hangs up, a datagram one only writes):
    assert native[:3] == [
        "fresh inet-stream in 1 HUP",
        "fresh inet-stream out 1 OUT HUP",
        "fresh inet-stream inout 1 OUT HUP",
    ]
    assert native[6:9] == [
        "fresh inet-dgram in 0",
        "fresh inet-dgram out 1 OUT",
        "fresh inet-dgram inout 1 OUT",
    ]
    r = run_guest(recvflags, "fresh")
    assert r.code == 0, r
    assert r.stdout.splitlines() == native


def test_unbound_datagram_socket_is_never_readable(recvflags: Path) -> None:
    r = run_guest(recvflags, "unbound")
    assert r.code == 0, r
    assert r.stdout.splitlines() == [
        "unbound-in 0 waited 200ms",
        "unbound-inout 1 OUT",
        "unbound-beside 1: / OUT",
    ]


def test_unbound_datagram_poll_without_timeout_waits_for_a_signal(recvflags: Path) -> None:
    out = wassh.Capture()
    proc = wassh.prepare(recvflags, ["recvflags", "forever"], stdout=out)
    actions: list[SignalAction] = []

    def later() -> None:
        while b"ready" not in out.data:
            time.sleep(0.01)
        time.sleep(0.3)
        actions.append(proc.send_signal(15))

    sender = threading.Thread(target=later, daemon=True)
    sender.start()
    assert proc.run() == 0
    # The guest can take the signal and exit before send_signal's answer is stored.
    sender.join(timeout=60)
    assert actions == [SignalAction.QUEUED]
    assert out.text().splitlines() == ["ready", "forever -1 EINTR caught 15 after the signal"]


# sock_recvfrom straight from a guest, under both import modules: the flag bits the
# host takes (the SDK's numbers), and every other bit refused.
RECV_WAT = """
(module
  (import "wassh_experimental" "sock_create"
    (func $create (param i32 i32 i32 i32) (result i32)))
  (import "wassh_experimental" "sock_recvfrom"
    (func $old (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wassh" "sock_recvfrom"
    (func $new (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "socket") (result i32)
    (drop (call $create (i32.const 128) (i32.const 1) (i32.const 6) (i32.const 0)))
    (i32.load (i32.const 128)))
  (func (export "old") (param $fd i32) (param $flags i32) (result i32)
    (call $old (local.get $fd) (i32.const 1024) (i32.const 16) (i32.const 132)
      (local.get $flags) (i32.const 0) (i32.const 0) (i32.const 0)))
  (func (export "new") (param $fd i32) (param $flags i32) (result i32)
    (call $new (local.get $fd) (i32.const 1024) (i32.const 16) (i32.const 132)
      (local.get $flags) (i32.const 0) (i32.const 0) (i32.const 0)))
  (func (export "_start"))
)
"""


@pytest.mark.parametrize("module", ["old", "new"])
def test_host_recv_flag_bits(module: str) -> None:
    proc = wassh.prepare(wasmtime.Module(get_engine(), RECV_WAT), ["abi"], stdout=wassh.Capture())
    try:
        fd = proc.call("socket")
        # a stream socket that is not connected: known flags get as far as ENOTCONN
        for flags in (0, 0x1, 0x2, 0x20, 0x40, 0x63):
            assert proc.call(module, fd, flags) == wassh.Errno.ENOTCONN, hex(flags)
        for flags in (0x4, 0x8, 0x10, 0x80, 0x100, 0x4000, 0x80000000, 0xFFFFFFFF):
            assert proc.call(module, fd, flags) == wassh.Errno.EINVAL, hex(flags)
    finally:
        proc.close()
