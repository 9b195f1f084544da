"""wsconn's own framing of plain binary messages, and the relay client's send buffer.

Whole binary messages are framed and parsed by wsconn itself; every other frame
goes through the ``websockets`` protocol. These tests hold the two paths to one
behaviour over real loopback connections: every length, messages interleaved
with frames only the protocol handles, frames sent right behind the handshake,
frames cut at any byte, and the frames the protocol refuses.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from wassh_transport_websocket import v4
from wassh_transport_websocket.connection import RelayConnection, split
from wassh_transport_websocket.relay import CorpRelayV4
from wassh_transport_websocket.settings import RelaySettings
from wassh_transport_websocket.wsconn import WebSocket, connect
from wassh_transport_websocket.wsconn import accept as ws_accept
from websockets.speedups import apply_mask

SIZES = [0, 1, 125, 126, 127, 65535, 65536, 65537, 300_001, 1 << 20]


def blob(n: int, seed: int = 0) -> bytes:
    """``n`` bytes of a pattern whose period (4099) no power-of-two cut lines up with."""
    pattern = bytes((i * 7 + seed) & 0xFF for i in range(4099))
    return (pattern * (n // len(pattern) + 1))[:n]


@asynccontextmanager
async def ws_pair(max_size: int | None = 2 << 20) -> AsyncIterator[tuple[WebSocket, WebSocket]]:
    """A client and a server WebSocket over loopback TCP."""
    server: list[WebSocket] = []
    got = trio.Event()

    async def serve(stream: trio.SocketStream) -> None:
        ws, _ = await ws_accept(stream, lambda p, r: p.accept(r), max_size=max_size)
        assert ws is not None
        server.append(ws)
        got.set()
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, serve, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        client = await connect(f"ws://127.0.0.1:{port}/", max_size=max_size)
        await got.wait()
        yield client, server[0]
        await client.aclose()
        await server[0].aclose()
        nursery.cancel_scope.cancel()


async def test_messages_of_every_length_arrive_whole_and_in_order() -> None:
    with trio.fail_after(30):
        async with ws_pair() as (client, server):
            for a, b in ((client, server), (server, client)):  # masked, then not
                messages = [blob(n, seed) for seed, n in enumerate(SIZES)]

                async def send(a: WebSocket = a, messages: list[bytes] = messages) -> None:
                    await a.send_binaries(messages[:3])
                    # one message given in parts, cut at odd places (masking keys rotate)
                    parts = [memoryview(messages[3])[:5], memoryview(messages[3])[5:]]
                    await a.send_messages([parts])
                    for m in messages[4:]:
                        await a.send_binary(m)

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(send)
                    for m in messages:
                        assert await b.recv_message() == (False, m)


async def test_frames_only_the_protocol_handles_keep_their_place() -> None:
    with trio.fail_after(30):
        async with ws_pair() as (client, server):
            proto = client.protocol
            await client.send_binary(b"first")
            proto.send_text(b"a text")
            proto.send_binary(b"frag", fin=False)  # a fragmented message
            proto.send_continuation(b"mented", fin=True)
            proto.send_ping(b"are you there")
            await client._flush()
            await client.send_binary(blob(100_000))
            await client.send_close(1000, "bye")
            assert await server.recv_message() == (False, b"first")
            assert await server.recv_message() == (True, b"a text")
            assert await server.recv_message() == (False, b"fragmented")
            assert await server.recv_message() == (False, blob(100_000))
            assert await server.recv_message() is None
            assert (server.end, server.close_code, server.close_reason) == ("close", 1000, "bye")
            # the pong and the echo of the close frame came back
            assert await client.recv_message() is None
            assert client.end == "close"


def _frame(payload: bytes, mask: bool, head1: int = 0x82) -> bytes:
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head = bytes((head1, bit | n))
    elif n < 65536:
        head = bytes((head1, bit | 126)) + struct.pack("!H", n)
    else:
        head = bytes((head1, bit | 127)) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + apply_mask(payload, key)


async def _raw_client(port: int, tail: bytes) -> trio.SocketStream:
    """A hand-made client: the upgrade request and ``tail`` in one write."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    await stream.send_all(request + tail)
    return stream


