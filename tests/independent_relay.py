"""A second relay for the tests, written from the protocol description alone.

It shares no code with wassh (neither its WebSocket layer nor its relay server):
it is built on the ``websockets`` library's own asyncio server, so a client bug
that wassh's server happens to mirror still shows. It speaks

* websockify: raw bytes in binary messages, to ``--target`` or ``?host=&port=``;
* corp-relay (v1): ``GET /proxy?host=&port=`` answers a session id, then
  ``/connect?sid=&ack=&pos=``; every message starts with a 4-byte big-endian
  count mod 2**24 (client: bytes it has read; relay: client bytes it has written
  to the target), a client message may be a header alone (a pure ack);
* corp-relay-v4: ``/v4/connect?host=&port=`` and ``/v4/reconnect?sid=&ack=``,
  subprotocol ``ssh``, commands tagged with a big-endian u16: CONNECT_SUCCESS (1,
  u32 length + session id), RECONNECT_SUCCESS (2, u64), DATA (4, u32 length +
  bytes), ACK (7, u64).

Both corp protocols keep the session (the target connection) when a WebSocket
drops, and hold what the client has not acknowledged for a resume. That is also
their output window: with ``--window BYTES`` (default 4 MiB) the relay stops
reading the target while that many bytes are unacknowledged; ``--window 0``
ignores the client's acks (a misbehaving relay). In the other direction the relay
acknowledges client bytes once written to the target, so the client's own send
window bounds the queue in front of the target, and the relay never stops reading
the WebSocket, where the acks of its own output arrive (stopping there can
deadlock both). ``--stall-host NAME`` never answers a connect to NAME. Events go
to stderr as JSON lines, the first one ``{"event": "listening", "port": N}``.

    python independent_relay.py [--window BYTES] [--target HOST:PORT] [--stall-host NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import struct
import sys
import urllib.parse
from collections.abc import Callable, Coroutine, Sequence
from functools import partial
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

MASK24 = 0xFFFFFF
CONNECT_SUCCESS, RECONNECT_SUCCESS, DATA, ACK = 1, 2, 4, 7
TARGET_READ = 65536
RESUME_TIMEOUT = 30.0
QUEUE_CAP = 16 << 20  # client bytes waiting for the target: more means acks were ignored


def log(event: str, **fields: Any) -> None:
    sys.stderr.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stderr.flush()


class Session:
    """A target connection that outlives the WebSockets of a corp-relay session."""

    def __init__(
        self,
        kind: str,
        sid: str,
        streams: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        window: int,
    ) -> None:
        self.kind, self.sid, self.window = kind, sid, window
        self.reader, self.writer = streams
        self.out = bytearray()  # target bytes the client has not acknowledged
        self.out_base = 0  # stream position of out[0]
        self.to_target = bytearray()  # client bytes not yet written to the target
        self.accepted = 0  # client bytes received (what a resume reports)
        self.written = 0  # client bytes written to the target (what acks report)
        self.target_eof = False
        self.stalls = 0  # times the window stopped the target reader
        self.max_unacked = 0
        self.cond = asyncio.Condition()
        self.over = asyncio.Event()
        self.attached = 0
        self.task = asyncio.create_task(self._read_target())
        self.writer_task = asyncio.create_task(self._write_target())

    async def changed(self) -> None:
        async with self.cond:
            self.cond.notify_all()

    async def _read_target(self) -> None:
        while True:
            async with self.cond:
                if self.window and len(self.out) >= self.window:
                    self.stalls += 1
                    await self.cond.wait_for(lambda: len(self.out) < self.window)
            try:
                data = await self.reader.read(TARGET_READ)
            except OSError:
                data = b""
            async with self.cond:
                if data:
                    self.out += data
                    self.max_unacked = max(self.max_unacked, len(self.out))
                else:
                    self.target_eof = True
                self.cond.notify_all()
            if not data:
                return

    async def _write_target(self) -> None:
        while True:
            async with self.cond:
                await self.cond.wait_for(lambda: bool(self.to_target))
                chunk = bytes(self.to_target)
                self.to_target.clear()
            self.writer.write(chunk)
            try:
                await self.writer.drain()
            except OSError:
                self.end("target write failed")
                return
            async with self.cond:
                self.written += len(chunk)
                self.cond.notify_all()

    async def take(self, data: bytes) -> None:
        """Queue client bytes for the target (never waits for it)."""
        if not data:
            return
        async with self.cond:
            self.to_target += data
            self.accepted += len(data)
            if len(self.to_target) > QUEUE_CAP:
                raise Violation(f"{len(self.to_target)} bytes sent beyond the relay's acks")
            self.cond.notify_all()

    def pending(self, told: int, sent: int) -> bool:
        """Something to tell a client that was told ``told`` and sent up to ``sent``."""
        return (
            self.written != told
            or sent < self.out_base + len(self.out)
            or (self.target_eof and not self.out)
        )

    async def acknowledged(self, upto: int, sent: int) -> bool:
        """The client has read everything before ``upto``; False if that is impossible."""
        if not self.out_base <= upto <= sent:
            return False
        del self.out[: upto - self.out_base]
        self.out_base = upto
        await self.changed()
        return True

    def end(self, why: str) -> None:
        if self.over.is_set():
            return
        self.over.set()
        self.task.cancel()
        self.writer_task.cancel()
        self.writer.close()
        log(
            "session_end",
            kind=self.kind,
            sid=self.sid,
            why=why,
            to_target=self.written,
            to_client=self.out_base + len(self.out),
            stalls=self.stalls,
            max_unacked=self.max_unacked,
        )

    async def expire(self) -> None:
        """Drop a session nobody resumes."""
        await asyncio.sleep(RESUME_TIMEOUT)
        if not self.attached:
            self.end("resume timeout")


class Relay:
    def __init__(self, window: int, target: tuple[str, int] | None, stall: str | None) -> None:
        self.window, self.target, self.stall = window, target, stall
        self.sessions: dict[str, Session] = {}
        self.expiring: set[asyncio.Task[None]] = set()

    async def dial(self, host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if host == self.stall:
            await asyncio.sleep(3600)
        return await asyncio.open_connection(host, port)

    async def process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        parts = urllib.parse.urlsplit(request.path)
        query = dict(urllib.parse.parse_qsl(parts.query))
        if self.stall and query.get("host") == self.stall and not parts.path.startswith("/v4/"):
            await asyncio.sleep(3600)  # never answers the upgrade, or /proxy
        if parts.path != "/proxy":
            return None
        try:
            streams = await self.dial(query["host"], int(query["port"]))
        except (KeyError, ValueError, OSError) as exc:
            return conn.respond(502, f"cannot connect: {exc}\n")
        sid = secrets.token_hex(8)
        self.sessions[sid] = Session("v1", sid, streams, self.window)
        log("v1_proxy", sid=sid, host=query["host"], port=query["port"])
        return conn.respond(200, sid)

    async def handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        parts = urllib.parse.urlsplit(ws.request.path)
        query = dict(urllib.parse.parse_qsl(parts.query))
        try:
            if parts.path == "/v4/connect":
                await self.v4_connect(ws, query)
            elif parts.path == "/v4/reconnect":
                await self.v4_reconnect(ws, query)
            elif parts.path == "/connect":
                await self.v1_connect(ws, query)
            else:
                await self.websockify(ws, query)
        except ConnectionClosed:
            pass

    # -- websockify ------------------------------------------------------------------------
    async def websockify(self, ws: ServerConnection, query: dict[str, str]) -> None:
        host, port = self.target or (query.get("host", ""), int(query.get("port", "0")))
        try:
            reader, writer = await self.dial(host, port)
        except OSError:
            await ws.close(1011, "Failed to connect to downstream server")
            return
        log("websockify", host=host, port=port)

        async def upstream() -> None:
            async for msg in ws:
                if isinstance(msg, str):
                    await ws.close(1003, "Unsupported: Text frames are not supported")
                    return
                writer.write(msg)
                await writer.drain()

        async def downstream() -> None:
            while data := await reader.read(TARGET_READ):
                await ws.send(data)
            await ws.close(1000, "Target closed")

        try:
            await first_of(upstream, downstream)
        finally:
            writer.close()

    # -- corp-relay-v4 ---------------------------------------------------------------------
    async def v4_connect(self, ws: ServerConnection, query: dict[str, str]) -> None:
        if ws.subprotocol != "ssh":
            await ws.close(1002, "subprotocol ssh required")
            return
        try:
            streams = await self.dial(query["host"], int(query["port"]))
        except (KeyError, ValueError, OSError) as exc:
            await ws.close(1011, f"cannot connect: {exc}")
            return
        sid = secrets.token_hex(8)
        session = Session("v4", sid, streams, self.window)
        self.sessions[sid] = session
        log("v4_connect", sid=sid, host=query["host"], port=query["port"])
        sid_bytes = sid.encode()
        await ws.send(struct.pack(">HI", CONNECT_SUCCESS, len(sid_bytes)) + sid_bytes)
        await self.v4_serve(ws, session)

    async def v4_reconnect(self, ws: ServerConnection, query: dict[str, str]) -> None:
        session = self.sessions.get(query.get("sid", ""))
        if session is None or session.over.is_set():
            await ws.close(1008, "no such session")
            return
        ack = int(query.get("ack", "-1"))
        if not await session.acknowledged(ack, session.out_base + len(session.out)):
            await ws.close(1002, "bad ack")
            session.end("bad reconnect ack")
            return
        log("v4_reconnect", sid=session.sid, ack=ack, have=session.accepted)
        await ws.send(struct.pack(">HQ", RECONNECT_SUCCESS, session.accepted))
        await self.v4_serve(ws, session)

    async def v4_serve(self, ws: ServerConnection, s: Session) -> None:
        sent = [s.out_base]

        async def from_client() -> None:
            async for msg in ws:
                if isinstance(msg, str) or len(msg) < 2:
                    raise Violation("not a command")
                (tag,) = struct.unpack_from(">H", msg)
                if tag == DATA:
                    (length,) = struct.unpack_from(">I", msg, 2)
                    if length != len(msg) - 6 or length > 16384:
                        raise Violation(f"DATA of {len(msg)} bytes says {length}")
                    await s.take(msg[6:])
                elif tag == ACK:
                    (upto,) = struct.unpack_from(">Q", msg, 2)
                    if len(msg) != 10 or not await s.acknowledged(upto, sent[0]):
                        raise Violation(f"ACK {upto} outside [{s.out_base}, {sent[0]}]")
                # other tags: ignored

        async def to_client() -> None:
            told = -1
            while True:
                async with s.cond:
                    await s.cond.wait_for(partial(s.pending, told, sent[0]))
                    frames = []
                    if s.written != told:
                        told = s.written
                        frames.append(struct.pack(">HQ", ACK, told))
                    start = sent[0] - s.out_base
                    chunk = bytes(s.out[start : start + TARGET_READ])
                    if chunk:
                        frames.append(struct.pack(">HI", DATA, len(chunk)) + chunk)
                        sent[0] += len(chunk)
                    finished = s.target_eof and not s.out and not frames
                if finished:
                    await ws.close(1000, "target closed")
                    s.end("target closed")
                    return
                for frame in frames:
                    await ws.send(frame)

        await self.attach(ws, s, from_client, to_client)

    # -- corp-relay (v1) -------------------------------------------------------------------
    async def v1_connect(self, ws: ServerConnection, query: dict[str, str]) -> None:
        s = self.sessions.get(query.get("sid", ""))
        if s is None or s.over.is_set():
            await ws.close(1008, "no such session")
            return
        # 24-bit positions from the URL, widened around what this side knows.
        client_read = s.out_base + ((int(query.get("ack", "0")) - s.out_base) & MASK24)
        if not await s.acknowledged(client_read, s.out_base + len(s.out)):
            await ws.close(1002, "bad ack")
            s.end("bad connect ack")
            return
        skip = [(s.accepted - int(query.get("pos", "0"))) & MASK24]  # re-sent bytes we have
        sent = [s.out_base]
        log("v1_connect", sid=s.sid, ack=client_read, skip=skip[0])

        async def from_client() -> None:
            async for msg in ws:
                if isinstance(msg, str) or not 4 <= len(msg) <= 32768:
                    raise Violation(f"bad message of {len(msg)} bytes")
                (head,) = struct.unpack_from(">I", msg)
                if head > MASK24:
                    raise Violation(f"header {head:#x} is not 24-bit")
                upto = s.out_base + ((head - s.out_base) & MASK24)
                if not await s.acknowledged(upto, sent[0]):
                    raise Violation(f"read count {upto} outside [{s.out_base}, {sent[0]}]")
                payload = msg[4:]
                drop = min(skip[0], len(payload))
                skip[0] -= drop
                await s.take(payload[drop:])

        async def to_client() -> None:
            told = -1
            while True:
                async with s.cond:
                    await s.cond.wait_for(partial(s.pending, told, sent[0]))
                    told = s.written
                    start = sent[0] - s.out_base
                    chunk = bytes(s.out[start : start + 32764])
                    sent[0] += len(chunk)
                    finished = s.target_eof and not s.out and not chunk
                if finished:
                    await ws.close(1000, "target closed")
                    s.end("target closed")
                    return
                await ws.send(struct.pack(">I", told & MASK24) + chunk)

        await self.attach(ws, s, from_client, to_client)

    # -- both corp protocols ---------------------------------------------------------------
    async def attach(
        self,
        ws: ServerConnection,
        s: Session,
        from_client: Callable[[], Coroutine[Any, Any, None]],
        to_client: Callable[[], Coroutine[Any, Any, None]],
    ) -> None:
        s.attached += 1
        try:
            await first_of(from_client, to_client)
        except Violation as exc:
            log("violation", sid=s.sid, what=str(exc))
            await ws.close(1002, str(exc)[:100])
            s.end(f"client broke the protocol: {exc}")
            return
        finally:
            s.attached -= 1
        if ws.close_code in (1000, 1005):
            s.end("client closed")
        elif not s.over.is_set():
            log("detached", sid=s.sid, code=ws.close_code)
            self.expiring.add(asyncio.create_task(s.expire()))


class Violation(Exception):
    """The client broke the protocol."""


async def first_of(*tasks: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run the coroutines until the first ends; cancel the others; re-raise its error."""
    running = [asyncio.create_task(t()) for t in tasks]
    try:
        done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in running:
            task.cancel()
        for task in running:
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed, OSError):
                await task
    for task in done:
        exc = task.exception()
        if exc is not None and not isinstance(exc, ConnectionClosed | OSError):
            raise exc


def ssh_if_offered(conn: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    """v4 clients ask for ``ssh``; websockify and corp-relay clients ask for nothing."""
    return Subprotocol("ssh") if "ssh" in offered else None


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--window", type=int, default=4 << 20)
    p.add_argument("--target", default=None)
    p.add_argument("--stall-host", default=None)
    ns = p.parse_args()
    target = None
    if ns.target:
        host, _, port = ns.target.rpartition(":")
        target = (host, int(port))
    relay = Relay(ns.window, target, ns.stall_host)
    async with serve(
        relay.handle,
        "127.0.0.1",
        0,
        process_request=relay.process_request,
        select_subprotocol=ssh_if_offered,
        compression=None,
        open_timeout=None,
        ping_interval=None,
        max_size=1 << 20,
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        log("listening", port=port)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main())
