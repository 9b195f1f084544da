"""UDP guests through transport_listen: real source addresses, whole datagrams."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import trio
from guestserver import guest_server
from suitekit import run_guest
from wassh import TransportConfig

MAX_UDP = 65507


def _sizes(count: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    edges = [0, 1, 2, 3, 4, 5, 1472, 1473, 8192, MAX_UDP]
    out = []
    for i in range(count):
        roll = rng.random()
        if i < len(edges):
            out.append(edges[i])
        elif roll < 0.70:
            out.append(rng.randint(0, 1500))
        elif roll < 0.95:
            out.append(rng.randint(1501, 9000))
        else:
            out.append(rng.randint(9001, MAX_UDP))
    return out


def _datagram(seq: int, size: int, pool: bytes) -> bytes:
    head = seq.to_bytes(4, "big")[:size]
    start = (seq * 7919) % (len(pool) - MAX_UDP)
    return head + pool[start : start + size - len(head)]


def _exchange(
    sock: socket.socket, guest: tuple[str, int], seqs: range, sizes: list[int], pool: bytes
) -> None:
    """Send datagrams with a small window in flight; every reply must match exactly."""
    budget = 64 * 1024  # bytes in flight: well inside the receive buffers, so none is dropped
    pending: list[bytes] = []
    in_flight = 0
    order = list(seqs)
    sent = 0
    while sent < len(order) or pending:
        while sent < len(order) and len(pending) < 16:
            data = _datagram(order[sent], sizes[order[sent]], pool)
            if pending and in_flight + len(data) > budget:
                break
            sock.sendto(data, guest)
            pending.append(data)
            in_flight += len(data)
            sent += 1
        reply, source = sock.recvfrom(MAX_UDP + 1)
        want = pending.pop(0)
        in_flight -= len(want)
        assert source == guest
        assert len(reply) == len(want), f"datagram merged or split: {len(reply)} != {len(want)}"
        assert reply == want


async def test_udp_echo_10000_mixed_datagrams_with_sources(netserver: Path) -> None:
    count, tail = 10_000, 10
    sizes = _sizes(count, 42)
    pool = random.Random(7).randbytes(1 << 17)
    one = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    two = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for s in (one, two):
        s.bind(("127.0.0.1", 0))
        s.settimeout(20)
    async with guest_server(netserver, "udp-echo", str(count)) as guest:
        address = ("127.0.0.1", await guest.port())
        await trio.to_thread.run_sync(_exchange, one, address, range(count - tail), sizes, pool)
        # A second sender: the guest answers to wherever each datagram came from.
        await trio.to_thread.run_sync(
            _exchange, two, address, range(count - tail, count), sizes, pool
        )
        assert await guest.wait() == 0, guest.err.text()
    assert guest.out.lines() == [
        f"port {address[1]}",
        f"first from 127.0.0.1 {one.getsockname()[1]}",
        f"also from 127.0.0.1 {two.getsockname()[1]}",
        f"echoed {count}",
    ]
    one.close()
    two.close()


async def test_udp_echo_over_ipv6(netserver: Path) -> None:
    count = 200
    sizes = _sizes(count, 6)
    pool = random.Random(6).randbytes(1 << 17)
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as host:
        host.bind(("::1", 0))
        host.settimeout(20)
        async with guest_server(netserver, "udp-echo", str(count), "::1") as guest:
            port = await guest.port()
            await trio.to_thread.run_sync(_exchange6, host, port, range(count), sizes, pool)
            assert await guest.wait() == 0, guest.err.text()
        assert guest.out.lines()[1] == f"first from ::1 {host.getsockname()[1]}"


def _exchange6(sock: socket.socket, port: int, seqs: range, sizes: list[int], pool: bytes) -> None:
    for seq in seqs:
        data = _datagram(seq, sizes[seq], pool)
        sock.sendto(data, ("::1", port))
        reply, source = sock.recvfrom(MAX_UDP + 1)
        assert source[:2] == ("::1", port)
        assert reply == data


def test_udp_semantics(netserver: Path) -> None:
    r = run_guest(netserver, "udp-checks")
    assert r.code == 0, r
    assert r.stdout.splitlines() == [
        "write unconnected -1 errno 17",  # EDESTADDRREQ
        "dontwait empty -1 errno 6",  # EAGAIN
        "poll empty 0",
        "poll ready 1 revents IN",
        "truncated 4 0123 from b yes",  # the rest of that datagram is dropped
        "next 3 abc",
        "empty datagram 0",
        "readv 11 hello| world",  # one datagram scattered over two buffers
        "after readv 6 second",
        "connect 0",
        "connected got from-b",  # c's datagram was filtered out by the default peer
        "connected then -1 errno 6",
        "send 5",
        "write 5",
        "b got reply from a yes",
        "b got again",
        "peer is b yes",
        "sendto unbound 4",
        "auto port yes",
        "b got auto from port right",
        "so_type 5",
    ]


def test_udp_bind_policy(netserver: Path, closed_port: int) -> None:
    """Port 0 on the wildcard is what a first sendto binds anyway; a fixed port is a server."""
    assert run_guest(netserver, "udp-bind", "0.0.0.0", "0").stdout == "bind 0 errno 0\n"
    assert run_guest(netserver, "udp-bind", "127.0.0.1", str(closed_port)).stdout == (
        "bind 0 errno 0\n"
    )
    port = str(closed_port)
    assert run_guest(netserver, "udp-bind", "0.0.0.0", port).stdout == "bind -1 errno 2\n"
    allowed = TransportConfig(listen_allow=[f"0.0.0.0:{port}"])
    r = run_guest(netserver, "udp-bind", "0.0.0.0", port, config=allowed)
    assert r.stdout == "bind 0 errno 0\n"


def test_no_udp_transport_means_no_udp_socket(netserver: Path) -> None:
    r = run_guest(netserver, "udp-checks", block=["listen"])
    assert r.stdout == "socket: errno 66 Protocol not supported\n"