async def _server_side(tail: bytes, max_size: int = 1 << 20) -> tuple[WebSocket, trio.SocketStream]:
    """A wsconn server and the raw client that sent ``tail`` right behind its request."""
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    raw = await _raw_client(port, tail)
    stream = await listener.accept()
    await listener.aclose()
    ws, _ = await ws_accept(stream, lambda p, r: p.accept(r), max_size=max_size)
    assert ws is not None
    return ws, raw


async def test_frames_behind_the_request_and_cut_anywhere_arrive() -> None:
    with trio.fail_after(30):
        first = blob(70_000, 1)
        small = _frame(b"x", mask=True)
        ws, raw = await _server_side(_frame(first, mask=True) + small[:3])
        assert await ws.recv_message() == (False, first)
        stream = small[3:] + _frame(blob(300_000, 2), mask=True) + _frame(b"", mask=True)

        async def cut() -> None:
            for i in range(0, len(stream), 7777):  # cut through headers and payloads
                await raw.send_all(stream[i : i + 7777])

        async with trio.open_nursery() as nursery:
            nursery.start_soon(cut)
            assert await ws.recv_message() == (False, b"x")
            assert await ws.recv_message() == (False, blob(300_000, 2))
            assert await ws.recv_message() == (False, b"")
        await raw.aclose()
        assert await ws.recv_message() is None
        assert ws.end == "lost"


async def test_frames_behind_the_101_arrive() -> None:
    """A server that answers the upgrade and sends a frame in the same write."""
    with trio.fail_after(10):
        frame = _frame(blob(200_000, 3), mask=False)

        async def serve(stream: trio.SocketStream) -> None:
            request = b""
            while b"\r\n\r\n" not in request:
                request += await stream.receive_some(4096)
            key = next(
                line.split(b":", 1)[1].strip()
                for line in request.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key")
            )
            accept = base64.b64encode(
                hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
            )
            await stream.send_all(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n" + frame
            )
            await trio.sleep_forever()

        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, serve, 0, host="127.0.0.1"))
            port = listeners[0].socket.getsockname()[1]
            client = await connect(f"ws://127.0.0.1:{port}/")
            assert await client.recv_message() == (False, blob(200_000, 3))
            await client.aclose()
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        (_frame(b"unmasked", mask=False), "malformed frame: incorrect masking"),
        (_frame(b"reserved", mask=True, head1=0xC2), "malformed frame: reserved bits"),
        (_frame(b"opcode 3", mask=True, head1=0x83), "malformed frame: invalid opcode"),
        (_frame(blob(70_000), mask=True)[:20], "oversized frame"),  # the header is enough
        (_frame(b"x" * 126, mask=True, head1=0x89), "malformed frame: control frame too long"),
        (_frame(b"cont", mask=True, head1=0x80), "malformed frame: unexpected continuation"),
    ],
)
async def test_bad_frames_end_the_connection_with_the_reason(frame: bytes, why: str) -> None:
    with trio.fail_after(10):
        ws, raw = await _server_side(_frame(b"fine", mask=True) + frame, max_size=65536)
        assert await ws.recv_message() == (False, b"fine")
        assert await ws.recv_message() is None
        assert ws.end == "malformed"
        assert ws.end_detail.startswith(why), ws.end_detail
        # the protocol answered with a close frame saying why
        await ws.aclose()
        answer = b""
        while chunk := await raw.receive_some(4096):
            answer += chunk
        close = answer.partition(b"\r\n\r\n")[2]  # after the 101
        assert close[:1] == b"\x88", answer
        assert struct.unpack("!H", close[2:4])[0] == (1009 if "oversized" in why else 1002)


async def test_an_oversized_message_in_parts_is_refused_too() -> None:
    with trio.fail_after(10):
        parts = _frame(b"x" * 40_000, mask=True, head1=0x02) + _frame(
            b"y" * 40_000, mask=True, head1=0x80
        )
        ws, _ = await _server_side(parts, max_size=65536)
        assert await ws.recv_message() is None
        assert ws.end == "malformed" and ws.end_detail.startswith("oversized frame"), ws.end_detail


