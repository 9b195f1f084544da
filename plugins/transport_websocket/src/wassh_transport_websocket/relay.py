"""The trio side of a relay socket: one task per connection, one driver per protocol.

A driver opens the relay (``open``: raises ``RelayError`` with the errno the
guest's connect must see), then moves bytes between the WebSocket and the
socket's ``RelayConnection`` (``run``: returns the errno that ends the stream,
0 for a clean end of stream). Reconnects happen inside ``run`` and are invisible
to the socket layer.

Flow control never couples the two directions (docs/relay-protocols.md, "Flow
control"): the drivers of protocols with acknowledgements read the WebSocket at
all times, because the acks that free the guest's send buffer arrive there, and
hold back their own acks while the guest leaves too much unread; only websockify,
which has no acks, stops reading. Every WebSocket is watched by a keepalive, and
a lost one is given up after at most ``reconnect_budget`` seconds.
"""

from __future__ import annotations

import errno
import logging
import struct
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from . import v4
from .connection import RelayConnection
from .settings import RelaySettings, next_backoff
from .wsconn import HandshakeError, WebSocket, connect, open_stream

log = logging.getLogger("wassh.relay")

WEBSOCKIFY_CHUNK = 65536
V1_CHUNK = 32764
V1_MASK = 0xFFFFFF
CLEAN_CODES = (1000, 1005)
# How often a websockify reader that stopped reading looks at its TCP connection.
PARKED_CHECK = 0.5
# corp-relay: a header-only ack goes out once this much is owed, or after this delay.
PURE_ACK_BYTES = 64 << 10
PURE_ACK_DELAY = 0.01


class RelayError(Exception):
    def __init__(self, err: int, message: str) -> None:
        super().__init__(message)
        self.errno = err


class Fatal(Exception):
    """The relay broke the protocol: the connection ends with ECONNRESET, no resume."""


def _describe_end(ws: WebSocket) -> str:
    if ws.end == "close":
        return f"server closed socket: [{ws.close_code}] {ws.close_reason}"
    return ws.end_detail or (ws.end or "ended")


