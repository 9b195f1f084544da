"""Guest servers reachable from the host: bind/listen/accept through transport_listen.

Every test runs a C guest built with the SDK against real loopback sockets; the
guest prints the port it was given and the test drives the host side.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio
from guestserver import guest_server
from suitekit import EchoServer, run_guest
from wassh import TransportConfig

WASSH = Path(sys.executable).parent / "wassh"


async def echo_client(port: int, payload: bytes) -> bytes:
    """Send ``payload`` while reading the echo, half-close, read to EOF."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    got = bytearray()
    async with stream:

        async def send() -> None:
            for off in range(0, len(payload), 16384):
                await stream.send_all(payload[off : off + 16384])
            await stream.send_eof()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send)
            while chunk := await stream.receive_some(65536):
                got += chunk
    return bytes(got)


@pytest.mark.parametrize("mode", ["echo", "echo-p1"])
async def test_echo_server_serves_100_concurrent_clients(netserver: Path, mode: str) -> None:
    clients = 100
    rng = random.Random(mode)
    payloads = [rng.randbytes(rng.randint(1, 150_000)) for _ in range(clients)]
    results: dict[int, bytes] = {}
    async with guest_server(netserver, mode, str(clients)) as guest:
        port = await guest.port()

        async def one(i: int) -> None:
            results[i] = await echo_client(port, payloads[i])

        async with trio.open_nursery() as nursery:
            for i in range(clients):
                nursery.start_soon(one, i)
        assert await guest.wait() == 0, guest.err.text()
    for i, payload in enumerate(payloads):
        assert results[i] == payload, f"client {i}: {len(results[i])} of {len(payload)} bytes"
    total = sum(map(len, payloads))
    # The listener is non-blocking and drained until EAGAIN after each poll wake-up.
    assert guest.out.lines()[-1] == f"served {clients} bytes {total} eagain yes"


async def test_port_forwarder_carries_64_mib_byte_exact(
    netserver: Path, echo_server: EchoServer
) -> None:
    """The shape of ``ssh -L``: host client -> guest listener -> guest connect -> host server."""
    total = 64 << 20
    payload = os.urandom(total)
    async with guest_server(netserver, "forward", "127.0.0.1", str(echo_server.port)) as guest:
        port = await guest.port()
        started = time.monotonic()
        got = await echo_client(port, payload)
        elapsed = time.monotonic() - started
        assert await guest.wait() == 0, guest.err.text()
    assert len(got) == total
    assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
    assert guest.out.lines()[-1] == f"forwarded up {total} down {total}"
    (rec,) = echo_server.records
    assert rec.received == total and rec.saw_eof
    assert rec.digest.digest() == hashlib.sha256(payload).digest()
    print(f"64 MiB each way through the guest forwarder in {elapsed:.2f} s")


def test_non_loopback_bind_is_refused_by_default(
    netserver: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="wassh.policy"):
        r = run_guest(netserver, "bind", "0.0.0.0", "0")
    assert r.stdout == "bind errno 2 Permission denied\n"
    refusals = [rec.getMessage() for rec in caplog.records if rec.name == "wassh.policy"]
    assert refusals == [
        "denied listen on 0.0.0.0:0: only loopback unless allowed with --listen-allow"
    ]


def test_wildcard_v6_is_refused_and_v6_loopback_allowed(netserver: Path) -> None:
    r = run_guest(netserver, "bind", "::", "0")
    assert r.stdout == "bind errno 2 Permission denied\n"
    r = run_guest(netserver, "echo", "0", "::1")
    assert r.stdout.startswith("port ") and r.stdout.endswith("served 0 bytes 0 eagain no\n")


async def _echo_through(netserver: Path, config: TransportConfig, host: str, port: int) -> str:
    async with guest_server(netserver, "bind", host, str(port), config=config) as guest:
        guest_port = await guest.port()
        assert await echo_client(guest_port, b"from the host") == b"from the host"
        assert await guest.wait() == 0
    return f"{guest_port}"


async def test_non_loopback_bind_allowed_when_configured(netserver: Path) -> None:
    config = TransportConfig(listen_allow=["0.0.0.0"])
    port = await _echo_through(netserver, config, "0.0.0.0", 0)
    assert int(port) > 0