# -- the client's send buffer ----------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["send", "take", "ack", "rewind"]),
            st.integers(min_value=0, max_value=100_000),
        ),
        max_size=60,
    )
)
def test_the_send_buffer_hands_out_the_stream_in_order(ops: list[tuple[str, int]]) -> None:
    """Guest writes of any size, takes of any limit, acks and rewinds (resumes): what is
    taken is always the stream at ``sent``, and nothing moves once acknowledged."""
    conn = RelayConnection(None, send_max=256 * 1024)
    stream = blob(1 << 22, 5)
    written = 0
    for op, n in ops:
        if op == "send":
            n = min(n, len(stream) - written)
            try:
                taken = conn.send(memoryview(stream)[written : written + n])
            except BlockingIOError:
                assert conn.unacked >= conn.send_max
                continue
            written += taken
        elif op == "take":
            before = conn.sent
            pieces = conn.take_unsent(n + 1, release=False)
            got = b"".join(pieces)
            assert got == stream[before : before + len(got)]
            assert conn.sent == before + len(got) == min(before + n + 1, written)
        elif op == "ack":
            upto = conn.acked + min(n, conn.sent - conn.acked)
            conn.release(upto)
            assert conn.acked == upto and conn.unacked == written - upto
        else:
            conn.rewind(conn.acked + min(n, conn.sent - conn.acked))
        assert conn.total == written


def test_split_cuts_pieces_into_messages() -> None:
    pieces = [memoryview(b"abcde"), memoryview(b"fg"), memoryview(b"hijklmnop")]
    messages = split(pieces, 4)
    assert [b"".join(m) for m in messages] == [b"abcd", b"efgh", b"ijkl", b"mnop"]
    assert split([], 4) == []


# -- corp-relay-v4: DATA above 16 KiB only to a relay that takes it -------------------------


@pytest.mark.parametrize(("answer", "largest"), [(None, 16384), ("eof, data=100000", 100_000)])
async def test_v4_data_size_follows_the_relay_answer(answer: str | None, largest: int) -> None:
    sizes: list[int] = []
    total = 1 << 20

    def decide(proto, request):  # type: ignore[no-untyped-def]
        response = proto.accept(request)
        if answer is not None:
            response.headers[v4.EXT_HEADER] = answer
        return response

    async def serve(stream: trio.SocketStream) -> None:
        ws, request = await ws_accept(stream, decide, subprotocols=["ssh"])
        assert ws is not None and request is not None
        assert request.headers[v4.EXT_HEADER] == v4.EXT_OFFER
        await ws.send_binary(v4.connect_success("S1"))
        got = 0
        while got < total:
            msg = await ws.recv_message()
            assert msg is not None
            tag, value = v4.parse(msg[1])
            if tag == v4.DATA:
                assert isinstance(value, bytes)
                sizes.append(len(value))
                got += len(value)
                await ws.send_binary(v4.ack(got))
        await ws.send_close(1000)

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, serve, 0, host="127.0.0.1"))
            port = listeners[0].socket.getsockname()[1]
            given = {"url": f"ws://127.0.0.1:{port}/", "protocol": "corp-relay-v4"}
            conn = RelayConnection(trio.lowlevel.current_trio_token())
            driver = CorpRelayV4(RelaySettings.from_settings(given, 75.0), conn, "h", 1)
            await driver.open()
            conn.mark_connected()
            data = blob(total, 9)
            sent = 0
            while sent < total:
                sent += conn.send(memoryview(data)[sent:])
            assert await driver.run() == 0
            nursery.cancel_scope.cancel()
    assert sum(sizes) == total
    assert max(sizes) == largest, sizes


def test_parse_ext() -> None:
    assert v4.parse_ext("") == (False, v4.MAX_CLIENT_DATA)
    assert v4.parse_ext("eof") == (True, v4.MAX_CLIENT_DATA)
    assert v4.parse_ext("eof, data=1048570") == (True, 1048570)
    assert v4.parse_ext("data=1000") == (False, v4.MAX_CLIENT_DATA)  # never below 16 KiB
    assert v4.parse_ext("data=lots, eof=1, data") == (False, v4.MAX_CLIENT_DATA)