class Driver:
    """Base: the parts every protocol shares."""

    name = "relay"

    def __init__(
        self, settings: RelaySettings, conn: RelayConnection, host: str, port: int
    ) -> None:
        self.settings = settings
        self.conn = conn
        self.host = host
        self.port = port
        self.ws: WebSocket | None = None
        self.label = f"{self.name} {host}:{port}"
        # Acks held back while the guest leaves more than the high-water mark unread.
        self.withholding = False
        self._withheld = trio.Event()

    async def _connect(
        self,
        url: str,
        subprotocols: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> WebSocket:
        s = self.settings
        secure = url.lower().startswith("wss:")
        return await connect(
            url,
            headers={**s.headers, **(headers or {})},
            subprotocols=subprotocols,
            ssl_context=s.ssl_context() if secure else None,
            max_size=s.max_message,
        )

    async def open(self) -> None:
        raise NotImplementedError

    async def run(self) -> int:
        raise NotImplementedError

    async def aclose(self) -> None:
        if self.ws is not None:
            await self.ws.aclose()

    def _fatal_log(self, what: str) -> None:
        log.error("relay %s: %s; closing this connection (ECONNRESET)", self.label, what)

    async def _reader(self, ws: WebSocket) -> int | None:
        raise NotImplementedError

    async def _writer(self, ws: WebSocket) -> None:
        raise NotImplementedError

    # -- receive-side flow control (protocols with acks) ---------------------------------
    def _may_ack(self) -> bool:
        """After a delivery: may the bytes received so far be acknowledged now?

        Above the high-water mark the acks wait until the guest has read down to the
        low-water mark, so that a relay which windows its output stops sending. A
        relay that goes on regardless is cut off at ``recv_limit`` unread bytes.
        """
        conn = self.conn
        unread = conn.rlen
        if unread > self.settings.recv_limit:
            raise Fatal(
                f"the relay ignored the flow-control window: the guest has {unread} unread"
                f" bytes, more than relay_recv_limit ({self.settings.recv_limit})"
            )
        if self.withholding:
            return False
        if unread > conn.recv_high:
            self.withholding = True
            self._withheld.set()
            return False
        return True

    def _ack_now(self, ws: WebSocket) -> None:
        """Acknowledge everything received (the guest has drained its buffer)."""
        raise NotImplementedError

    async def _release_acks(self, ws: WebSocket) -> None:
        conn = self.conn
        while True:
            if not self.withholding:
                self._withheld = trio.Event()
                await self._withheld.wait()
            await conn.wait_drained()
            self.withholding = False
            self._ack_now(ws)

    def _nothing_unacked(self) -> bool:
        """The relay has acknowledged all we sent: it has no reason not to read us."""
        conn = self.conn
        with conn.lock:
            return conn.sent <= conn.acked

    def _side_tasks(self, ws: WebSocket) -> list[Callable[[], Awaitable[None]]]:
        """Tasks that run next to the reader of one WebSocket."""
        s = self.settings
        return [
            ws.flusher,
            lambda: self._writer(ws),
            lambda: self._release_acks(ws),
            lambda: ws.keepalive(s.keepalive, s.keepalive_timeout, self._nothing_unacked),
        ]

    async def _pump(self, ws: WebSocket) -> int | None:
        """Move bytes until the socket ends; None means "lost, try to resume"."""
        result: list[int | None] = []
        async with trio.open_nursery() as nursery:
            for task in self._side_tasks(ws):
                nursery.start_soon(task)
            try:
                result.append(await self._reader(ws))
            except Fatal as exc:
                self._fatal_log(str(exc))
                await ws.send_close(1002, "protocol error")
                result.append(errno.ECONNRESET)
            nursery.cancel_scope.cancel()
        return result[0]

    # -- reconnects ---------------------------------------------------------------------
    def _give_up(self, why: str) -> int:
        log.warning("relay %s: %s; giving up (ECONNRESET)", self.label, why)
        return errno.ECONNRESET

    async def _attempt(
        self, deadline: float, attempt: Callable[..., Awaitable[bool]], *args: Any
    ) -> bool:
        """One reconnect attempt, cut short at the deadline (a relay host that does not
        answer leaves a TCP connect or a handshake pending for minutes)."""
        with trio.move_on_at(deadline):
            return await attempt(*args)
        return False


# ---------------------------------------------------------------------------------------
# websockify: raw bytes in binary messages
# ---------------------------------------------------------------------------------------


class Websockify(Driver):
    name = "websockify"

    async def open(self) -> None:
        url = self.settings.websockify_url(self.host, self.port)
        try:
            self.ws = await self._connect(url)
        except HandshakeError as exc:
            raise RelayError(errno.ENETUNREACH, f"{url}: {exc}") from exc

    async def run(self) -> int:
        assert self.ws is not None
        ws = self.ws
        s = self.settings
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ws.flusher)
            nursery.start_soon(self._writer, ws)
            # No acks: whether the relay ought to answer is unknowable, so only a
            # host that stopped acknowledging at the TCP level counts as gone.
            nursery.start_soon(ws.keepalive, s.keepalive, s.keepalive_timeout, lambda: False)
            result = await self._reader(ws)
            nursery.cancel_scope.cancel()
        return result

    async def _wait_room(self, ws: WebSocket) -> None:
        """Stop reading while the guest's buffer is full: websockify's back-pressure is
        the TCP stream itself. A relay that dies meanwhile still ends the stream."""
        conn = self.conn
        while not conn.below_high():
            with trio.move_on_after(PARKED_CHECK):
                await conn.wait_recv_room()
                return
            if ws.peer_gone():
                return  # what is left to read is bounded by the kernel's buffer

    async def _reader(self, ws: WebSocket) -> int:
        conn = self.conn
        while True:
            await self._wait_room(ws)
            msg = await ws.recv_message()
            if msg is None:
                break
            is_text, data = msg
            if is_text:
                self._fatal_log("text message from a websockify relay")
                await ws.send_close(1003, "text frames are not supported")
                return errno.ECONNRESET
            conn.deliver(data)
        if ws.end == "close":
            code = ws.close_code
            if code in CLEAN_CODES or conn.guest_closed:
                return 0
            log.info("relay %s: %s", self.label, _describe_end(ws))
            return errno.ECONNREFUSED if code == 1011 else errno.ECONNRESET
        if ws.end == "malformed":
            self._fatal_log(ws.end_detail)
        else:
            log.warning("relay %s: %s", self.label, _describe_end(ws))
        return errno.ECONNRESET

    async def _writer(self, ws: WebSocket) -> None:
        conn = self.conn
        try:
            while await conn.wait_unsent():
                await ws.send_binary(conn.take_unsent(WEBSOCKIFY_CHUNK, release=True))
            await ws.send_close(1000)
        except trio.BrokenResourceError:
            return


