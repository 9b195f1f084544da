"""corp-relay-v4: tagged commands, 64-bit acks, transparent reconnect."""

from __future__ import annotations

import errno
from typing import Any

import trio

from . import v4
from .connection import split
from .driver import CLEAN_CODES, Driver, Fatal, RelayError, describe_end, log
from .wsconn import HandshakeError, WebSocket

# The largest DATA payload this client sends to a relay that takes more than
# 16 KiB, and how much it hands to the WebSocket in one write.
MAX_DATA = 1 << 18
SEND_BATCH = 1 << 20


class CorpRelayV4(Driver):
    name = "corp-relay-v4"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.sid: str | None = None
        self.read_count = 0  # R
        self._resync: int | None = None  # RECONNECT_SUCCESS value, once it arrived
        self.eof_ext = False  # the relay understands the half-close extension
        self.max_data = v4.MAX_CLIENT_DATA  # payload bytes in one DATA (what the relay takes)

    async def _open_ws(self, url: str) -> WebSocket:
        ws = await self._connect(url, ["ssh"], {v4.EXT_HEADER: v4.EXT_OFFER})
        if ws.subprotocol != "ssh":
            await ws.aclose()
            raise HandshakeError("relay did not select the 'ssh' subprotocol")
        headers = ws.response_headers
        answer = headers.get(v4.EXT_HEADER, "") if headers is not None else ""
        self.eof_ext, data = v4.parse_ext(answer)
        # What the relay takes, up to what this side frames in one go; the same
        # after a reconnect, which may reach a relay that takes less.
        self.max_data = min(data, MAX_DATA)
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
                    raise RelayError(errno.ECONNRESET, f"relay lost: {describe_end(ws)}")
                raise RelayError(errno.ECONNREFUSED, f"relay refused: {describe_end(ws)}")
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
        if resync:
            # RECONNECT_SUCCESS counts the bytes the relay holds, which includes what
            # it has queued but not yet written to the target; its ACKs count only
            # the bytes written, so the next one may be below this value. Releasing
            # here would turn that ACK into a "reverse ack" and would let the relay's
            # queue grow past our send window: resend from here, release on its ACKs.
            conn.rewind(a)
            return
        if a > wa:
            conn.release(a)
        ev, self._acked = self._acked, trio.Event()
        ev.set()

    def _can_resume(self) -> bool:
        return self.settings.resume and self.sid is not None

    async def run(self) -> int:
        return await self._pump_and_resume()

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
                self.granted = self.read_count  # the URL's ack= told the relay all of it
                return 0
            for new in opened:
                if new.end == "close":
                    await new.aclose()
                    log.warning("relay %s: %s", self.label, describe_end(new))
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
            if conn.closing or ws.close_code in CLEAN_CODES:
                return 0
            log.info("relay %s: %s", self.label, describe_end(ws))
            return errno.ECONNRESET
        if ws.end == "malformed":
            self._fatal_log(ws.end_detail)
            return errno.ECONNRESET
        return None

    async def _writer(self, ws: WebSocket) -> None:
        conn = self.conn
        try:
            while await conn.wait_unsent(stop_on_shut=True):
                pieces = conn.take_unsent(SEND_BATCH, release=False)
                await ws.send_messages(
                    [v4.data_header(sum(map(len, m))), *m] for m in split(pieces, self.max_data)
                )
            if conn.shut_wr and not conn.closing:
                # shutdown(SHUT_WR): tell a relay that understands it (again after a
                # reconnect: it is idempotent), then wait for the guest's close.
                if self.eof_ext:
                    await ws.send_binary(v4.eof(conn.total))
                while await conn.wait_unsent():
                    pass  # the core refuses writes after shutdown: only the close is left
            # Closing: wait (bounded) for the acks, then end the session with a clean
            # close, which the relay takes as the end of the session for good.
            await self._linger()
            await ws.send_close(1000)
        except trio.BrokenResourceError:
            return