def test_wassh_relay_answers_the_data_extension() -> None:
    """``wassh relay`` offers DATA up to its message limit to a client that asks."""
    wassh = str(Path(sys.executable).parent / "wassh")
    relay = subprocess.Popen(
        [
            wassh,
            "relay",
            "--listen",
            "127.0.0.1:0",
            "--allow",
            "127.0.0.1:*",
            "--max-message",
            "300000",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert relay.stderr is not None
        port = json.loads(relay.stderr.readline())["port"]
        threading.Thread(target=relay.stderr.read, daemon=True).start()
        target = socket.create_server(("127.0.0.1", 0))

        def upgrade(ext: str) -> bytes:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            key = base64.b64encode(os.urandom(16)).decode()
            tport = target.getsockname()[1]
            s.sendall(
                f"GET /v4/connect?host=127.0.0.1&port={tport}&dstUsername=u HTTP/1.1\r\n"
                f"Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Protocol: ssh\r\n{ext}\r\n".encode()
            )
            head = b""
            while b"\r\n\r\n" not in head:
                head += s.recv(4096)
            s.close()
            return head

        assert b"X-Wassh-Relay-Ext: eof, data=299994\r\n" in upgrade(
            "X-Wassh-Relay-Ext: eof, data\r\n"
        )
        assert b"X-Wassh-Relay-Ext: eof\r\n" in upgrade("X-Wassh-Relay-Ext: eof\r\n")
        assert b"X-Wassh-Relay-Ext" not in upgrade("")
        target.close()
    finally:
        relay.terminate()
        relay.wait()


# -- flow control -----------------------------------------------------------------------------


async def test_acks_are_not_withheld_while_the_guest_send_buffer_is_full() -> None:
    """A guest blocked sending reads nothing: withholding acks then could only make the
    relay wait for us while we wait for it."""

    class Queued:
        def __init__(self) -> None:
            self.queued: list[bytes] = []

        def queue_binary(self, data: bytes) -> None:
            self.queued.append(bytes(data))

    given = {"url": "ws://r/", "protocol": "corp-relay-v4"}
    conn = RelayConnection(trio.lowlevel.current_trio_token(), recv_high=100, send_max=50)
    driver = CorpRelayV4(RelaySettings.from_settings(given, 75.0), conn, "h", 1)
    ws = Queued()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(driver._release_acks, ws)  # type: ignore[arg-type]
        await driver._handle(ws, (False, v4.data(b"x" * 120)))  # type: ignore[arg-type]
        assert ws.queued == [] and driver.withholding  # above the mark: withheld
        assert conn.send(memoryview(b"s" * 80)) == 50  # the guest fills its send buffer
        await trio.testing.wait_all_tasks_blocked()
        assert ws.queued == [v4.ack(120)]  # released at once
        await driver._handle(ws, (False, v4.data(b"y" * 10)))  # type: ignore[arg-type]
        assert ws.queued[-1] == v4.ack(130)  # and not withheld while it stays full
        conn.sent = 50
        conn.release(50)  # the relay acknowledges: the guest may send again
        await driver._handle(ws, (False, v4.data(b"z" * 10)))  # type: ignore[arg-type]
        assert ws.queued[-1] == v4.ack(130) and driver.withholding  # withheld again
        nursery.cancel_scope.cancel()


def test_a_connection_dropped_before_the_guest_held_it_releases_its_eventfds() -> None:
    """A connect that fails early drops its RelayConnection without guest_close():
    the two eventfds go with it, and guest_close() after all never closes twice."""
    gc.collect()
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(100):
        RelayConnection(None)
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) - before <= 2  # 200 if they leaked
    kept = RelayConnection(None)
    kept.token = SimpleNamespace(run_sync_soon=lambda fn: None)
    kept.guest_close(lambda: None)
    for fd in (kept.read_fd, kept.write_fd):
        with pytest.raises(OSError):
            os.fstat(fd)
    # Spent: once the numbers are reused, collecting the connection closes nothing.
    assert not kept._release_fds.alive
