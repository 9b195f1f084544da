"""WebSockets on trio streams, driven through the ``websockets`` Sans-I/O protocol.

One ``WebSocket`` wraps a trio stream (plain TCP or ``trio.SSLStream``) and a
``websockets`` ``ClientProtocol``/``ServerProtocol``. Exactly one task reads
(``recv_message``); any task may send (a lock keeps frames whole and in order).
When the message stream ends, ``end`` tells how: a close frame from the peer
(``"close"``, with ``close_code``/``close_reason``), the connection lost without
one (``"lost"``), or a frame the protocol rejected — garbage, a bad opcode, an
oversized message (``"malformed"``, with the parser's reason).

``keepalive`` notices a peer that vanished without closing (a host that stopped
answering: no FIN, no reset) and ends the stream as ``"lost"``.

Whole binary messages in single frames, what relays move by the gigabyte, are
framed and parsed here, not by the protocol: frames are received into one buffer
per WebSocket and parsed in place, a message costs one copy (the masking, or the
payload taken out), and large writes go to the kernel as they are (sendmsg).
Every other frame (text, fragments, control frames, anything malformed) goes
through the protocol, one whole frame at a time, so it decides on it as if it had
seen every frame; our frames join the protocol's output queue, in order.
"""

from __future__ import annotations

import array
import fcntl
import logging
import secrets
import socket
import ssl
import struct
import termios
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeAlias

import trio
from websockets.client import ClientProtocol
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus, PayloadTooBig
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import CLOSED, OPEN, Protocol, Side
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

try:  # the C masking of ``websockets.speedups`` (what the protocol itself uses)
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - a build without the extension
    from websockets.utils import apply_mask

RECV_SIZE = 1 << 18  # the receive buffer of a WebSocket through which bytes stream
RECV_MIN = 1 << 14  # ... and of one that carries small messages
GATHER_MIN = 1 << 16  # writes at least this large go out as they are (sendmsg), not joined
_IOV_MAX = 1024
DEFAULT_MAX_MESSAGE = 1 << 20

Buffer: TypeAlias = "bytes | bytearray | memoryview"

# The frames the fast path takes: FIN + binary, no reserved bits. Anything else
# (text, fragments, control frames, garbage) goes through the protocol.
_FIN_BINARY = 0x82
_VALID_OPCODES = frozenset({0x0, 0x1, 0x2, 0x8, 0x9, 0xA})
_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")
_HEAD_END = b"\r\n\r\n"

_NET_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)

# Linux ``struct tcp_info``: the state is its first byte; tcpi_last_ack_recv (ms since
# the peer last acknowledged anything) is the u32 at offset 56.
_TCP_INFO_LEN = 104
_TCP_ESTABLISHED = 1
_LAST_ACK_RECV = struct.Struct("=I")
_LAST_ACK_RECV_AT = 56

_quiet = logging.getLogger("wassh.relay.websockets")
_quiet.setLevel(logging.WARNING)


