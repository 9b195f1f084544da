"""websockify: raw bytes in binary messages; back-pressure is the TCP stream's own."""

from __future__ import annotations

import errno

import trio

from .connection import split
from .driver import CLEAN_CODES, Driver, RelayError, describe_end, log
from .wsconn import HandshakeError, WebSocket

WEBSOCKIFY_CHUNK = 65536  # what websockify itself moves fastest
SEND_BATCH = 4 * WEBSOCKIFY_CHUNK  # handed to the WebSocket in one write
# How often a websockify reader that stopped reading looks at its TCP connection.
PARKED_CHECK = 0.5


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
        # Defined on every path (see ``Driver._pump``): a reset unless the reader ends.
        end = errno.ECONNRESET
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ws.flusher)
            nursery.start_soon(self._writer, ws)
            # No acks: whether the relay ought to answer is unknowable, so only a
            # host that stopped acknowledging at the TCP level counts as gone.
            nursery.start_soon(ws.keepalive, s.keepalive, s.keepalive_timeout, lambda: False)
            end = await self._reader(ws)
            nursery.cancel_scope.cancel()
        return end

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
            if code in CLEAN_CODES or conn.closing:
                return 0
            log.info("relay %s: %s", self.label, describe_end(ws))
            return errno.ECONNREFUSED if code == 1011 else errno.ECONNRESET
        if ws.end == "malformed":
            self._fatal_log(ws.end_detail)
        else:
            log.warning("relay %s: %s", self.label, describe_end(ws))
        return errno.ECONNRESET

    async def _writer(self, ws: WebSocket) -> None:
        conn = self.conn
        try:
            while await conn.wait_unsent():
                pieces = conn.take_unsent(SEND_BATCH, release=True)
                await ws.send_messages(split(pieces, WEBSOCKIFY_CHUNK))
            await ws.send_close(1000)
        except trio.BrokenResourceError:
            return