async def test_listen_allow_with_a_port_allows_that_port_only(
    netserver: Path, closed_port: int
) -> None:
    config = TransportConfig(listen_allow=[f"0.0.0.0:{closed_port}"])
    assert await _echo_through(netserver, config, "0.0.0.0", closed_port) == str(closed_port)
    async with guest_server(netserver, "bind", "0.0.0.0", "0", config=config) as guest:
        assert await guest.wait() == 0
    assert guest.out.text() == "bind errno 2 Permission denied\n"


def test_listening_corner_cases(netserver: Path) -> None:
    r = run_guest(netserver, "checks")
    assert r.code == 0, r
    assert r.stdout.splitlines() == [
        "listen unbound -1 errno 28",  # EINVAL
        "bind 0",
        "reuseaddr 1",  # SO_REUSEADDR set before bind reached the listener
        "second bind -1 errno 28",
        "ephemeral yes",
        "accept before listen -1 errno 28",
        "busy port -1 errno 3",  # EADDRINUSE, at bind
        "accept nothing -1 errno 6",  # EAGAIN on a non-blocking listener
        "poll idle 0",
        "poll pending 1 revents IN",
        "accepted in order yes",
        "accepted blocking yes",
        "nodelay set 0",
        "nodelay get 1",
        "peer matches yes",
        "read 5 then 0",
        "half-closed client got world",
        "bound connect 0 from its port yes",
        "listen udp -1 errno 58",  # EOPNOTSUPP, as Linux
    ]


def test_ipv6_only_is_applied_to_listeners(netserver: Path, closed_port: int) -> None:
    config = TransportConfig(listen_allow=["0.0.0.0", "[::]"])
    r = run_guest(netserver, "v6only", str(closed_port), config=config)
    assert r.stdout.splitlines() == [
        "v6only set 0",
        "bind :: 0",
        "v6only get 1",
        "bind 0.0.0.0 0",  # a v6-only listener leaves the IPv4 port free
        "bind :: dual 0",
        "bind 0.0.0.0 again -1 errno 3",  # a dual-stack one does not
    ]


def test_blocking_listen_plugin_gives_enotsup_at_bind(netserver: Path) -> None:
    r = run_guest(netserver, "bind", "127.0.0.1", "0", block=["listen"])
    assert r.stdout == "bind errno 58 Not supported\n"


def test_cli_lists_what_each_transport_serves() -> None:
    out = subprocess.run(
        [str(WASSH), "transports", "--json"], capture_output=True, text=True, check=True
    )
    rows = {row["name"]: row for row in json.loads(out.stdout)["transports"]}
    assert rows["listen"]["kinds"] == ["listen"]
    assert rows["udp"]["kinds"] == ["dgram"]
    assert rows["unix"]["kinds"] == ["unix"]
    assert {rows[n]["plugin"] for n in ("listen", "udp", "unix")} == {"listen"}
    text = subprocess.run(
        [str(WASSH), "transports"], capture_output=True, text=True, check=True
    ).stdout
    assert any(line.startswith("udp") and "datagram" in line for line in text.splitlines())


def test_cli_listen_allow(netserver: Path) -> None:
    proc = subprocess.Popen(
        [str(WASSH), "run", "--listen-allow", "0.0.0.0", str(netserver), "bind", "0.0.0.0", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        if not line.startswith("port "):
            proc.kill()
            raise AssertionError(f"{line!r}; stderr: {proc.communicate()[1]!r}")
        with socket.create_connection(("127.0.0.1", int(line.split()[1])), timeout=10) as conn:
            conn.sendall(b"cli")
            conn.shutdown(socket.SHUT_WR)
            assert conn.recv(100) == b"cli"
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()


def test_readme_echo_server_example() -> None:
    """README "A guest server reachable from the host": the example, run as shown."""
    from guestbuild import build_guest

    wasm = build_guest(Path(__file__).parent.parent / "examples" / "echo_server.c", sdk=True)
    proc = subprocess.Popen(
        [str(WASSH), "run", str(wasm), "--", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        if not line.startswith("listening on 127.0.0.1 port "):
            proc.kill()
            raise AssertionError(f"{line!r}; stderr: {proc.communicate()[1]!r}")
        port = int(line.split()[-1])
        first = socket.create_connection(("127.0.0.1", port), timeout=10)
        second = socket.create_connection(("127.0.0.1", port), timeout=10)
        for conn, text in ((second, b"two\n"), (first, b"one\n"), (second, b"again\n")):
            conn.sendall(text)
            assert conn.recv(100) == text
        first.close()
        second.close()
    finally:
        proc.kill()
        proc.wait()
