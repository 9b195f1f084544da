"""wassh.testing's conformance suite against the project's own transports.

tcp (stream), listen (listening TCP and UDP), websocket through `wassh relay`
(corp-relay-v4) and through the real websockify; the fourth, proxy, runs it
through danted and tinyproxy in plugins/transport_proxy/tests/test_proxy_conformance.py.
Every bug the kit found (in the relay plugin, the SDK and the core) is fixed;
the last cases pin what it found in the core itself, and show that the kit
catches broken transports.
"""

from __future__ import annotations

import errno
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from relayhelpers import BIN, RelayProcess, free_port, relay_config, wait_listening
from wassh import SocketHandle, TransportConfig, hookimpl
from wassh.testing import (
    Capabilities,
    ConformanceFailure,
    ConnectFailure,
    DatagramConformance,
    Endpoint,
    Kit,
    ListenConformance,
    PeerServer,
    StreamConformance,
    TransportUnderTest,
    UdpEchoServer,
)
from wassh_transport_tcp import TcpTransport

pytest_plugins = ["wassh.testing"]


# -- tcp and listen: installed entry points, nothing to configure ------------------------------


class TestTcp(StreamConformance):
    transport = TransportUnderTest(name="tcp")


class TestListen(ListenConformance):
    transport = TransportUnderTest(name="listen")


class TestUdp(DatagramConformance):
    transport = TransportUnderTest(name="listen")


# -- websocket: through `wassh relay` (corp-relay-v4) and the real websockify ----------------


@pytest.fixture(scope="class")
def wassh_relay() -> Iterator[RelayProcess]:
    relay = RelayProcess("--allow", "127.0.0.1", "--allow", "[::1]", "--allow", "224.0.0.1")
    yield relay
    relay.close()


class TestWebsocketWasshRelay(StreamConformance):
    @pytest.fixture
    def wassh_transport(self, wassh_relay: RelayProcess) -> TransportUnderTest:
        url = f"ws://127.0.0.1:{wassh_relay.port}/"
        return TransportUnderTest(
            name="websocket",
            config_for=lambda ep: relay_config(url, "corp-relay-v4", claim="all"),
            expects=Capabilities(
                # corp-relay-v4 has one answer for every destination it cannot reach
                unreachable=ConnectFailure(errno.ECONNREFUSED),
                local_address=False,  # the connection's local end is on the relay
            ),
        )


class Websockify:
    """The real websockify, one process per destination (its target is fixed)."""

    def __init__(self) -> None:
        self.procs: dict[tuple[str, int], tuple[subprocess.Popen[bytes], int]] = {}

    def url_for(self, host: str, port: int) -> str:
        if (host, port) not in self.procs:
            listen = free_port()
            target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            proc = subprocess.Popen(
                [str(BIN / "websockify"), f"127.0.0.1:{listen}", target],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.procs[(host, port)] = (proc, listen)
            wait_listening(listen)
        return f"ws://127.0.0.1:{self.procs[(host, port)][1]}"

    def close(self) -> None:
        for proc, _ in self.procs.values():
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="class")
def websockify() -> Iterator[Websockify]:
    servers = Websockify()
    yield servers
    servers.close()


class TestWebsocketWebsockify(StreamConformance):
    @pytest.fixture
    def wassh_transport(self, websockify: Websockify) -> TransportUnderTest:
        def config_for(ep: Endpoint) -> TransportConfig:
            return relay_config(websockify.url_for(ep.host, ep.port), "websockify", claim="all")

        return TransportUnderTest(
            name="websocket",
            config_for=config_for,
            expects=Capabilities(
                half_close=False,  # the websockify protocol has no half-close
                # websockify accepts the WebSocket, then closes it (1011) when its
                # target fails, whatever the reason
                refused=ConnectFailure(errno.ECONNREFUSED, "io"),
                unreachable=ConnectFailure(errno.ECONNREFUSED, "io"),
                local_address=False,
                backpressure=False,  # websockify queues what its target does not read
            ),
        )


# -- what the kit found in the core (not a transport's doing) -------------------------------


@pytest.fixture
def tcp_kit(wassh_peer: PeerServer, wassh_udp_peer: UdpEchoServer, wassh_guest: Path) -> Kit:
    return Kit(TransportUnderTest(name="tcp"), wassh_peer, wassh_udp_peer, wassh_guest)


