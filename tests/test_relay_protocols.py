"""corp-relay (v1) against a test relay, and relays that send garbage."""

from __future__ import annotations

import logging
import socket
import struct
import time
import urllib.parse
from functools import partial
from pathlib import Path

import pytest
import trio
from corprelay import MASK, CorpRelayV1
from guestbuild import build_guest
from relayhelpers import relay_config, run_guest_async
from suitekit import GUESTS, EchoServer
from wassh_transport_websocket import v4
from wassh_transport_websocket.wsconn import WebSocket, accept
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol

ECONNRESET = 15


@pytest.fixture(scope="session")
def relayclient() -> Path:
    return build_guest(GUESTS / "net" / "relayclient.c", sdk=True)


# -- corp-relay v1 ---------------------------------------------------------------------


async def test_corp_relay_acks_across_the_24_bit_wrap_with_resume(netclient: Path) -> None:
    total = 20 << 20  # past 2**24 in both directions
    relay = CorpRelayV1(cut_every=7 << 20, cuts=2)
    async with trio.open_nursery() as nursery:
        port = await relay.start(nursery)
        config = relay_config(f"ws://127.0.0.1:{port}/", "corp-relay")
        start = time.monotonic()
        r = await run_guest_async(
            netclient, "bulk", "db.example", "5432", str(total), config=config
        )
        seconds = time.monotonic() - start
        nursery.cancel_scope.cancel()
    print(f"\ncorp-relay, 2 resumes: {total >> 20} MiB each way in {seconds:.2f} s")
    assert r.stdout == f"sent {total} got {total} bad 0\n", r
    assert relay.violations == []
    # /proxy carried the name unencoded; /connect started at ack=0&pos=0
    assert relay.proxy_requests == ["/proxy?host=db.example&port=5432"]
    assert relay.connects[0]["ack"] == "0" and relay.connects[0]["pos"] == "0"
    # two resumes with 24-bit ack/pos values
    assert relay.cut_count == 2 and len(relay.connects) == 3
    for c in relay.connects:
        assert 0 <= int(c["ack"]) <= MASK and 0 <= int(c["pos"]) <= MASK
    assert int(relay.connects[1]["pos"]) > 0
    (session,) = relay.sessions.values()
    assert session.in_count == total and relay.max_in > MASK
    # the client's read-count header wrapped too (small values after 2**24)
    assert any(h < (1 << 20) for h in relay.client_headers_seen)
    assert max(relay.client_headers_seen) <= MASK


async def test_corp_relay_proxy_refusal_is_unreachable(relayclient: Path) -> None:
    async def handler(stream: trio.SocketStream) -> None:
        await stream.receive_some(4096)
        await stream.send_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        await trio.aclose_forcefully(stream)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        config = relay_config(f"ws://127.0.0.1:{port}/", "corp-relay")
        r = await run_guest_async(relayclient, "db.example", "5432", config=config)
        nursery.cancel_scope.cancel()
    assert r.stdout == "0 connect errno 40\n"


# -- hostile relays --------------------------------------------------------------------

GARBAGE = {
    # a masked frame from a server (servers never mask): a protocol error
    "garbage.test": b"\x02\xffgarbage that is no frame at all",
    # opcode 0xF does not exist
    "opcode.test": b"\x8f\x00",
    # a binary frame announcing 2 MiB (the client accepts 1 MiB)
    "oversized.test": b"\x82\x7f" + struct.pack(">Q", 2 << 20) + b"x" * 100,
}


class HostileRelay:
    """websockify and v4 endpoints whose behaviour depends on the destination name."""

    def __init__(self, echo_port: int) -> None:
        self.echo_port = echo_port
        self.port = 0
        self.reconnects: list[str] = []
        self.before_resync: list[bytes] = []
        self.resent: list[bytes] = []

    async def start(self, nursery: trio.Nursery) -> int:
        listeners = await nursery.start(partial(trio.serve_tcp, self._handle, 0, host="127.0.0.1"))
        self.port = listeners[0].socket.getsockname()[1]
        return self.port

    async def _handle(self, stream: trio.SocketStream) -> None:
        route: dict[str, str] = {}

        def decide(proto: ServerProtocol, request: Request) -> Response:
            parts = urllib.parse.urlsplit(request.path)
            query = dict(urllib.parse.parse_qsl(parts.query))
            route["path"] = parts.path
            route["dest"] = query.get("dest") or query.get("host", "")
            if parts.path == "/v4/reconnect":
                self.reconnects.append(request.path)
                route["dest"] = query["sid"]
                if query["sid"] == "vanish.test":
                    return proto.reject(410, "gone\n")
            response = proto.accept(request)
            if parts.path.startswith("/v4/"):
                response.headers["Sec-WebSocket-Protocol"] = "ssh"
            return response

        try:
            ws, _ = await accept(stream, decide)
            if ws is None:
                return
            dest = route["dest"]
            if dest in GARBAGE:
                await stream.send_all(GARBAGE[dest])
                await trio.sleep(5)
            elif dest in ("close1000.test", "close4000.test"):
                await ws.send_close(int(dest[5:9]), "bye")
                await ws.wait_closed(2)
            elif dest == "truncated.test":  # a frame cut short by the end of the stream
                await stream.send_all(b"\x82\x64" + b"only ten b")
                await stream.send_eof()
                await trio.sleep(5)
            elif route["path"] == "/v4/connect":
                await self._v4(ws, stream, dest)
            elif route["path"] == "/v4/reconnect":
                await self._v4_resync(ws)
            else:
                await self._echo(ws)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await trio.aclose_forcefully(stream)

    async def _echo(self, ws: WebSocket) -> None:
        while (msg := await ws.recv_message()) is not None:
            await ws.send_binary(msg[1])

    async def _v4(self, ws: WebSocket, stream: trio.SocketStream, dest: str) -> None:
        await ws.send_binary(v4.connect_success(dest))
        await ws.send_binary(b"\x00\x63 an unknown tag the client must ignore")
        if dest == "closes.test":
            await ws.send_close(1000, "bye")
            await ws.wait_closed(2)
            return
        if dest in ("vanish.test", "slowresync.test"):
            await ws.recv_message()  # the guest's first DATA: drop it, unacknowledged
            stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        if dest == "badlength.test":
            await ws.send_binary(b"\x00\x04\x00\x00\x00\x09short")
        elif dest == "bigack.test":
            await ws.send_binary(v4.ack(1 << 40))
        received = 0
        while (msg := await ws.recv_message()) is not None:
            tag, value = v4.parse(msg[1])
            if tag == v4.DATA:
                assert isinstance(value, bytes)
                received += len(value)
                await ws.send_binaries([v4.ack(received), v4.data(value)])

    async def _v4_resync(self, ws: WebSocket) -> None:
        # Nothing may arrive before RECONNECT_SUCCESS (docs/relay-protocols.md).
        with trio.move_on_after(0.3):
            msg = await ws.recv_message()
            self.before_resync.append(msg[1] if msg else b"")
        await ws.send_binary(v4.reconnect_success(0))  # "I have none of your bytes"
        msg = await ws.recv_message()
        assert msg is not None
        tag, value = v4.parse(msg[1])
        assert tag == v4.DATA and isinstance(value, bytes)
        self.resent.append(value)
        await ws.send_binaries([v4.ack(len(value)), v4.data(value)])
        while await ws.recv_message() is not None:
            pass