# ---------------------------------------------------------------------------------------
# corp-relay-v4: tagged commands, 64-bit acks, transparent reconnect
# ---------------------------------------------------------------------------------------


class CorpRelayV4(Driver):
    name = "corp-relay-v4"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.sid: str | None = None
        self.read_count = 0  # R
        self._acked = trio.Event()
        self._resync: int | None = None  # RECONNECT_SUCCESS value, once it arrived
        self.eof_ext = False  # the relay understands the half-close extension

    async def _open_ws(self, url: str) -> WebSocket:
        ws = await self._connect(url, ["ssh"], {v4.EXT_HEADER: "eof"})
        if ws.subprotocol != "ssh":
            await ws.aclose()
            raise HandshakeError("relay did not select the 'ssh' subprotocol")
        headers = ws.response_headers
        self.eof_ext = headers is not None and headers.get(v4.EXT_HEADER, "") == "eof"
        return ws

    async def open(self) -> None:
        url = self.settings.v4_connect_url(self.host, self.port)
        try:
            self.ws = await self._open_ws(url)
        except HandshakeError as exc:
            raise RelayError(errno.ENETUNREACH, f"{url}: {exc}") from exc
        # Connect completes at CONNECT_SUCCESS (or the first DATA), so that a relay
        # refusing the destination reaches the guest as ECONNREFUSED.
        ws = self.ws
        while self.sid is None and self.read_count == 0:
            msg = await ws.recv_message()
            if msg is None:
                if ws.end == "malformed":
                    self._fatal_log(ws.end_detail)
                if ws.end == "lost":
                    raise RelayError(errno.ECONNRESET, f"relay lost: {_describe_end(ws)}")
                raise RelayError(errno.ECONNREFUSED, f"relay refused: {_describe_end(ws)}")
            try:
                await self._handle(ws, msg)
            except Fatal as exc:
                await ws.aclose()
                raise RelayError(errno.ECONNREFUSED, f"relay broke the protocol: {exc}") from exc

    async def _handle(self, ws: WebSocket, msg: tuple[bool, bytes]) -> None:
        is_text, raw = msg
        if is_text:
            raise Fatal("text message on a corp-relay-v4 socket")
        try:
            tag, value = v4.parse(raw)
        except v4.CommandError as exc:
            raise Fatal(f"malformed command: {exc}") from exc
        conn = self.conn
        if tag == v4.DATA:
            assert isinstance(value, bytes)
            conn.deliver(value)
            self.read_count += len(value)
            if self._may_ack():
                ws.queue_binary(v4.ack(self.read_count))  # sent by the flusher, in order
        elif tag == v4.ACK:
            assert isinstance(value, int)
            self._ack(value)
        elif tag == v4.CONNECT_SUCCESS:
            assert isinstance(value, str)
            self.sid = value
        elif tag == v4.RECONNECT_SUCCESS:
            assert isinstance(value, int)
            self._ack(value, resync=True)
            self._resync = value
        # Unknown tags are ignored, so that relays can extend the protocol.

    def _ack_now(self, ws: WebSocket) -> None:
        ws.queue_binary(v4.ack(self.read_count))

    def _ack(self, a: int, resync: bool = False) -> None:
        conn = self.conn
        with conn.lock:
            wa, s = conn.acked, conn.sent
        if a < wa:
            raise Fatal(f"reverse ack {a} < {wa}")
        if a > s:
            raise Fatal(f"ack {a} beyond the {s} bytes sent")
        if a > wa:
            conn.release(a)
        if resync:
            conn.rewind(a)
        ev, self._acked = self._acked, trio.Event()
        ev.set()

    async def run(self) -> int:
        assert self.ws is not None
        s = self.settings
        while True:
            ws = self.ws
            assert ws is not None
            end = await self._pump(ws)
            await ws.aclose()
            if end is not None:
                return end
            # the WebSocket was lost uncleanly
            if self.conn.guest_closed and self.conn.all_acked():
                return 0
            if not s.resume or self.sid is None:
                log.warning("relay %s: %s; no resume", self.label, _describe_end(ws))
                return errno.ECONNRESET
            log.info("relay %s: %s; reconnecting", self.label, _describe_end(ws))
            err = await self._reconnect()
            if err:
                return err

    async def _reconnect(self) -> int:
        """Open a new WebSocket for the session: 0, or the errno that ends the stream."""
        s = self.settings
        deadline = trio.current_time() + s.reconnect_budget
        for failures in range(s.max_reconnects + 1):
            if failures == s.max_reconnects:
                return self._give_up(f"{failures} reconnects failed")
            if trio.current_time() + s.reconnect_delay >= deadline:
                return self._give_up(f"no reconnect within {s.reconnect_budget:g} s")
            await trio.sleep(s.reconnect_delay)
            assert self.sid is not None
            url = s.v4_reconnect_url(self.sid, self.read_count)
            opened: list[WebSocket] = []
            try:
                ok = await self._attempt(deadline, self._resume_on, url, opened)
            except Fatal as exc:
                for new in opened:
                    await new.aclose()
                self._fatal_log(str(exc))
                return errno.ECONNRESET
            if ok:
                self.ws = opened[0]
                return 0
            for new in opened:
                if new.end == "close":
                    await new.aclose()
                    log.warning("relay %s: %s", self.label, _describe_end(new))
                    return errno.ECONNRESET
                await new.aclose()
        return self._give_up("no reconnect")  # not reached: the loop returns

    async def _resume_on(self, url: str, opened: list[WebSocket]) -> bool:
        try:
            new = await self._open_ws(url)
        except HandshakeError as exc:
            log.info("relay %s: reconnect failed: %s", self.label, exc)
            return False
        opened.append(new)
        self._resync = None
        return await self._await_resync(new)

    async def _await_resync(self, ws: WebSocket) -> bool:
        """On a new socket send nothing before RECONNECT_SUCCESS: it says where to resume."""
        while self._resync is None:
            msg = await ws.recv_message()
            if msg is None:
                if ws.end == "malformed":
                    raise Fatal(ws.end_detail)
                return False
            await self._handle(ws, msg)
        return True

    async def _reader(self, ws: WebSocket) -> int | None:
        conn = self.conn
        while True:
            msg = await ws.recv_message()
            if msg is None:
                break
            await self._handle(ws, msg)
        if ws.end == "close":
            if conn.guest_closed or ws.close_code in CLEAN_CODES:
                return 0
            log.info("relay %s: %s", self.label, _describe_end(ws))
            return errno.ECONNRESET
        if ws.end == "malformed":
            self._fatal_log(ws.end_detail)
            return errno.ECONNRESET
        return None

    async def _writer(self, ws: WebSocket) -> None:
        conn = self.conn
        try:
            while await conn.wait_unsent(stop_on_shut=True):
                data = conn.take_unsent(4 * v4.MAX_CLIENT_DATA, release=False)
                frames = [
                    v4.data(data[i : i + v4.MAX_CLIENT_DATA])
                    for i in range(0, len(data), v4.MAX_CLIENT_DATA)
                ]
                await ws.send_binaries(frames)
            if conn.shut_wr and not conn.guest_closed:
                # shutdown(SHUT_WR): tell a relay that understands it (again after a
                # reconnect: it is idempotent), then wait for the guest's close.
                if self.eof_ext:
                    await ws.send_binary(v4.eof(conn.total))
                while await conn.wait_unsent():
                    pass  # the core refuses writes after shutdown: only the close is left
            # The guest closed: wait (bounded by the task's deadline) for the acks,
            # then end the session with a clean close.
            while not conn.all_acked():
                await self._acked.wait()
            await ws.send_close(1000)
        except trio.BrokenResourceError:
            return


