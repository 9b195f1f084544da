"""corp-relay-v4 sessions in ``wassh relay``: the target connection and what survives reconnects.

A session outlives its WebSocket: after an unclean drop the target connection
stays up for ``--resume-timeout`` seconds, the bytes the client has not
acknowledged stay in a bounded replay buffer (``--replay-buffer``), and a
reconnect resumes both directions exactly where they were.

The session id is ``INSTANCE.SECRET``. SECRET is the capability to resume: 192
random bits, looked up by the digest of the whole id, never in the log (``tag``,
a fingerprint, is), and resuming also takes the token that opened the session.
INSTANCE is the relay's ``--instance-id``: public routing information for a load
balancer in front of several relays, which sends a reconnect to the relay
holding the session by that prefix. It adds nothing to the secret and takes
nothing from it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import trio

from . import v4
from .server_auth import Credential
from .server_limits import IdleTimer, Slot
from .server_log import JsonLog, fingerprint
from .wsconn import WebSocket, send_parts

SERVER_CHUNK = 65536
# Client bytes queued for the target. The relay acknowledges bytes only once they
# are written to the target, so a client's send window bounds this queue; the cap
# only stops clients that do not wait for acks.
TARGET_QUEUE_MAX = 8 << 20
# Acks of the client's bytes go out once ACK_STEP more bytes are written to the
# target, or ACK_DELAY after the first unacknowledged write, or with the next DATA
# to the client: one ack per target write would cost a send per write.
ACK_STEP = 1 << 18
ACK_DELAY = 0.001
# How long a client has to answer our close frame before the connection is dropped.
CLOSE_WAIT = 2.0
NET_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


SECRET_BYTES = 24  # 192 bits, whatever the instance part


def new_sid(instance: str) -> str:
    """``INSTANCE.SECRET``: "." is in no instance id and in no URL-safe base64, and a client
    never percent-encodes it, so a load balancer can match the prefix as sent."""
    return f"{instance}.{secrets.token_urlsafe(SECRET_BYTES)}"


def sid_instance(sid: str) -> str:
    """The instance part of a session id ("" when it has none)."""
    instance, dot, _ = sid.partition(".")
    return instance if dot else ""


def sid_key(sid: str) -> bytes:
    return hashlib.sha256(sid.encode("ascii", "replace")).digest()


async def flush_queued(ws: WebSocket) -> None:
    """Let what is queued (the answer to a close frame) go out before the tasks are cancelled.

    The flusher may hold bytes it took from the protocol: cancelling it mid-send
    would lose them, so wait for the send lock (bounded), then send the rest.
    """
    with trio.move_on_after(CLOSE_WAIT):
        try:
            await ws._flush()
        except NET_ERRORS:
            pass


def close_reason(text: str) -> str:
    """A close frame's reason: at most 123 bytes of UTF-8."""
    raw = text.encode()
    return text if len(raw) <= 120 else raw[:120].decode(errors="ignore")


@dataclass
class SessionSettings:
    replay_buffer: int
    resume_timeout: float
    idle_timeout: float