async def test_v4_reconnects(relayclient: Path, echo_server: EchoServer) -> None:
    hostile = HostileRelay(echo_server.port)
    async with trio.open_nursery() as nursery:
        port = await hostile.start(nursery)
        config = relay_config(
            f"ws://127.0.0.1:{port}/", "corp-relay-v4", claim="all", relay_reconnect_delay=0.05
        )
        r = await run_guest_async(
            relayclient,
            *("slowresync.test", "22", "vanish.test", "22", "closes.test", "22"),
            config=config,
        )
        nursery.cancel_scope.cancel()
    lines = r.stdout.splitlines()
    # dropped before the first byte was acknowledged: resent after RECONNECT_SUCCESS(0)
    assert "0 echo hello-0" in lines, r
    assert hostile.before_resync == []
    assert hostile.resent == [b"hello-0\n"]
    # the relay is gone for good: three failed reconnects, then ECONNRESET
    assert "1 recv errno 15" in lines, r
    assert sum("sid=vanish.test" in p for p in hostile.reconnects) == 3
    # a clean close: end of stream, and no reconnect
    assert "2 eof after 0" in lines, r
    assert not any("closes.test" in p for p in hostile.reconnects)


async def test_garbage_from_a_relay_resets_only_that_connection(
    relayclient: Path, echo_server: EchoServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wassh.relay")
    bad = ["garbage.test", "opcode.test", "oversized.test", "truncated.test"]
    async with trio.open_nursery() as nursery:
        port = await HostileRelay(echo_server.port).start(nursery)
        config = relay_config(f"ws://127.0.0.1:{port}/?dest={{host}}", "websockify", claim="all")
        names = [*bad, "good.test", "close1000.test", "close4000.test"]
        args = [a for name in names for a in (name, "22")]
        r = await run_guest_async(relayclient, *args, config=config)
        # the host keeps serving: a second guest on the same loop works
        again = await run_guest_async(relayclient, "good.test", "22", config=config)
        nursery.cancel_scope.cancel()
    lines = r.stdout.splitlines()
    for i in range(len(bad)):
        # reported once, to the first call after the relay misbehaved
        assert f"{i} recv errno {ECONNRESET}" in lines or f"{i} send errno {ECONNRESET}" in lines, r
    assert f"{len(bad)} echo hello-{len(bad)}" in lines, r
    # close codes: 1000 is the end of the stream, anything else but 1011 a reset
    assert f"{len(bad) + 1} eof after 0" in lines, r
    i = len(bad) + 2
    assert f"{i} recv errno {ECONNRESET}" in lines or f"{i} send errno {ECONNRESET}" in lines, r
    assert again.stdout.splitlines()[-1] == "0 echo hello-0"
    text = caplog.text
    assert "malformed frame: incorrect masking" in text
    assert "malformed frame: invalid opcode" in text
    assert "oversized frame" in text and "closing this connection (ECONNRESET)" in text


async def test_malformed_v4_commands_reset_the_connection(
    relayclient: Path, echo_server: EchoServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wassh.relay")
    async with trio.open_nursery() as nursery:
        port = await HostileRelay(echo_server.port).start(nursery)
        config = relay_config(f"ws://127.0.0.1:{port}/", "corp-relay-v4", claim="all")
        r = await run_guest_async(
            relayclient,
            *("badlength.test", "22", "bigack.test", "22", "good.test", "22"),
            config=config,
        )
        nursery.cancel_scope.cancel()
    lines = r.stdout.splitlines()
    for i in (0, 1):
        assert f"{i} recv errno {ECONNRESET}" in lines or f"{i} send errno {ECONNRESET}" in lines, r
    assert "2 echo hello-2" in lines, r
    assert "malformed command" in caplog.text
    assert "beyond the" in caplog.text and "bytes sent" in caplog.text