class HandshakeError(Exception):
    """The WebSocket could not be opened (network, TLS or HTTP)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


async def send_parts(stream: trio.abc.Stream, parts: Sequence[Buffer]) -> None:
    """Send ``parts`` in order: gathered by the kernel (sendmsg, no join) when they are
    large and the stream is plain TCP."""
    if (
        len(parts) == 1
        or sum(map(len, parts)) < GATHER_MIN
        or not isinstance(stream, trio.SocketStream)
    ):
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        if data:
            await stream.send_all(data)
        return
    views = [memoryview(p) for p in parts if p]
    i = 0
    while i < len(views):
        sent: int = await stream.socket.sendmsg(views[i : i + _IOV_MAX])
        while sent:
            size = len(views[i])
            if sent < size:
                views[i] = views[i][sent:]
                break
            sent -= size
            i += 1


class WebSocket:
    """A message-oriented WebSocket over a trio stream."""

    def __init__(
        self,
        stream: trio.abc.Stream,
        protocol: Protocol,
        *,
        max_size: int | None = DEFAULT_MAX_MESSAGE,
    ) -> None:
        self.stream = stream
        self.protocol = protocol
        self.max_size = max_size  # as given to the protocol (the fast path checks it too)
        self._send_lock = trio.Lock()
        self._events: deque[Any] = deque()
        self._fragments: list[bytes] | None = None
        self._fragment_text = False
        self.end: str | None = None  # "close", "lost", "malformed" once the stream ended
        self.end_detail = ""
        self.subprotocol: str | None = protocol.subprotocol
        self._kick = trio.Event()
        self.flusher_active = False
        self.response_headers: Headers | None = None  # the server's 101 (client side)
        # Frames received and not parsed yet: _rbuf[_rstart:_rend].
        self._rbuf = bytearray()
        self._rstart = self._rend = 0
        self._filled = False  # the last receive filled the buffer
        self._sock = stream.socket if isinstance(stream, trio.SocketStream) else None
        self._fast = True  # off for good once the protocol was given bytes past a frame
        self._in_head = True  # the handshake's HTTP head is still arriving
        self._head_tail = b""
        self._masks = protocol.side is Side.CLIENT  # our frames are masked
        self._masked = not self._masks  # the peer's frames must be
        try:
            self.last_rx = trio.current_time()  # when bytes last arrived
        except RuntimeError:
            self.last_rx = 0.0

    # -- sending ------------------------------------------------------------------------
    async def _flush(self) -> None:
        """Send everything the protocol has queued, including what others queue meanwhile."""
        async with self._send_lock:
            while True:
                writes = self.protocol.data_to_send()
                if not writes:
                    return
                eof = False
                if writes[-1] == b"":
                    writes.pop()
                    eof = True
                await send_parts(self.stream, writes)
                if eof and isinstance(self.stream, trio.abc.HalfCloseableStream):
                    try:
                        await self.stream.send_eof()
                    except _NET_ERRORS:
                        pass

    async def flusher(self) -> None:
        """Send what the reader side queues (acks, pongs, the echo of a close frame).

        Run it next to a reader so the reader never waits for the network to take
        bytes: a reader blocked on a send can deadlock two relays whose buffers
        are full in both directions.
        """
        self.flusher_active = True
        try:
            while True:
                await self._kick.wait()
                self._kick = trio.Event()
                try:
                    await self._flush()
                except _NET_ERRORS:
                    return
        finally:
            self.flusher_active = False

    def _queue(self, parts: Sequence[Buffer]) -> None:
        """Queue one binary message made of ``parts`` behind what the protocol queued.

        The frame goes into the protocol's own output, so it keeps its place among
        the protocol's frames (pongs, a close frame). Masking a part with the key
        rotated by the part's offset masks the message as one piece, without joining.
        """
        length = sum(len(p) for p in parts)
        mask_bit = 0x80 if self._masks else 0
        if length < 126:
            head = bytes((_FIN_BINARY, mask_bit | length))
        elif length < 65536:
            head = bytes((_FIN_BINARY, mask_bit | 126)) + _U16.pack(length)
        else:
            head = bytes((_FIN_BINARY, mask_bit | 127)) + _U64.pack(length)
        writes = self.protocol.writes
        if not self._masks:
            writes.append(head)
            writes.extend(p if isinstance(p, bytes) else bytes(p) for p in parts)
            return
        key = secrets.token_bytes(4)
        writes.append(head + key)
        offset = 0
        for part in parts:
            turn = offset & 3
            writes.append(apply_mask(part, key[turn:] + key[:turn] if turn else key))
            offset += len(part)

    def queue_binary(self, data: Buffer) -> None:
        """Queue a binary message for the flusher (never blocks; dropped once closing)."""
        if self.protocol.state is OPEN:
            self._queue((data,))
            self._kick.set()

    async def _flush_from_reader(self) -> None:
        if not self.protocol.writes:
            return
        if self.flusher_active or self._send_lock.locked():
            self._kick.set()  # the flusher, or the lock holder's loop, sends it
            return
        try:
            await self._flush()
        except _NET_ERRORS:
            pass

    async def send_messages(self, messages: Iterable[Sequence[Buffer]]) -> None:
        """Send binary messages, each given as the parts it is made of, with one write.

        Raises ``trio.BrokenResourceError`` when the link is gone.
        """
        if self.protocol.state is not OPEN:
            raise trio.BrokenResourceError("websocket is closing")
        for parts in messages:
            self._queue(parts)
        try:
            await self._flush()
        except (trio.ClosedResourceError, OSError) as exc:
            raise trio.BrokenResourceError(str(exc)) from exc

    async def send_binary(self, data: Buffer) -> None:
        """Send one binary message; raises ``trio.BrokenResourceError`` when the link is gone."""
        await self.send_messages(((data,),))

    async def send_binaries(self, payloads: Sequence[Buffer]) -> None:
        """Send several binary messages with one write."""
        await self.send_messages((p,) for p in payloads)

    async def send_text(self, text: str) -> None:
        if self.protocol.state is not OPEN:
            raise trio.BrokenResourceError("websocket is closing")
        self.protocol.send_text(text.encode())
        try:
            await self._flush()
        except (trio.ClosedResourceError, OSError) as exc:
            raise trio.BrokenResourceError(str(exc)) from exc

    async def send_close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake (no-op when it has started already)."""
        if self.protocol.state is OPEN:
            self.protocol.send_close(code, reason)
            try:
                await self._flush()
            except _NET_ERRORS:
                pass

    async def aclose(self) -> None:
        """Close the connection: what is queued (the echo of a close frame) goes out first,
        if the network takes it within a second; no waiting for the peer."""
        if self.protocol.writes and not self._send_lock.locked():
            with trio.move_on_after(1.0):
                try:
                    await self._flush()
                except _NET_ERRORS:
                    pass
        await trio.aclose_forcefully(self.stream)

    # -- receiving ----------------------------------------------------------------------
    def _feed(self, data: bytes | bytearray) -> None:
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        self._events.extend(self.protocol.events_received())

    def _feed_handshake(self, data: bytes | bytearray) -> None:
        """Bytes of the opening handshake: the HTTP head goes to the protocol, and what
        follows it (frames sent right behind) waits for the frame parser.

        Used until the protocol has the request or response (``handshake_done``); a
        refusal's body, if any, goes to the protocol too.
        """
        if not data or not self._in_head:
            self._feed(data)
            return
        probe = self._head_tail + data
        end = probe.find(_HEAD_END)
        if end < 0:
            self._head_tail = probe[-3:]
            self._feed(data)
            return
        cut = end + len(_HEAD_END) - len(self._head_tail)
        self._in_head = False
        self._feed(data[:cut])
        head_done = any(isinstance(e, (Request, Response)) for e in self._events)
        if head_done and (self.protocol.state is OPEN or isinstance(self.protocol, ServerProtocol)):
            rest = memoryview(data)[cut:]
            self._rbuf[:] = rest
            self._rend = len(rest)
            return
        self._feed(data[cut:])  # not a 101 yet: the rest is the protocol's
        self._fast = False

    def _finish(self) -> None:
        if self.end is not None:
            return
        proto = self.protocol
        exc = proto.parser_exc
        if exc is not None and not isinstance(exc, EOFError):
            self.end = "malformed"
            if isinstance(exc, PayloadTooBig):
                self.end_detail = f"oversized frame: {exc}"
            else:
                self.end_detail = f"malformed frame: {exc}"
        elif proto.close_rcvd is not None:
            self.end = "close"
        else:
            self.end = "lost"
            self.end_detail = self.end_detail or "connection lost without a close frame"

    @property
    def close_code(self) -> int | None:
        rcvd = self.protocol.close_rcvd
        return int(rcvd.code) if rcvd is not None else None

    @property
    def close_reason(self) -> str:
        rcvd = self.protocol.close_rcvd
        return rcvd.reason if rcvd is not None else ""

    # The receive buffer: frames arrive in _rbuf[_rstart:_rend] (by recv_into on a plain
    # TCP stream) and are parsed in place; only a payload is copied out (unmasked).
    def _buffered(self) -> int:
        return self._rend - self._rstart

    def _consume(self, n: int) -> bytes:
        start = self._rstart
        self._rstart += n
        if self._rstart == self._rend:
            self._rstart = self._rend = 0
        with memoryview(self._rbuf) as view:
            return bytes(view[start : start + n])

    def _to_protocol(self, n: int | None) -> None:
        """Give the protocol the next frame (``n`` bytes), or everything (None: a header
        it will refuse, or the end of the stream); from then on it gets everything."""
        if n is None:
            n = self._buffered()
            self._fast = False
        if n:
            self._feed(self._consume(n))

    def _next_frame(self) -> bytes | int:
        """Parse the next buffered frame: a plain binary message's payload (bytes);
        0 when a frame went to the protocol (its events are queued); otherwise the
        number of bytes the frame needs (buffered ones included)."""
        avail = self._rend - self._rstart
        if avail < 2:
            return 2
        buf, p = self._rbuf, self._rstart
        b0, b1 = buf[p], buf[p + 1]
        length = b1 & 0x7F
        head = 2 if length < 126 else 4 if length == 126 else 10
        if (b1 & 0x80 != 0) != self._masked or b0 & 0x70 or b0 & 0x0F not in _VALID_OPCODES:
            self._to_protocol(None)  # the protocol refuses it: wrong masking, bad bits
            return 0
        if avail < head:
            return head
        if length == 126:
            (length,) = _U16.unpack_from(buf, p + 2)
        elif length == 127:
            (length,) = _U64.unpack_from(buf, p + 2)
        if self.max_size is not None and length > self.max_size:
            self._to_protocol(None)  # too big: refused from the header alone
            return 0
        key_at = p + head
        if self._masked:
            head += 4
        total = head + length
        if avail < total:
            return total
        if b0 != _FIN_BINARY or self._fragments is not None or self.protocol.state is not OPEN:
            self._to_protocol(total)
            return 0
        self._rstart += total
        if self._rstart == self._rend:
            self._rstart = self._rend = 0
        with memoryview(buf) as view:
            payload = view[p + head : p + total]
            if not self._masked:
                return bytes(payload)
            return apply_mask(payload, bytes(view[key_at : key_at + 4]))

    async def _receive(self, need: int) -> int:
        """Receive into the buffer, with room for at least ``need`` buffered bytes; the
        number of bytes received (0: the end of the stream).

        The buffer starts at ``RECV_MIN`` and doubles (up to ``RECV_SIZE``) each time
        a receive fills it. A frame larger than that gets twice its size, so that a
        frame arriving behind it needs no move to the front; once empty, a buffer
        grown past ``4 * RECV_SIZE`` goes back to ``RECV_SIZE``.
        """
        have = self._rend - self._rstart
        size = len(self._rbuf)
        want = max(RECV_MIN, min(2 * size, RECV_SIZE) if self._filled else 0, size)
        if need > want:
            want = 2 * need
        elif not have and want > 4 * RECV_SIZE:
            want = RECV_SIZE
        if want != size:
            fresh = bytearray(want)
            fresh[:have] = memoryview(self._rbuf)[self._rstart : self._rend]
            self._rbuf, self._rstart, self._rend = fresh, 0, have
        elif self._rstart and size - self._rend < max(RECV_MIN, need - have):
            with memoryview(self._rbuf) as view:  # the partial frame to the front
                view[:have] = view[self._rstart : self._rend]
            self._rstart, self._rend = 0, have
        sock = self._sock
        with memoryview(self._rbuf)[self._rend :] as room:
            if sock is not None:
                n: int = await sock.recv_into(room)
            else:
                data = await self.stream.receive_some(len(room))
                n = len(data)
                room[:n] = data
            self._filled = n == len(room)
        self._rend += n
        return n

    async def recv_message(self) -> tuple[bool, bytes] | None:
        """The next message as ``(is_text, payload)``; None once the stream has ended."""
        while True:
            events = self._events
            while events:
                ev = events.popleft()
                if not isinstance(ev, Frame):
                    continue
                op = ev.opcode
                if op is Opcode.BINARY or op is Opcode.TEXT:
                    if ev.fin:
                        return op is Opcode.TEXT, bytes(ev.data)
                    self._fragments = [bytes(ev.data)]
                    self._fragment_text = op is Opcode.TEXT
                elif op is Opcode.CONT:
                    if self._fragments is not None:
                        self._fragments.append(bytes(ev.data))
                        if ev.fin:
                            parts, self._fragments = self._fragments, None
                            return self._fragment_text, b"".join(parts)
                elif op is Opcode.CLOSE:
                    self._finish()
                    return None
            if self.end is not None:
                return None
            proto = self.protocol
            if proto.parser_exc is not None or proto.state is CLOSED:
                self._finish()
                return None
            need = 1
            if self._fast:
                got = self._next_frame()
                if isinstance(got, bytes):
                    return False, got
                if not got:  # a frame went to the protocol
                    self._events.extend(proto.events_received())
                    await self._flush_from_reader()  # pongs, the echo of a close frame
                    continue
                need = got
            try:
                received = await self._receive(need)
            except _NET_ERRORS as exc:
                self.end_detail = self.end_detail or f"connection lost: {exc or type(exc).__name__}"
                received = 0
            if received:
                self.last_rx = trio.current_time()
                if self._fast:
                    continue
            try:
                self._to_protocol(None)  # what arrived, or a partial frame before the end
                if not received:
                    self._feed(b"")
            except EOFError:
                self._finish()
                return None
            await self._flush_from_reader()  # pongs, the echo of a close frame

    # -- liveness -------------------------------------------------------------------------
    def _tcp(self) -> Any:
        """The TCP socket under the stream (TLS or not), or None."""
        stream: Any = self.stream
        if isinstance(stream, trio.SSLStream):
            stream = stream.transport_stream
        return getattr(stream, "socket", None)

    def peer_gone(self) -> bool:
        """The TCP connection is no longer established: the peer sent FIN or a reset
        (or this side aborted it). Tells without reading any data."""
        sock = self._tcp()
        if sock is None:
            return False
        try:
            info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LEN)
        except OSError:
            return True
        return bool(info) and info[0] != _TCP_ESTABLISHED

    def host_silent(self, seconds: float) -> bool:
        """Our bytes wait for the peer's TCP acknowledgement and none came for ``seconds``.

        A live host acknowledges what arrives, and answers window probes even when
        its application stops reading; only a host that is gone (or cut off) stays
        silent with bytes outstanding.
        """
        sock = self._tcp()
        if sock is None:
            return False
        try:
            info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LEN)
            outq = array.array("i", [0])
            fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, outq)
        except OSError:
            return False
        if len(info) < _LAST_ACK_RECV_AT + 4 or outq[0] <= 0:
            return False
        (since_ack,) = _LAST_ACK_RECV.unpack_from(info, _LAST_ACK_RECV_AT)
        return bool(since_ack >= seconds * 1000)

    def abort(self, why: str) -> None:
        """End the connection now: the reader sees the end of the stream, ``end_detail`` why."""
        self.end_detail = why
        sock = self._tcp()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    async def keepalive(self, idle: float, timeout: float, answer_due: Callable[[], bool]) -> None:
        """Ping a quiet peer and give the connection up when the peer has stopped answering.

        After ``idle`` seconds with nothing received a ping goes out; when ``timeout``
        more seconds bring nothing, the connection is aborted if the peer's host no
        longer acknowledges our bytes at all (``host_silent``), or if ``answer_due()``
        says the peer has no reason not to read us (a protocol with acknowledgements:
        nothing of ours is unacknowledged). A peer that is alive but not reading
        because its own destination does not read is left alone, as TCP leaves it.
        Returns when the stream ends (or cannot ping any more).
        """
        if idle <= 0:
            return
        while self.end is None:
            quiet = trio.current_time() - self.last_rx
            if quiet < idle:
                await trio.sleep(idle - quiet)
                continue
            if self.protocol.state is not OPEN:
                return
            self.protocol.send_ping(b"wassh")
            self._kick.set()
            pinged = trio.current_time()
            await trio.sleep(timeout)
            if self.last_rx >= pinged or self.end is not None:
                continue
            if answer_due() or self.host_silent(timeout):
                silent = trio.current_time() - self.last_rx
                self.abort(f"no answer from the relay for {silent:.1f} s")
                return

    async def wait_closed(self, timeout: float) -> None:
        """After ``send_close`` with no reader task: wait (bounded) for the peer's answer."""
        with trio.move_on_after(timeout):
            while await self.recv_message() is not None:
                pass


