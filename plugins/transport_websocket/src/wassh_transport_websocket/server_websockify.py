"""websockify-style connections in ``wassh relay``: raw bytes in binary messages.

Close codes, as websockify sends them: 1000 "Target closed" once the target's
bytes are all out, 1003 for a text message. The relay adds 1001 for an idle
timeout or a shutdown and 1014 when the target connection breaks. Whoever
closes, the other side has ``CLOSE_WAIT`` seconds to answer the close frame.
"""

from __future__ import annotations

import trio

from .server_limits import IdleTimer
from .server_v4 import CLOSE_WAIT, NET_ERRORS, SERVER_CHUNK, close_reason, flush_queued
from .wsconn import WebSocket


def describe_end(ws: WebSocket) -> str:
    """How the client's side ended, for the log."""
    if ws.end == "close":
        code = ws.close_code
        return "client closed" if code in (1000, 1001, 1005) else f"client closed with {code}"
    return ws.end_detail or "connection lost"


class WebsockifyLink:
    """One client WebSocket joined to one target connection."""

    def __init__(self, ws: WebSocket, target: trio.SocketStream, idle_timeout: float) -> None:
        self.ws = ws
        self.target = target
        self.idle = IdleTimer(idle_timeout)
        self.to_target = 0
        self.to_client = 0
        self.reason = ""  # why it ended: the first cause wins
        self.closing = False
        self._nursery: trio.Nursery | None = None
        self._pending_stop: tuple[int, str] | None = None

    def stop(self, code: int, reason: str) -> None:
        """Close towards the client with ``code`` (idle timeout, shutdown, target gone)."""
        if self.closing:
            return
        self.closing = True
        self.reason = self.reason or reason
        if self._nursery is None:
            self._pending_stop = (code, reason)
        else:
            self._nursery.start_soon(self._close, code, reason)

    async def _close(self, code: int, reason: str) -> None:
        with trio.move_on_after(CLOSE_WAIT):
            await self.ws.send_close(code, close_reason(reason))
            await trio.sleep_forever()  # until the reader sees the answer and ends the link
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    async def run(self) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                if self._pending_stop is not None:
                    nursery.start_soon(self._close, *self._pending_stop)
                nursery.start_soon(self.ws.flusher)
                nursery.start_soon(self._target_to_client)
                nursery.start_soon(self._idle_watch)
                await self._client_to_target()
                await flush_queued(self.ws)
                nursery.cancel_scope.cancel()
        finally:
            self._nursery = None
            await trio.aclose_forcefully(self.target)

    async def _idle_watch(self) -> None:
        await self.idle.expired()
        self.stop(1001, f"idle timeout ({self.idle.seconds:g} s)")

    async def _client_to_target(self) -> None:
        ws = self.ws
        while (msg := await ws.recv_message()) is not None:
            if self.closing:
                continue  # waiting for the answer to our close frame
            is_text, data = msg
            if is_text:
                self.stop(1003, "Unsupported: Text frames are not supported")
                continue
            if not data:
                continue
            self.idle.touch()
            self.to_target += len(data)
            try:
                await self.target.send_all(data)
            except NET_ERRORS as exc:
                self.stop(1014, f"target error: {exc}")
        if not self.reason:
            self.reason = describe_end(ws)
        self.closing = True

    async def _target_to_client(self) -> None:
        while True:
            try:
                data = await self.target.receive_some(SERVER_CHUNK)
            except NET_ERRORS as exc:
                if not self.closing:
                    self.stop(1014, f"target error: {exc}")
                return
            if not data:
                self.stop(1000, "Target closed")
                return
            self.idle.touch()
            self.to_client += len(data)
            try:
                await self.ws.send_binary(data)
            except trio.BrokenResourceError:
                return  # the client is gone or closing: the reader tells which
