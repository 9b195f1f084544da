"""Cancelling ``wassh.run`` while the guest has relay connections open.

The embedder's cancellation reaches the relay's tasks (they live in the nursery
of ``wassh.run``) before the guest thread has unwound and closed its sockets.
Every relay socket must still close promptly and cleanly: a close frame to the
relay, which ends the session and closes the destination connection at once
(corp-relay-v4 holds a WebSocket lost without one for ``--resume-timeout``,
60 s), no "unexpected error" logged, and ``wassh.run`` raises a bare
``trio.Cancelled``.

Real parts: ``wassh relay`` (corp-relay-v4), the real websockify, and a small
forwarding relay on the test's loop for websockify and corp-relay (v1) framing
that records the close frame it got. The guest is ``wassh.testing``'s
conformance guest; the destination is a loopback server that records when the
connection to it ends.
"""

from __future__ import annotations

import errno
import logging
import secrets
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import wassh
from relayhelpers import RelayProcess, WebsockifyProcess, relay_config
from suitekit import stop_listening
from wassh.testing import conformance_guest
from wassh_transport_websocket.connection import RelayConnection
from wassh_transport_websocket.driver import Driver
from wassh_transport_websocket.driver_websockify import Websockify
from wassh_transport_websocket.settings import RelaySettings
from wassh_transport_websocket.wsconn import WebSocket, accept
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol

CANCEL_BOUND = 5.0  # seconds from the cancellation to wassh.run raising
END_BOUND = 5.0  # seconds from the cancellation to the destination seeing the end
SETTLE = 0.3  # the guest is blocked in its call, not on its way there


@pytest.fixture(scope="module")
def guest() -> Path:
    return conformance_guest()


# -- the destination -------------------------------------------------------------------


@dataclass
class DestConn:
    received: int = 0
    end: str | None = None  # "eof" or "reset"
    ended_at: float | None = None  # time.monotonic()
    done: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


class Destination:
    """A loopback TCP server that never sends and records how each connection ends.

    With ``hold`` it reads nothing until ``DestConn.release`` is set (a destination
    that does not read), then reads to the end.
    """

    def __init__(self, hold: bool = False) -> None:
        self.hold = hold
        self.sock = socket.socket()
        if hold:  # accepted sockets inherit it: the destination's buffer fills soon
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port: int = self.sock.getsockname()[1]
        self.conns: list[DestConn] = []
        self.accepted = threading.Condition()
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            rec = DestConn()
            with self.accepted:
                self.conns.append(rec)
                self.accepted.notify_all()
            threading.Thread(target=self._serve, args=(conn, rec), daemon=True).start()

    def _serve(self, conn: socket.socket, rec: DestConn) -> None:
        with conn:
            if self.hold:
                rec.release.wait()
            while True:
                try:
                    data = conn.recv(1 << 16)
                except OSError:
                    rec.end = "reset"
                    break
                if not data:
                    rec.end = "eof"
                    break
                rec.received += len(data)
        rec.ended_at = time.monotonic()
        rec.done.set()

    def connection(self, timeout: float = 10.0) -> DestConn:
        with self.accepted:
            assert self.accepted.wait_for(lambda: self.conns, timeout), "no connection"
            return self.conns[0]

    def close(self) -> None:
        stop_listening(self.sock, self._acceptor)
        for rec in self.conns:
            rec.release.set()


@pytest.fixture
def destination() -> Iterator[Destination]:
    dest = Destination()
    yield dest
    dest.close()


@pytest.fixture
def holding_destination() -> Iterator[Destination]:
    dest = Destination(hold=True)
    yield dest
    dest.close()


# -- a forwarding relay on the test's loop (websockify or corp-relay v1 framing) ------------


@dataclass
class WsEnd:
    end: str | None  # WebSocket.end: "close", "lost" or "malformed"
    code: int | None  # the client's close code
    at: float  # time.monotonic()