# ---------------------------------------------------------------------------------------
# Client side
# ---------------------------------------------------------------------------------------


def ssl_context_for(ca_file: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
    return ctx


async def open_stream(
    host: str, port: int, secure: bool, ssl_context: ssl.SSLContext | None
) -> trio.abc.Stream:
    """TCP (and TLS) to ``host:port``; errors become ``HandshakeError``."""
    try:
        tcp = await trio.open_tcp_stream(host, port)
    except OSError as exc:
        raise HandshakeError(f"cannot reach {host}:{port}: {exc.strerror or exc}") from exc
    try:
        tcp.setsockopt(6, 1, 1)  # TCP_NODELAY: frames are small and latency matters
    except OSError:
        pass
    if not secure:
        return tcp
    ctx = ssl_context or ssl_context_for(None)
    tls = trio.SSLStream(tcp, ctx, server_hostname=host, https_compatible=True)
    try:
        await tls.do_handshake()
    except trio.BrokenResourceError as exc:
        await trio.aclose_forcefully(tcp)
        cause = exc.__cause__ or exc
        raise HandshakeError(f"TLS handshake with {host}:{port} failed: {cause}") from exc
    except BaseException:
        await trio.aclose_forcefully(tcp)
        raise
    return tls


async def connect(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    subprotocols: Sequence[str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    max_size: int | None = DEFAULT_MAX_MESSAGE,
) -> WebSocket:
    """Open a client WebSocket; returns once the server answered 101."""
    try:
        uri = parse_uri(url)
    except Exception as exc:
        raise HandshakeError(f"bad relay URL {url!r}: {exc}") from exc
    stream = await open_stream(uri.host, uri.port, uri.secure, ssl_context)
    protos = [Subprotocol(s) for s in subprotocols] if subprotocols else None
    proto = ClientProtocol(uri, subprotocols=protos, max_size=max_size, logger=_quiet)
    ws = WebSocket(stream, proto, max_size=max_size)
    try:
        request = proto.connect()
        for key, value in (headers or {}).items():
            request.headers[key] = value
        request.headers.setdefault("User-Agent", "wassh-relay-client")
        proto.send_request(request)
        await ws._flush()
        while True:
            data = await stream.receive_some(RECV_SIZE)
            ws._feed_handshake(data)
            if proto.handshake_exc is not None:
                failure = proto.handshake_exc
                if isinstance(failure, InvalidStatus):
                    status = failure.response.status_code
                    raise HandshakeError(f"relay answered HTTP {status}", status)
                raise HandshakeError(f"WebSocket handshake failed: {failure}")
            if any(isinstance(e, Response) for e in ws._events):
                while ws._events and not isinstance(ws._events[0], Response):
                    ws._events.popleft()
                ws.response_headers = ws._events.popleft().headers
                break
            if not data:
                raise HandshakeError("relay closed the connection during the handshake")
    except _NET_ERRORS as exc:
        await trio.aclose_forcefully(stream)
        raise HandshakeError(f"connection lost during the handshake: {exc}") from exc
    except BaseException:  # a refusal, or a deadline: the stream must not leak
        await trio.aclose_forcefully(stream)
        raise
    ws.subprotocol = proto.subprotocol
    return ws


# ---------------------------------------------------------------------------------------
# Server side
# ---------------------------------------------------------------------------------------

Decide = Callable[[ServerProtocol, Request], Response]


async def accept(
    stream: trio.abc.Stream,
    decide: Decide,
    *,
    max_size: int | None = DEFAULT_MAX_MESSAGE,
    subprotocols: Sequence[str] | None = None,
    timeout: float = 10.0,
) -> tuple[WebSocket | None, Request | None]:
    """Read the handshake request and answer it with ``decide(protocol, request)``.

    ``decide`` returns ``protocol.accept(request)`` (possibly amended) or
    ``protocol.reject(status, text)``. Returns ``(None, request)`` when rejected.
    """
    protos = [Subprotocol(s) for s in subprotocols] if subprotocols else None
    proto = ServerProtocol(max_size=max_size, subprotocols=protos, logger=_quiet)
    ws = WebSocket(stream, proto, max_size=max_size)
    request: Request | None = None
    with trio.move_on_after(timeout):
        while request is None:
            try:
                data = await stream.receive_some(RECV_SIZE)
            except _NET_ERRORS:
                return None, None
            ws._feed_handshake(data)
            for i, ev in enumerate(ws._events):
                if isinstance(ev, Request):
                    request = ev
                    del ws._events[i]
                    break
            if request is None and (not data or proto.handshake_exc is not None):
                try:
                    await ws._flush()
                except _NET_ERRORS:
                    pass
                return None, None
    if request is None:
        return None, None
    response = decide(proto, request)
    proto.send_response(response)
    try:
        await ws._flush()
    except _NET_ERRORS:
        return None, request
    if response.status_code != 101:
        return None, request
    ws.subprotocol = proto.subprotocol
    return ws, request


__all__ = [
    "DEFAULT_MAX_MESSAGE",
    "HandshakeError",
    "Headers",
    "WebSocket",
    "accept",
    "connect",
    "open_stream",
    "ssl_context_for",
]
