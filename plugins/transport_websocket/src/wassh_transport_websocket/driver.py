"""What every relay protocol's driver shares: opening, pumping, keepalive, errors.

A driver opens the relay (``open``: raises ``RelayError`` with the errno the
guest's connect must see), then moves bytes between the WebSocket and the
socket's ``RelayConnection`` (``run``: returns the errno that ends the stream,
0 for a clean end of stream). Reconnects happen inside ``run`` and are invisible
to the socket layer.

Closing (the guest closed the socket, or the runtime is stopping): the writer
sends what the guest handed over, waits for the relay's acknowledgements until
``CLOSE_HANDSHAKE`` seconds before the close deadline at most, then sends a close
frame (1000), which ends the relay's session for good; the reader returns once
the relay answers it. The socket's task scope cuts all of it off at the deadline.

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
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from .connection import RelayConnection
from .settings import RelaySettings
from .wsconn import WebSocket, connect

log = logging.getLogger("wassh.relay")

CLEAN_CODES = (1000, 1005)
# The part of ``close_timeout`` kept for the closing handshake: waiting for acks
# stops this long before the deadline (at most half of it), so the close frame
# still goes out and the relay ends the session at once instead of holding it
# for a resume.
CLOSE_HANDSHAKE = 0.5


class RelayError(Exception):
    def __init__(self, err: int, message: str) -> None:
        super().__init__(message)
        self.errno = err


class Fatal(Exception):
    """The relay broke the protocol: the connection ends with ECONNRESET, no resume."""


def describe_end(ws: WebSocket) -> str:
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
        # The read count our acks have let the relay know of, as far as it may know
        # (what it sent past this is what its window governs).
        self.granted = 0
        self._acked = trio.Event()  # set (and replaced) whenever the relay acknowledges
        # While closing: when waiting for the relay's acks stops (``start_closing``).
        self._linger_until: float | None = None
        self._linger_scope: trio.CancelScope | None = None

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

    async def _pump_and_resume(self) -> int:
        """``run`` of the resumable protocols: pump, and reconnect after each unclean loss."""
        while True:
            ws = self.ws
            assert ws is not None
            end = await self._pump(ws)
            await ws.aclose()
            if end is not None:
                return end
            if self.conn.closing and self.conn.all_acked():
                return 0  # lost after everything was delivered: nothing to resume
            if not self._can_resume():
                log.warning("relay %s: %s; no resume", self.label, describe_end(ws))
                return errno.ECONNRESET
            log.info("relay %s: %s; reconnecting", self.label, describe_end(ws))
            err = await self._reconnect()
            if err:
                return err

    def _can_resume(self) -> bool:
        return self.settings.resume

    # -- closing ------------------------------------------------------------------------
    def start_closing(self, deadline: float) -> None:
        """The socket is closing and its task ends by ``deadline`` (trio time): stop
        waiting for acks early enough to end the session with a close frame."""
        handshake = min(CLOSE_HANDSHAKE, self.settings.close_timeout / 2)
        self._linger_until = deadline - handshake
        if self._linger_scope is not None:
            self._linger_scope.deadline = self._linger_until

    async def _linger(self) -> None:
        """While closing: wait until the relay has acknowledged everything it was sent,
        until the linger deadline at most (it may be set only while this waits)."""
        with trio.CancelScope() as scope:
            self._linger_scope = scope
            if self._linger_until is not None:
                scope.deadline = self._linger_until
            try:
                while not self.conn.all_acked():
                    await self._acked.wait()
            finally:
                self._linger_scope = None

    async def _reconnect(self) -> int:
        """Open a new WebSocket for the stream: 0, or the errno that ends it."""
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
        low-water mark, so that a relay which windows its output stops sending.

        Not while the guest's send buffer is full: the guest may be blocked sending,
        waiting for the relay's acks, which can wait for the target, which can wait
        for the relay to read it, which waits for our acks. Then the acks go out, up
        to ``recv_limit`` unread bytes: past that the client stops inviting more, as
        a full TCP receive buffer would (a guest that sends into an echo and never
        reads then stalls, as over TCP).

        A relay is cut off when it goes on regardless: more than ``recv_limit``
        unread, and more than ``recv_limit`` less the high-water mark (the room a
        guest that stops reading leaves a relay) sent past our last ack. Bytes our
        own acks invited never count against it.
        """
        conn = self.conn
        unread = conn.rlen
        limit = self.settings.recv_limit
        if unread > limit and conn.received - self.granted > limit - conn.recv_high:
            raise Fatal(
                f"the relay ignored the flow-control window: the guest has {unread} unread"
                f" bytes, more than the recv_limit setting ({limit}),"
                f" {conn.received - self.granted} of them past our last acknowledgement"
            )
        if self.withholding:
            return False
        if unread > conn.recv_high and not self._send_blocked_below_limit():
            self.withholding = True
            self._withheld.set()
            return False
        self.granted = conn.received
        return True

    def _send_blocked_below_limit(self) -> bool:
        """The guest's send buffer is full and it leaves at most ``recv_limit`` unread."""
        conn = self.conn
        return conn.send_full and conn.rlen <= self.settings.recv_limit

    def _ack_now(self, ws: WebSocket) -> None:
        """Acknowledge everything received (the guest has drained its buffer)."""
        raise NotImplementedError

    async def _release_acks(self, ws: WebSocket) -> None:
        conn = self.conn
        while True:
            if not self.withholding:
                self._withheld = trio.Event()
                await self._withheld.wait()
            await conn.wait_drained(self.settings.recv_limit)
            self.withholding = False
            self.granted = conn.received
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
        # Defined on every path: should a cancellation ever end the reader and be
        # absorbed on the way out, the stream ends with a reset (no resume).
        end: int | None = errno.ECONNRESET
        async with trio.open_nursery() as nursery:
            for task in self._side_tasks(ws):
                nursery.start_soon(task)
            try:
                end = await self._reader(ws)
            except Fatal as exc:
                self._fatal_log(str(exc))
                await ws.send_close(1002, "protocol error")
                end = errno.ECONNRESET
            nursery.cancel_scope.cancel()
        return end

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
