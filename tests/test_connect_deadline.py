"""The connect timeout holds for every connect, blocking or not, whatever the transport."""

from __future__ import annotations

import select
import socket
import time
from pathlib import Path
from typing import ClassVar

from suitekit import run_guest
from wassh import STREAM, Offer, SocketHandle, TransportConfig, hookimpl, os_socket


class Blackhole(os_socket.OSSocketHooks[socket.socket]):
    """A transport whose connects never finish and whose handle never wakes (a peer
    that swallows SYNs, a proxy that never answers): only the deadline ends them."""

    name = "blackhole"
    pairs: ClassVar[list[socket.socket]] = []

    @hookimpl
    def wassh_transport_offer(self) -> Offer:
        return Offer("blackhole", frozenset({STREAM}), rank=999)

    @hookimpl
    def wassh_sock_connect(self, sock: SocketHandle[socket.socket], host: str, port: int) -> bool:
        ours, theirs = socket.socketpair()
        Blackhole.pairs.append(theirs)  # kept open: ``ours`` never becomes readable
        sock.state = ours
        return False

    @hookimpl
    def wassh_sock_connect_check(self, sock: SocketHandle[socket.socket]) -> bool:
        return False

    @hookimpl
    def wassh_sock_poll_handle(
        self, sock: SocketHandle[socket.socket], write: bool
    ) -> tuple[int, int]:
        return sock.state.fileno(), select.POLLIN


def config(seconds: float) -> TransportConfig:
    return TransportConfig(connect_timeout=seconds)


def test_a_blocking_connect_ends_at_the_deadline(netclient: Path) -> None:
    start = time.monotonic()
    r = run_guest(
        netclient, "connect-errno", "nowhere.test", "9", plugins=[Blackhole], config=config(0.5)
    )
    took = time.monotonic() - start
    assert r.stdout.splitlines()[-1] == "errno 73 Operation timed out", r
    assert took < 10, took


def test_a_nonblocking_connect_ends_at_the_deadline(netclient: Path) -> None:
    """poll wakes at the connect deadline (the guest asked for 5 s) and SO_ERROR says
    why, as the kernel reports a non-blocking connect whose SYNs went unanswered."""
    start = time.monotonic()
    r = run_guest(
        netclient, "nbconnect", "nowhere.test", "9", plugins=[Blackhole], config=config(0.5)
    )
    took = time.monotonic() - start
    lines = r.stdout.splitlines()
    assert lines[-4:-1] == [
        "poll 1 revents OUT",
        "so_error 73 Operation timed out",
        "so_error again 0",
    ], r
    assert took < 4, f"poll waited for its own timeout ({took:.1f} s), not the deadline"


def test_a_nonblocking_connect_that_succeeds_is_not_cut_short(
    netclient: Path, echo_server: object
) -> None:
    from suitekit import EchoServer

    assert isinstance(echo_server, EchoServer)
    r = run_guest(netclient, "nbconnect", "127.0.0.1", str(echo_server.port), config=config(0.5))
    assert r.stdout.splitlines()[-4:] == [
        "poll 1 revents OUT",
        "so_error 0 ok",
        "so_error again 0",
        "send 1",
    ]