@pytest.fixture
def listen_kit(wassh_peer: PeerServer, wassh_udp_peer: UdpEchoServer, wassh_guest: Path) -> Kit:
    return Kit(TransportUnderTest(name="listen"), wassh_peer, wassh_udp_peer, wassh_guest)


def test_sdk_recv_msg_peek(tcp_kit: Kit) -> None:
    ep, token = tcp_kit.peer.endpoint(), tcp_kit.token()
    run = tcp_kit.run(ep, "echo", ep.host, str(ep.port), token)
    assert run.value("msg_peek") == "5", run.describe()


def test_unbound_udp_socket_is_not_readable(listen_kit: Kit) -> None:
    ep = listen_kit.udp.endpoint()
    run = listen_kit.run(ep, "udp-client", ep.host, str(ep.port))
    assert run.value("unbound-poll") == "0", run.describe()


def test_recvmsg_reports_truncation(listen_kit: Kit) -> None:
    ep = listen_kit.udp.endpoint()
    run = listen_kit.run(ep, "udp-client", ep.host, str(ep.port))
    assert run.value("recvmsg") == "10 MSG_TRUNC", run.describe()


# -- the kit catches broken transports -----------------------------------------------------


class NoHalfClose(TcpTransport):
    """shutdown(SHUT_WR) says yes and sends no FIN."""

    name = "no-half-close"

    @hookimpl
    def wassh_sock_shutdown(self, sock: SocketHandle[socket.socket], how: int) -> None:
        pass


class PeekConsumes(TcpTransport):
    """MSG_PEEK takes the bytes off the socket."""

    name = "peek-consumes"

    @hookimpl
    def wassh_sock_recv(
        self, sock: SocketHandle[socket.socket], buf: memoryview, peek: bool
    ) -> int:
        return sock.state.recv_into(buf)


class RefusedIsUnreachable(TcpTransport):
    """Reports every failed connect as EHOSTUNREACH."""

    name = "wrong-errno"

    @hookimpl
    def wassh_sock_connect_check(self, sock: SocketHandle[Any]) -> bool:
        try:
            return super().wassh_sock_connect_check(sock)
        except OSError as exc:
            raise OSError(errno.EHOSTUNREACH, "unreachable") from exc


def _broken_kit(plugin: type, kit: Kit, **expects: Any) -> Kit:
    name = str(plugin.name)  # type: ignore[attr-defined]
    transport = TransportUnderTest(name=name, plugins=[plugin], expects=Capabilities(**expects))
    broken = Kit(transport, kit.peer, kit.udp, kit.guest)
    broken.run_timeout = 10.0  # a planted fault may leave the guest waiting: fail sooner
    return broken


@pytest.mark.parametrize(
    ("plugin", "case", "expects"),
    [
        (NoHalfClose, "test_half_close", {}),
        (PeekConsumes, "test_echo", {}),
        (RefusedIsUnreachable, "test_connect_refused", {}),
        (RefusedIsUnreachable, "test_nonblocking_connect_refused", {}),
        # a declared capability is asserted too: tcp does half-close
        (TcpTransport, "test_half_close", {"half_close": False}),
        (TcpTransport, "test_echo", {"local_address": False}),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else v if isinstance(v, str) else None,
)
def test_the_kit_catches(plugin: type, case: str, expects: dict[str, Any], tcp_kit: Kit) -> None:
    kit = _broken_kit(plugin, tcp_kit, **expects)
    kit.check_offer("stream", kit.peer.endpoint())  # the broken transport is the one used
    with pytest.raises(ConformanceFailure):
        getattr(StreamConformance(), case)(kit)


def test_a_case_failing_inside_a_nursery_fails_with_its_own_message() -> None:
    from wassh.testing._guest import run_case

    async def fails() -> None:
        raise ConformanceFailure("the peer saw 3 bytes, expected 4")

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(fails)
            await trio.sleep_forever()

    with pytest.raises(ConformanceFailure, match="expected 4"):
        run_case(main)
    with pytest.raises(ExceptionGroup):  # anything else keeps trio's report
        run_case(_raises_value_error_in_a_nursery)


async def _raises_value_error_in_a_nursery() -> None:
    async def fails() -> None:
        raise ValueError("not a conformance failure")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(fails)