# ---------------------------------------------------------------------------------------
# corp-relay (v1): /proxy, then /connect with a 24-bit ack header on every message
# ---------------------------------------------------------------------------------------


async def http_get(url: str, headers: dict[str, str], settings: RelaySettings) -> tuple[int, bytes]:
    """A minimal HTTP/1.1 GET (Connection: close) over trio; returns (status, body)."""
    import urllib.parse

    from websockets.http11 import Response
    from websockets.streams import StreamReader

    parts = urllib.parse.urlsplit(url)
    secure = parts.scheme == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    stream = await open_stream(host, port, secure, settings.ssl_context() if secure else None)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        await stream.send_all(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        reader = StreamReader()
        parser = Response.parse(reader.read_line, reader.read_exact, reader.read_to_eof)
        next(parser)
        while True:
            data = await stream.receive_some(65536)
            if data:
                reader.feed_data(data)
            else:
                reader.feed_eof()
            try:
                next(parser)
            except StopIteration as done:
                response: Response = done.value
                return response.status_code, bytes(response.body)
            if not data:
                raise HandshakeError("connection closed before the HTTP response ended")
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
        raise HandshakeError(f"HTTP request failed: {exc}") from exc
    except (EOFError, ValueError) as exc:
        raise HandshakeError(f"bad HTTP response: {exc}") from exc
    finally:
        await trio.aclose_forcefully(stream)


class CorpRelay(Driver):
    name = "corp-relay"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.sid = ""
        self.read_count = 0  # R (absolute; mod 2**24 on the wire)
        self.ack_pos = 0  # the read count the relay may be told (R unless withholding)
        self.told = 0  # the read count last put on the wire
        self.attempts = 0
        self._just_resumed = False
        self._acked = trio.Event()
        self._ack_due = trio.Event()

    async def open(self) -> None:
        s = self.settings
        url = s.v1_proxy_url(self.host, self.port)
        try:
            status, body = await http_get(url, s.headers, s)
        except HandshakeError as exc:
            raise RelayError(errno.ENETUNREACH, f"{url}: {exc}") from exc
        if status != 200:
            raise RelayError(errno.ENETUNREACH, f"{url}: relay answered HTTP {status}")
        self.sid = body.decode("utf-8", "replace").strip()
        url = s.v1_connect_url(self.sid, 0, 0, 1 if s.report_connect_attempts else None)
        try:
            self.ws = await self._connect(url)
        except HandshakeError as exc:
            raise RelayError(errno.ENETUNREACH, f"{url}: {exc}") from exc

    def _handle(self, raw: bytes) -> None:
        if len(raw) < 4:
            log.warning("relay %s: ignoring a %d-byte message", self.label, len(raw))
            return
        (w,) = struct.unpack_from(">I", raw, 0)
        if w > V1_MASK:
            raise Fatal(f"error ack {w:#x} from the relay")
        conn = self.conn
        with conn.lock:
            wa, sent, total = conn.acked, conn.sent, conn.total
        delta = (w - wa) & V1_MASK
        just_resumed, self._just_resumed = self._just_resumed, False
        if delta > sent - wa:
            # Only right after a resume, before anything was re-sent, may the relay
            # tell its true position through its ack (docs/relay-protocols.md).
            if not (just_resumed and sent == wa and wa + delta <= total):
                raise Fatal(f"ack {w} is beyond the {sent - wa} bytes in flight")
            conn.release(wa + delta)
            conn.rewind(wa + delta)
        elif delta:
            conn.release(wa + delta)
        if delta:
            ev, self._acked = self._acked, trio.Event()
            ev.set()
        if len(raw) > 4:
            payload = raw[4:]
            conn.deliver(payload)
            self.read_count += len(payload)
            if self.settings.pure_acks and self.read_count - self.told > V1_MASK:
                # The relay could no longer tell our 24-bit acks apart: it ignored
                # the acks it was given (without pure acks it can have none).
                raise Fatal(f"the relay sent {self.read_count - self.told} bytes unacknowledged")
            if self._may_ack():
                self._ack_now(None)

    def _ack_now(self, ws: WebSocket | None) -> None:
        self.ack_pos = self.read_count
        self._ack_due.set()

    def _header(self) -> bytes:
        """The ack header of the next message; call it just before queueing the message,
        with no wait in between, so that headers go out in increasing order."""
        self.told = self.ack_pos
        return struct.pack(">I", self.ack_pos & V1_MASK)

    async def _pure_acks(self, ws: WebSocket) -> None:
        """Acknowledge in a header-only message when no data message does it soon.

        Like TCP's delayed ack: at once when ``PURE_ACK_BYTES`` are owed, otherwise
        after ``PURE_ACK_DELAY`` unless a data message has carried the ack meanwhile.
        """
        try:
            while True:
                await self._ack_due.wait()
                self._ack_due = trio.Event()
                with trio.move_on_after(PURE_ACK_DELAY):
                    while self.ack_pos - self.told < PURE_ACK_BYTES:
                        await self._ack_due.wait()
                        self._ack_due = trio.Event()
                if self.ack_pos != self.told:
                    await ws.send_binary(self._header())
        except trio.BrokenResourceError:
            return  # the reader sees the loss

    def _side_tasks(self, ws: WebSocket) -> list[Callable[[], Awaitable[None]]]:
        tasks = super()._side_tasks(ws)
        if self.settings.pure_acks:
            tasks.append(lambda: self._pure_acks(ws))
        return tasks

    async def run(self) -> int:
        s = self.settings
        while True:
            ws = self.ws
            assert ws is not None
            end = await self._pump(ws)
            await ws.aclose()
            if end is not None:
                return end
            if self.conn.guest_closed and self.conn.all_acked():
                return 0
            if not s.resume:
                log.warning("relay %s: %s; no resume", self.label, _describe_end(ws))
                return errno.ECONNRESET
            log.info("relay %s: %s; reconnecting", self.label, _describe_end(ws))
            err = await self._reconnect()
            if err:
                return err

    async def _reconnect(self) -> int:
        """Reconnect with backoff: 0, or the errno that ends the stream."""
        s = self.settings
        deadline = trio.current_time() + s.reconnect_budget
        backoff = 0
        while True:
            backoff = next_backoff(backoff)
            self.attempts += 1
            if s.max_retries is not None and self.attempts > s.max_retries:
                return self._give_up(f"{s.max_retries} reconnects failed")
            if trio.current_time() + backoff / 1000 >= deadline:
                return self._give_up(f"no reconnect within {s.reconnect_budget:g} s")
            await trio.sleep(backoff / 1000)
            with self.conn.lock:
                wa = self.conn.acked
            url = s.v1_connect_url(
                self.sid,
                self.read_count,
                wa,
                self.attempts if s.report_connect_attempts else None,
            )
            opened: list[WebSocket] = []
            if await self._attempt(deadline, self._connect_into, url, opened):
                break
            for new in opened:
                await new.aclose()
        self.attempts = 0
        if s.retransmit_on_resume:
            self.conn.rewind(wa)  # re-send what the relay did not acknowledge
        self._just_resumed = True
        # The URL told the relay the whole read count.
        self.ack_pos = self.told = self.read_count
        self.ws = opened[0]
        return 0

    async def _connect_into(self, url: str, opened: list[WebSocket]) -> bool:
        try:
            opened.append(await self._connect(url))
        except HandshakeError as exc:
            log.info("relay %s: reconnect failed: %s", self.label, exc)
            return False
        return True

    async def _reader(self, ws: WebSocket) -> int | None:
        conn = self.conn
        while True:
            msg = await ws.recv_message()
            if msg is None:
                break
            is_text, raw = msg
            if is_text:
                raise Fatal("text message from a corp-relay")
            self._handle(raw)
        if ws.end == "malformed":
            self._fatal_log(ws.end_detail)
            return errno.ECONNRESET
        if ws.end == "close":
            code = ws.close_code
            if code in CLEAN_CODES or conn.guest_closed:
                return 0  # the relay ended the session
            if not self.settings.resume:
                log.warning("relay %s: %s", self.label, _describe_end(ws))
                return errno.ECONNRESET
        return None  # lost, or closed with an error code: resume when enabled

    async def _writer(self, ws: WebSocket) -> None:
        conn = self.conn
        try:
            while await conn.wait_unsent():
                data = conn.take_unsent(4 * V1_CHUNK, release=False)
                head = self._header()
                frames = [head + data[i : i + V1_CHUNK] for i in range(0, len(data), V1_CHUNK)]
                await ws.send_binaries(frames)
            while not conn.all_acked():
                await self._acked.wait()
            await ws.send_close(1000)
        except trio.BrokenResourceError:
            return


DRIVERS: dict[str, Callable[..., Driver]] = {
    "websockify": Websockify,
    "corp-relay": CorpRelay,
    "corp-relay-v4": CorpRelayV4,
}


# ---------------------------------------------------------------------------------------
# The task of one relay socket
# ---------------------------------------------------------------------------------------


class RelaySocket:
    """``transport_state`` of a relay socket: its buffers, its driver and its task's scope."""

    __slots__ = ("active", "active_lock", "claim", "conn", "driver", "port", "scope")

    def __init__(
        self,
        conn: RelayConnection,
        driver: Driver,
        port: int,
        claim: Any,
        active: set[Any],
        active_lock: threading.Lock,
    ) -> None:
        self.conn = conn
        self.driver = driver
        self.port = port
        self.claim = claim
        self.scope = trio.CancelScope()
        self.active = active
        self.active_lock = active_lock

    def close(self) -> None:
        """Guest thread: the last descriptor is gone."""
        self.conn.guest_close(self._on_guest_close)

    def _on_guest_close(self) -> None:
        """Trio thread: cancel a connect in progress, or flush and close (bounded)."""
        if not self.conn.connected:
            self.scope.cancel()
            return
        # Shielded: the flush and the close handshake finish even when the loop's
        # nursery is cancelled because the guest has exited; the deadline bounds them.
        self.scope.shield = True
        self.scope.deadline = trio.current_time() + self.driver.settings.close_timeout


def start_connection(
    portal: Any,
    settings: RelaySettings,
    claim: Any,
    host: str,
    port: int,
    active: set[Any],
    active_lock: threading.Lock,
) -> RelaySocket:
    """Guest thread: build the socket's state and start its task on the portal's loop."""
    conn = RelayConnection(portal.token)
    driver = DRIVERS[settings.protocol](settings, conn, host, port)
    state = RelaySocket(conn, driver, port, claim, active, active_lock)
    with active_lock:
        active.add(conn)
    try:
        portal.start_soon(run_connection, state)
    except BaseException:
        with active_lock:
            active.discard(conn)
        conn.guest_close(lambda: None)
        raise
    return state


async def _open(driver: Driver) -> None:
    """``driver.open()``, bounded like a TCP connect (a relay may never answer)."""
    timeout = driver.settings.connect_timeout
    with trio.move_on_after(timeout):
        await driver.open()
        return
    raise RelayError(errno.ETIMEDOUT, f"no answer from the relay within {timeout:g} s")


async def run_connection(state: RelaySocket) -> None:
    """The relay socket's trio task: open, then move bytes until the stream ends."""
    conn, driver = state.conn, state.driver
    try:
        with state.scope:
            try:
                await _open(driver)
            except RelayError as exc:
                log.warning("relay %s: connect failed: %s", driver.label, exc)
                conn.mark_connect_failed(exc.errno)
                return
            state.claim.succeeded = True
            log.info("relay %s: connected", driver.label)
            conn.mark_connected()
            err = await driver.run()
            conn.finish(err)
    except Exception as exc:  # a relay bug must not take the embedder's nursery down
        log.exception("relay %s: unexpected error: %s", driver.label, exc)
    finally:
        if not conn.connect_done:
            conn.mark_connect_failed(errno.ENETUNREACH)
        conn.finish(errno.ECONNRESET)  # no-op when the stream has ended already
        with trio.CancelScope(shield=True):
            try:
                await driver.aclose()
            except Exception:
                pass
        conn.done.set()
        with state.active_lock:
            state.active.discard(conn)