class Session:
    """One v4 session: the target connection and the state that survives reconnects."""

    def __init__(
        self,
        sid: str,
        target: trio.abc.Stream,
        dest: str,
        *,
        owner: Credential,
        slot: Slot,
        settings: SessionSettings,
        log: JsonLog,
        registry: dict[bytes, Session],
    ) -> None:
        self.key = sid_key(sid)
        self.tag = fingerprint(sid)
        self.target = target
        self.dest = dest
        self.owner = owner
        self.slot = slot
        self.settings = settings
        self.log = log
        self.registry = registry
        self.in_count = 0  # client bytes accepted (what RECONNECT_SUCCESS reports)
        self.written = 0  # client bytes written to the target (what ACK reports)
        self.to_target: list[memoryview] = []  # DATA payloads not written to the target yet
        self.to_target_len = 0
        self.out_buf = bytearray()  # server->client bytes the client has not acknowledged
        self.out_base = 0  # absolute position of out_buf[0]
        self.target_eof = False
        self.reason = ""  # why the session ends: the first cause wins
        self.close_code = 1000
        self.client_done = False  # the client closed the session cleanly
        self.client_eof_at: int | None = None  # wassh extension: the client shut down writing
        self.target_shut = False
        self.ended = trio.Event()
        self._changed = trio.Event()  # wakes writers: data, acks, end
        self._attach_scope: trio.CancelScope | None = None
        self._attach_done: trio.Event | None = None
        self.detached_at: float | None = trio.current_time()
        self.reconnects = 0
        self.started = trio.current_time()
        self.idle = IdleTimer(settings.idle_timeout)
        registry[self.key] = self

    def _poke(self) -> None:
        ev, self._changed = self._changed, trio.Event()
        ev.set()

    async def _wait(self) -> None:
        await self._changed.wait()

    def end(self, reason: str, code: int = 1011) -> None:
        """End the session: the attached client (if any) gets a close frame with ``code``."""
        if not self.reason:
            self.reason = reason
            self.close_code = code
        self.ended.set()
        self._poke()

    # -- session lifetime tasks -----------------------------------------------------------
    async def run(self) -> None:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._target_reader)
                nursery.start_soon(self._target_writer)
                nursery.start_soon(self._expiry)
                nursery.start_soon(self._idle_watch)
                await self.ended.wait()
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(self.target)
                # The attached client has CLOSE_WAIT to answer the close frame.
                done = self._attach_done
                if done is not None:
                    with trio.move_on_after(CLOSE_WAIT):
                        await done.wait()
                    if self._attach_scope is not None:
                        self._attach_scope.cancel()
            self.registry.pop(self.key, None)
            self.slot.release()
            self.log.info(
                "v4_session_end",
                session=self.tag,
                dest=self.dest,
                to_target=self.in_count,
                to_client=self.out_base + len(self.out_buf),
                reconnects=self.reconnects,
                seconds=round(trio.current_time() - self.started, 3),
                reason=self.reason or "ended",
            )

    async def _target_reader(self) -> None:
        limit = self.settings.replay_buffer
        while True:
            while len(self.out_buf) >= limit:
                await self._wait()
            try:
                data = await self.target.receive_some(SERVER_CHUNK)
            except NET_ERRORS as exc:
                if not self.reason:
                    self.reason, self.close_code = f"target error: {exc}", 1014
                data = b""
            if not data:
                self.target_eof = True
                self._poke()
                return
            self.idle.touch()
            self.out_buf += data
            self._poke()

    async def _send_target_eof(self) -> None:
        self.target_shut = True
        if isinstance(self.target, trio.abc.HalfCloseableStream):
            try:
                await self.target.send_eof()
            except NET_ERRORS:
                pass

    async def _target_writer(self) -> None:
        while True:
            while not self.to_target:
                eof_due = self.client_eof_at is not None and self.written >= self.client_eof_at
                if eof_due and not self.target_shut:
                    await self._send_target_eof()
                if self.client_done:
                    if not self.target_shut:
                        await self._send_target_eof()
                    self.end("client closed", 1000)
                    return
                await self._wait()
            parts, self.to_target = self.to_target, []
            size, self.to_target_len = self.to_target_len, 0
            self._poke()
            try:
                await send_parts(self.target, parts)
            except NET_ERRORS as exc:
                self.target_eof = True
                self.end(f"target error: {exc}", 1014)
                return
            self.written += size
            self._poke()

    async def _expiry(self) -> None:
        timeout = self.settings.resume_timeout
        while True:
            if self.detached_at is not None:
                left = self.detached_at + timeout - trio.current_time()
                if left <= 0:
                    self.end("resume timeout")
                    return
                with trio.move_on_after(left):
                    await self._wait()
            else:
                await self._wait()

    async def _idle_watch(self) -> None:
        await self.idle.expired()
        self.end(f"idle timeout ({self.settings.idle_timeout:g} s)", 1001)

    # -- one WebSocket at a time ----------------------------------------------------------
    async def attach(self, ws: WebSocket, resume_ack: int | None) -> None:
        """Serve this session over ``ws`` until the WebSocket ends."""
        if self._attach_scope is not None and self._attach_done is not None:
            self._attach_scope.cancel()  # a reconnect replaces a half-dead socket
            await self._attach_done.wait()
        scope = trio.CancelScope()
        done = trio.Event()
        self._attach_scope, self._attach_done = scope, done
        self.detached_at = None
        self._poke()
        try:
            with scope:
                out_sent = self.out_base
                if resume_ack is not None:
                    end = self.out_base + len(self.out_buf)
                    if not self.out_base <= resume_ack <= end:
                        self.log.warning(
                            "v4_bad_reconnect", session=self.tag, ack=resume_ack, base=self.out_base
                        )
                        await ws.send_close(1002, "bad ack")
                        await ws.wait_closed(CLOSE_WAIT)
                        return
                    del self.out_buf[: resume_ack - self.out_base]
                    self.out_base = out_sent = resume_ack
                    self.reconnects += 1
                    await ws.send_binary(v4.reconnect_success(self.in_count))
                await self._serve(ws, out_sent)
        except trio.BrokenResourceError:
            pass
        finally:
            if self._attach_scope is scope:
                self._attach_scope = self._attach_done = None
                if not self.ended.is_set():
                    self.detached_at = trio.current_time()
                    self._poke()
            done.set()

    async def _serve(self, ws: WebSocket, out_sent: int) -> None:
        sent = [out_sent]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ws.flusher)
            nursery.start_soon(self._ws_writer, ws, sent)
            reason = await self._ws_reader(ws, sent)
            await flush_queued(ws)
            nursery.cancel_scope.cancel()
        if reason == "clean":
            self.client_done = True
            self._poke()
        elif reason and not self.ended.is_set():
            self.log.info("v4_ws_end", session=self.tag, reason=reason)

    async def _ws_reader(self, ws: WebSocket, sent: list[int]) -> str:
        while True:
            while self.to_target_len >= TARGET_QUEUE_MAX:
                await self._wait()
            msg = await ws.recv_message()
            if msg is None:
                break
            is_text, raw = msg
            try:
                if is_text:
                    raise v4.CommandError("text message")
                tag, value = v4.parse(raw, view=True)
            except v4.CommandError as exc:
                self.log.warning("v4_client_error", session=self.tag, error=str(exc))
                self.end(f"client protocol error: {exc}", 1002)
                await ws.send_close(1002, "malformed command")
                return f"malformed: {exc}"
            if tag == v4.DATA:
                assert isinstance(value, memoryview)
                if value:
                    self.idle.touch()
                    self.to_target.append(value)
                    self.to_target_len += len(value)
                self.in_count += len(value)
                self._poke()
            elif tag == v4.EOF_EXT:
                assert isinstance(value, int)
                self.client_eof_at = value
                self._poke()
            elif tag == v4.ACK:
                assert isinstance(value, int)
                if not self.out_base <= value <= sent[0]:
                    error = f"client ack {value} outside [{self.out_base}, {sent[0]}]"
                    self.log.warning("v4_client_error", session=self.tag, error=error)
                    self.end(f"client protocol error: {error}", 1002)
                    await ws.send_close(1002, "bad ack")
                    return "bad ack"
                del self.out_buf[: value - self.out_base]
                self.out_base = value
                self._poke()
        if ws.end == "close":
            return "clean" if ws.close_code in (1000, 1005) else f"closed {ws.close_code}"
        if ws.end == "malformed":
            # the protocol has sent its close frame (1002, 1007, 1009): no resume after that
            self.log.warning("v4_client_error", session=self.tag, error=ws.end_detail)
            self.end(f"client protocol error: {ws.end_detail}", 1002)
        return ws.end_detail or "lost"

    async def _ws_writer(self, ws: WebSocket, sent: list[int]) -> None:
        try:
            await self._ws_write_loop(ws, sent)
        except trio.BrokenResourceError:
            return  # the reader sees the loss and ends the attachment

    def _ack_alone(self, acked_sent: int, sent: int) -> bool:
        """Only a small ack is due: nothing to send with it and not much to acknowledge."""
        return (
            0 <= acked_sent < self.written < acked_sent + ACK_STEP
            and sent >= self.out_base + len(self.out_buf)
            and not self.ended.is_set()
        )

    async def _ws_write_loop(self, ws: WebSocket, sent: list[int]) -> None:
        acked_sent = -1
        while True:
            if self.ended.is_set():
                await ws.send_close(self.close_code, close_reason(self.reason or "session ended"))
                return
            frames: list[bytes] = []
            if self._ack_alone(acked_sent, sent[0]):
                # Let the target take more before acknowledging (ACK_DELAY at most).
                with trio.move_on_after(ACK_DELAY):
                    while self._ack_alone(acked_sent, sent[0]):
                        await self._wait()
            if self.written != acked_sent:
                acked_sent = self.written
                frames.append(v4.ack(acked_sent))
            end = self.out_base + len(self.out_buf)
            budget = 4 * SERVER_CHUNK
            while sent[0] < end and budget > 0:
                start = sent[0] - self.out_base
                chunk = bytes(self.out_buf[start : start + min(SERVER_CHUNK, budget)])
                frames.append(v4.data(chunk))
                sent[0] += len(chunk)
                budget -= len(chunk)
            if frames:
                await ws.send_binaries(frames)
                continue
            if self.target_eof and not self.out_buf:
                # Everything the target sent is acknowledged: end the session cleanly.
                self.end(self.reason or "target closed", 1000)
                continue
            await self._wait()
