"""A corp-relay (v1) server for tests: ``/proxy`` then ``/connect``, echoing the client.

There is no public corp relay, so this one implements the corp-relay protocol
(docs/relay-protocols.md) from the server's side: every client message carries
the client's read count mod 2**24 in a 4-byte header, every server message
carries the server's write ack mod 2**24.
Positions are kept absolute inside and reduced on the wire, so a transfer past
16 MiB exercises the wrap. ``cut_every`` resets the WebSocket's TCP connection each
time that many more client bytes arrived, to exercise resume (``ack``/``pos``).

On resume the client re-sends from ``pos`` (its write ack): this server skips the
prefix it already has, and reports acks from ``pos`` upwards, never beyond what
the client's re-sent stream has reached, so both directions stay exact.
"""

from __future__ import annotations

import secrets
import socket
import struct
import urllib.parse
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import trio
from wassh_transport_websocket.wsconn import WebSocket, accept
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol

MASK = 0xFFFFFF
CHUNK = 32768


@dataclass
class Session:
    sid: str
    host: str
    port: int
    in_count: int = 0  # client bytes accepted (absolute)
    skip: int = 0  # re-sent client bytes still to drop after a resume
    out: bytearray = field(default_factory=bytearray)  # echo bytes not yet acked
    out_base: int = 0
    changed: trio.Event = field(default_factory=trio.Event)

    def poke(self) -> None:
        ev, self.changed = self.changed, trio.Event()
        ev.set()

    @property
    def reported(self) -> int:
        """The write ack to report: what the client's current stream has reached."""
        return self.in_count - self.skip


@dataclass
class CorpRelayV1:
    cut_every: int | None = None
    cuts: int = 0
    port: int = 0
    sessions: dict[str, Session] = field(default_factory=dict)
    proxy_requests: list[str] = field(default_factory=list)
    connects: list[dict[str, str]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    cut_count: int = 0
    client_headers_seen: set[int] = field(default_factory=set)
    max_in: int = 0

    async def start(self, nursery: trio.Nursery) -> int:
        listeners = await nursery.start(partial(trio.serve_tcp, self._handle, 0, host="127.0.0.1"))
        self.port = listeners[0].socket.getsockname()[1]
        return self.port

    def _decide(self, holder: dict[str, Any]) -> Any:
        def decide(proto: ServerProtocol, request: Request) -> Response:
            parts = urllib.parse.urlsplit(request.path)
            query = dict(urllib.parse.parse_qsl(parts.query))
            if parts.path == "/proxy":
                self.proxy_requests.append(request.path)
                sid = secrets.token_hex(8)
                self.sessions[sid] = Session(sid, query["host"], int(query["port"]))
                body = sid.encode()
                headers = Headers([("Content-Length", str(len(body))), ("Connection", "close")])
                return Response(200, "OK", headers, body)
            if parts.path == "/connect" and query.get("sid") in self.sessions:
                self.connects.append(query)
                holder.update(query)
                return proto.accept(request)
            return proto.reject(410, "gone\n")

        return decide

    async def _handle(self, stream: trio.SocketStream) -> None:
        holder: dict[str, Any] = {}
        try:
            ws, _ = await accept(stream, self._decide(holder))
            if ws is None:
                return
            session = self.sessions[holder["sid"]]
            await self._serve(ws, stream, session, int(holder["ack"]), int(holder["pos"]))
        except trio.BrokenResourceError:
            pass
        finally:
            await trio.aclose_forcefully(stream)

    async def _serve(
        self, ws: WebSocket, stream: trio.SocketStream, s: Session, ack: int, pos: int
    ) -> None:
        # Where the client stands, from the 24-bit values of the URL.
        client_read = s.out_base + ((ack - s.out_base) & MASK)
        if client_read > s.out_base + len(s.out):
            self.violations.append(f"ack {ack} beyond what was sent")
            return
        del s.out[: client_read - s.out_base]
        s.out_base = client_read
        resend_from = s.in_count - ((s.in_count - pos) & MASK)
        s.skip = s.in_count - resend_from
        sent = [s.out_base]
        received_here = [0]

        async def writer() -> None:
            reported = -1
            while True:
                end = s.out_base + len(s.out)
                if sent[0] < end:
                    start = sent[0] - s.out_base
                    chunk = bytes(s.out[start : start + CHUNK])
                    sent[0] += len(chunk)
                    reported = s.reported
                    await ws.send_binary(struct.pack(">I", reported & MASK) + chunk)
                elif s.reported != reported:
                    reported = s.reported
                    await ws.send_binary(struct.pack(">I", reported & MASK))
                else:
                    await s.changed.wait()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ws.flusher)
            nursery.start_soon(writer)
            while True:
                msg = await ws.recv_message()
                if msg is None:
                    break
                is_text, raw = msg
                # a header-only message is a pure ack (a client that has nothing to send)
                if is_text or len(raw) < 4 or len(raw) > 32768:
                    self.violations.append(f"bad client message: text={is_text} len={len(raw)}")
                    continue
                (head,) = struct.unpack_from(">I", raw)
                if head > MASK:
                    self.violations.append(f"client header {head:#x} is not 24-bit")
                self.client_headers_seen.add(head)
                read = s.out_base + ((head - s.out_base) & MASK)
                if read > sent[0]:
                    self.violations.append(f"client read count {read} beyond sent {sent[0]}")
                else:
                    del s.out[: read - s.out_base]
                    s.out_base = read
                payload = raw[4:]
                if s.skip:
                    drop = min(s.skip, len(payload))
                    s.skip -= drop
                    payload = payload[drop:]
                s.in_count += len(payload)
                s.out += payload
                self.max_in = max(self.max_in, s.in_count)
                received_here[0] += len(raw) - 4
                s.poke()
                if (
                    self.cut_every is not None
                    and self.cut_count < self.cuts
                    and received_here[0] >= self.cut_every
                ):
                    self.cut_count += 1
                    stream.socket.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    break
            nursery.cancel_scope.cancel()