class ForwardingRelay:
    """websockify (raw binary messages) or corp-relay (v1: ``/proxy``, ``/connect`` and
    a 24-bit ack header on every message), forwarding to one destination.

    Records how each client WebSocket ended; the destination is closed (FIN) when the
    client closes cleanly, reset when the WebSocket is lost (as a relay that ends the
    session would, without the resume a v1 relay offers).
    """

    def __init__(self, protocol: str, dest_port: int) -> None:
        assert protocol in ("websockify", "corp-relay")
        self.protocol = protocol
        self.dest_port = dest_port
        self.port = 0
        self.ends: list[WsEnd] = []

    async def start(self, nursery: trio.Nursery) -> int:
        listeners = await nursery.start(partial(trio.serve_tcp, self._handle, 0, host="127.0.0.1"))
        self.port = listeners[0].socket.getsockname()[1]
        return self.port

    def _decide(self, proto: ServerProtocol, request: Request) -> Response:
        path = urllib.parse.urlsplit(request.path).path
        if self.protocol == "corp-relay" and path.endswith("/proxy"):
            body = secrets.token_hex(8).encode()
            headers = Headers([("Content-Length", str(len(body))), ("Connection", "close")])
            return Response(200, "OK", headers, body)
        return proto.accept(request)

    async def _handle(self, stream: trio.SocketStream) -> None:
        try:
            ws, _ = await accept(stream, self._decide)
            if ws is not None:
                await self._forward(ws)
        finally:
            await trio.aclose_forcefully(stream)

    async def _forward(self, ws: WebSocket) -> None:
        v1 = self.protocol == "corp-relay"
        target = await trio.open_tcp_stream("127.0.0.1", self.dest_port)
        taken = 0  # client bytes written to the target (the v1 ack)

        def header() -> bytes:
            return struct.pack(">I", taken & 0xFFFFFF) if v1 else b""

        async def from_target() -> None:
            while data := await target.receive_some(1 << 15):
                await ws.send_binary(header() + data)

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ws.flusher)
                nursery.start_soon(from_target)
                while (msg := await ws.recv_message()) is not None:
                    payload = msg[1][4:] if v1 else msg[1]
                    if payload:
                        await target.send_all(payload)
                        taken += len(payload)
                        if v1:
                            ws.queue_binary(header())  # a pure ack
                self.ends.append(WsEnd(ws.end, ws.close_code, time.monotonic()))
                nursery.cancel_scope.cancel()
            if ws.end == "close":
                await target.send_eof()
            else:
                target.socket.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            await trio.aclose_forcefully(target)


# -- cancelling a blocked guest --------------------------------------------------------------


@dataclass
class Cancelled:
    raised: BaseException | None  # what wassh.run raised
    took: float  # seconds from the cancellation to wassh.run raising
    cancelled_at: float  # time.monotonic()
    stdout: str


Ready = Callable[[wassh.Capture], Awaitable[None]]


def printed(line: str) -> Ready:
    """Ready once the guest printed ``line`` (just before its blocking call)."""

    async def ready(out: wassh.Capture) -> None:
        with trio.fail_after(20):
            while line not in out.text():
                await trio.sleep(0.01)

    return ready


async def cancel_blocked(
    guest: Path, argv: list[str], config: wassh.TransportConfig, ready: Ready
) -> Cancelled:
    """Run the guest, cancel ``wassh.run``'s scope once it is ``ready`` (and blocked in
    its call); what ``wassh.run`` raised, and how long it took."""
    out, err = wassh.Capture(), wassh.Capture()
    raised: list[BaseException] = []
    finished: list[float] = []
    scope = trio.CancelScope()

    async def run() -> None:
        with scope:
            try:
                await wassh.run(
                    guest, ["conform", *argv], stdin=b"", stdout=out, stderr=err, config=config
                )
            except BaseException as exc:
                raised.append(exc)
                raise
            finally:
                finished.append(time.monotonic())

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run)
            await ready(out)
            await trio.sleep(SETTLE)
            assert not finished, f"the guest should be blocked: {out.text()} {err.text()}"
            cancelled_at = time.monotonic()
            scope.cancel()
    return Cancelled(
        raised[0] if raised else None, finished[0] - cancelled_at, cancelled_at, out.text()
    )


def assert_cancelled_cleanly(result: Cancelled, caplog: pytest.LogCaptureFixture) -> None:
    """No error or traceback logged, and ``wassh.run`` raised a bare Cancelled promptly."""
    bad = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("wassh") and (r.levelno >= logging.ERROR or r.exc_info)
    ]
    assert bad == [], bad
    assert not any("unexpected error" in r.getMessage() for r in caplog.records)
    assert isinstance(result.raised, trio.Cancelled), (
        f"wassh.run raised {result.raised!r}, not a bare trio.Cancelled"
    )
    assert result.took < CANCEL_BOUND, f"wassh.run took {result.took:.2f} s to raise"


def assert_destination_ended(conn: DestConn, cancelled_at: float) -> float:
    """The destination saw the connection end (FIN) soon after the cancellation."""
    assert conn.done.wait(END_BOUND + 1), "the destination connection is still open"
    assert conn.ended_at is not None
    after = conn.ended_at - cancelled_at
    assert conn.end == "eof", f"the destination saw {conn.end!r}, not a clean end"
    assert after < END_BOUND, f"the destination connection ended {after:.2f} s after"
    return after


# -- corp-relay-v4 through `wassh relay` ----------------------------------------------------


@pytest.fixture(scope="module")
def wassh_relay() -> Iterator[RelayProcess]:
    relay = RelayProcess("--allow", "127.0.0.1")
    yield relay
    relay.close()


