"""corp-relay (v1): ``/proxy``, then ``/connect`` with a 24-bit ack header on every message."""

from __future__ import annotations

import errno
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from .connection import split
from .driver import CLEAN_CODES, Driver, Fatal, RelayError, describe_end, log
from .settings import RelaySettings, next_backoff
from .wsconn import HandshakeError, WebSocket, open_stream

V1_CHUNK = 32764
V1_MASK = 0xFFFFFF
# A header-only ack goes out once this much is owed, or after this delay.
PURE_ACK_BYTES = 64 << 10
PURE_ACK_DELAY = 0.01


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
        return await self._pump_and_resume()

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
        self.ack_pos = self.told = self.granted = self.read_count
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
            if code in CLEAN_CODES or conn.closing:
                return 0  # the relay ended the session
            if not self.settings.resume:
                log.warning("relay %s: %s", self.label, describe_end(ws))
                return errno.ECONNRESET
        return None  # lost, or closed with an error code: resume when enabled

    async def _writer(self, ws: WebSocket) -> None:
        conn = self.conn
        try:
            while await conn.wait_unsent():
                pieces = conn.take_unsent(4 * V1_CHUNK, release=False)
                head = self._header()
                await ws.send_messages([head, *m] for m in split(pieces, V1_CHUNK))
            await self._linger()  # closing: the acks, for a bounded time
            await ws.send_close(1000)
        except trio.BrokenResourceError:
            return