def v4_session_events(relay: RelayProcess, dest_port: int) -> list[dict[str, Any]]:
    """The log events of the session of the one v4 connect to ``dest_port``."""
    (connect,) = [e for e in relay.events("v4_connect") if e.get("port") == dest_port]
    tag = connect["session"]
    names = ("v4_ws_end", "v4_session_end", "v4_reconnect")
    return [e for name in names for e in relay.events(name) if e.get("session") == tag]


def wait_session_end(relay: RelayProcess, dest_port: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        events = v4_session_events(relay, dest_port)
        ends = [e for e in events if e["event"] == "v4_session_end"]
        if ends:
            return ends[0]
        assert time.monotonic() < deadline, f"the relay did not end the session: {events}"
        time.sleep(0.02)


async def test_v4_cancel_blocked_recv_closes_the_session(
    guest: Path,
    wassh_relay: RelayProcess,
    destination: Destination,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="wassh")
    config = relay_config(f"ws://127.0.0.1:{wassh_relay.port}/", "corp-relay-v4", claim="all")
    argv = ["stall", "127.0.0.1", str(destination.port), "tok"]
    result = await cancel_blocked(guest, argv, config, printed("blocking"))
    assert "recv returned" not in result.stdout
    assert_cancelled_cleanly(result, caplog)
    after = await trio.to_thread.run_sync(
        assert_destination_ended, destination.connection(), result.cancelled_at
    )
    end = await trio.to_thread.run_sync(wait_session_end, wassh_relay, destination.port, 5.0)
    assert end["reason"] == "client closed", end
    events = v4_session_events(wassh_relay, destination.port)
    assert [e for e in events if e["event"] == "v4_ws_end"] == [], events
    print(f"\nv4: wassh.run raised in {result.took:.2f} s, destination closed after {after:.2f} s")


async def test_v4_cancel_blocked_send_still_ends_the_session(
    guest: Path,
    wassh_relay: RelayProcess,
    holding_destination: Destination,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The destination does not read, so the relay never acknowledges the guest's last
    MiB: the close waits for those acks only so long, then ends the session with a
    close frame anyway (no 60 s hold for a resume); the relay still delivers what it
    has, then the end of stream."""
    caplog.set_level(logging.INFO, logger="wassh")
    config = relay_config(f"ws://127.0.0.1:{wassh_relay.port}/", "corp-relay-v4", claim="all")
    argv = ["hold", "127.0.0.1", str(holding_destination.port), "tok", str(128 << 20)]
    result = await cancel_blocked(guest, argv, config, printed("full-after"))
    assert_cancelled_cleanly(result, caplog)
    conn = holding_destination.connection()
    events = v4_session_events(wassh_relay, holding_destination.port)
    assert [e for e in events if e["event"] == "v4_ws_end"] == [], events
    conn.release.set()
    released = time.monotonic()
    assert await trio.to_thread.run_sync(conn.done.wait, END_BOUND)
    assert conn.end == "eof", conn
    sent = int(result.stdout.split("full-after ")[1].split()[0])
    assert conn.received >= sent, (conn.received, sent)
    end = await trio.to_thread.run_sync(wait_session_end, wassh_relay, holding_destination.port, 5)
    assert end["reason"] == "client closed", end
    assert conn.ended_at is not None
    print(
        f"\nv4 blocked send: wassh.run raised in {result.took:.2f} s; once the destination"
        f" read, it saw EOF after {conn.ended_at - released:.2f} s"
    )


# -- websockify: the real one, and the forwarding relay --------------------------------------


async def test_websockify_cancel_blocked_recv(
    guest: Path, destination: Destination, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wassh")
    proxy = WebsockifyProcess(destination.port)
    try:
        config = relay_config(f"ws://127.0.0.1:{proxy.port}/", "websockify", claim="all")
        argv = ["stall", "127.0.0.1", str(destination.port), "tok"]
        result = await cancel_blocked(guest, argv, config, printed("blocking"))
    finally:
        proxy.close()
    assert_cancelled_cleanly(result, caplog)
    after = await trio.to_thread.run_sync(
        assert_destination_ended, destination.connection(), result.cancelled_at
    )
    print(
        f"\nwebsockify: wassh.run raised in {result.took:.2f} s, destination closed after"
        f" {after:.2f} s"
    )


@pytest.mark.parametrize("protocol", ["websockify", "corp-relay"])
async def test_forwarding_relay_gets_a_close_frame(
    protocol: str, guest: Path, destination: Destination, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wassh")
    relay = ForwardingRelay(protocol, destination.port)
    async with trio.open_nursery() as nursery:
        port = await relay.start(nursery)
        config = relay_config(f"ws://127.0.0.1:{port}/", protocol, claim="all")
        argv = ["stall", "127.0.0.1", str(destination.port), "tok"]
        result = await cancel_blocked(guest, argv, config, printed("blocking"))
        with trio.fail_after(END_BOUND):
            while not relay.ends:
                await trio.sleep(0.01)
        after = await trio.to_thread.run_sync(
            assert_destination_ended, destination.connection(), result.cancelled_at
        )
        nursery.cancel_scope.cancel()
    assert_cancelled_cleanly(result, caplog)
    (end,) = relay.ends
    assert (end.end, end.code) == ("close", 1000), end
    print(f"\n{protocol}: wassh.run raised in {result.took:.2f} s, close frame and FIN")
    assert after < END_BOUND


# -- a connect still in progress --------------------------------------------------------------


async def test_cancel_during_the_relay_handshake(
    guest: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A relay that accepts TCP and never answers the WebSocket handshake: the guest is
    blocked in connect; cancelling ends it at once and drops the relay connection."""
    caplog.set_level(logging.INFO, logger="wassh")
    accepted, closed = trio.Event(), trio.Event()

    async def silent(stream: trio.SocketStream) -> None:
        accepted.set()
        try:
            while await stream.receive_some(4096):
                pass
        except trio.BrokenResourceError:
            pass
        closed.set()

    async def connecting(out: wassh.Capture) -> None:
        with trio.fail_after(20):
            await accepted.wait()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, silent, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        config = relay_config(f"ws://127.0.0.1:{port}/", "corp-relay-v4", claim="all")
        result = await cancel_blocked(guest, ["connect", "127.0.0.1", "9"], config, connecting)
        with trio.fail_after(END_BOUND):
            await closed.wait()
        nursery.cancel_scope.cancel()
    assert "connect" not in result.stdout  # neither "connect OK" nor a connect errno
    assert_cancelled_cleanly(result, caplog)


# -- the pump: a defined result whatever the order of cancellations -------------------------


def _settings() -> RelaySettings:
    return RelaySettings.from_settings({"url": "ws://127.0.0.1:9/", "protocol": "websockify"}, 5.0)


class _FakeWs:
    async def flusher(self) -> None:
        await trio.sleep_forever()

    async def keepalive(self, *args: Any) -> None:
        await trio.sleep_forever()


async def _absorbed_cancellation(pump: Callable[[trio.CancelScope], Awaitable[Any]]) -> Any:
    """Run ``pump(inner)`` in ``inner`` inside ``outer``; cancel ``outer``, and shield
    ``inner`` while the cancellation unwinds the pump's tasks (what the guest's close
    did before the fix): the pump's nursery then absorbs the Cancelled."""
    results: list[Any] = []
    with trio.CancelScope() as outer, trio.CancelScope() as inner:
        async with trio.open_nursery() as nursery:

            async def go() -> None:
                results.append(await pump(inner))

            nursery.start_soon(go)
            await trio.sleep(0.05)
            outer.cancel()
    return results


async def test_pump_result_is_defined_when_the_cancellation_is_absorbed() -> None:
    token = trio.lowlevel.current_trio_token()

    class Stuck(Driver):
        inner: trio.CancelScope

        async def _reader(self, ws: WebSocket) -> int | None:
            await trio.sleep_forever()
            return 0  # not reached

        def _side_tasks(self, ws: WebSocket) -> list[Callable[[], Awaitable[None]]]:
            async def shield_on_cancel() -> None:
                try:
                    await trio.sleep_forever()
                except trio.Cancelled:
                    self.inner.shield = True
                    raise

            return [shield_on_cancel]

    conn = RelayConnection(token)
    driver = Stuck(_settings(), conn, "127.0.0.1", 9)

    async def pump(inner: trio.CancelScope) -> Any:
        driver.inner = inner
        return await driver._pump(_FakeWs())  # type: ignore[arg-type]

    try:
        assert await _absorbed_cancellation(pump) == [errno.ECONNRESET]  # not an IndexError
    finally:
        conn.guest_close(lambda: None)  # its eventfds


async def test_websockify_run_result_is_defined_when_the_cancellation_is_absorbed() -> None:
    token = trio.lowlevel.current_trio_token()

    class Stuck(Websockify):
        inner: trio.CancelScope

        async def _reader(self, ws: WebSocket) -> int:
            await trio.sleep_forever()
            return 0  # not reached

        async def _writer(self, ws: WebSocket) -> None:
            try:
                await trio.sleep_forever()
            except trio.Cancelled:
                self.inner.shield = True
                raise

    conn = RelayConnection(token)
    driver = Stuck(_settings(), conn, "127.0.0.1", 9)
    driver.ws = _FakeWs()  # type: ignore[assignment]

    async def pump(inner: trio.CancelScope) -> Any:
        driver.inner = inner
        return await driver.run()

    try:
        assert await _absorbed_cancellation(pump) == [errno.ECONNRESET]  # not UnboundLocalError
    finally:
        conn.guest_close(lambda: None)
