"""The state one relay socket shares between the guest thread and the trio loop.

The guest thread (socket hooks) and the relay's trio task meet here, under one
``threading.Lock`` held only for a few list operations:

* receive side: the task appends payload as it arrives (``deliver``); the guest
  copies it out (``recv_into``). Above ``RECV_HIGH`` unread bytes the task holds
  back: for protocols with acknowledgements it keeps reading the WebSocket (the
  acks of the guest's own data travel there) and withholds its acks instead, so
  the relay's window stops the relay; for websockify, whose only back-pressure is
  the TCP stream, it stops reading. Either way it resumes once the guest has
  drained the buffer to ``RECV_LOW`` (``wait_drained``, ``wait_recv_room``).
* send side: the guest's bytes (``send``) stay until the relay acknowledges them:
  ``[acked, total)``, ``unacked`` bytes in blocks; ``sent`` is how far the task
  has handed bytes to a WebSocket. A guest write of ``OWN_BLOCK`` bytes or more
  becomes a block of its own (``bytes``: the task frames views of it, no copy);
  smaller ones collect in a ``bytearray`` block (copied out when taken, as it may
  still grow). Acknowledged blocks are dropped whole, so no byte is moved twice.
  At ``SEND_MAX`` unacknowledged bytes the guest gets ``BlockingIOError`` until
  the relay acknowledges (or, for protocols without acks, until bytes are handed
  to the WebSocket).
* readiness: two eventfds. ``read_fd`` is readable while bytes, end of stream
  or an error are pending; ``write_fd`` while there is room to send (or the
  stream is over, so a blocked writer learns it). The guest thread never waits
  on the trio loop for data that is already here.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import weakref
from collections import deque
from typing import Any

import trio

RECV_HIGH = 1 << 20
RECV_LOW = 1 << 19
SEND_MAX = 4 << 20
SEND_LOW = 1 << 19
OWN_BLOCK = 1 << 14  # a guest write this large is kept as a block of its own
SMALL_BLOCK = 1 << 16  # smaller writes collect in one block up to this size


def split(pieces: list[memoryview], size: int) -> list[list[memoryview]]:
    """``pieces`` (from ``take_unsent``) cut into messages of at most ``size`` bytes."""
    messages: list[list[memoryview]] = []
    current: list[memoryview] = []
    room = size
    for piece in pieces:
        while piece:
            part = piece[:room]
            current.append(part)
            room -= len(part)
            piece = piece[len(part) :]
            if not room:
                messages.append(current)
                current, room = [], size
    if current:
        messages.append(current)
    return messages


class RelayConnection:
    """Buffers, counters and wake-ups of one relay socket."""

    def __init__(
        self,
        token: Any,
        *,
        recv_high: int = RECV_HIGH,
        send_max: int = SEND_MAX,
    ) -> None:
        self.token = token
        self.lock = threading.Lock()
        self.recv_high = recv_high
        self.recv_low = recv_high // 2
        self.send_max = send_max
        self.send_low = send_max // 2
        self.read_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.write_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        # A connection dropped before any guest descriptor held it (a connect that
        # failed early) never sees guest_close(): its eventfds go with it.
        self._release_fds = weakref.finalize(self, _close_fds, self.read_fd, self.write_fd)
        self._r_set = False
        self._w_set = False
        self._fds_closed = False
        # receive side
        self._chunks: deque[bytes] = deque()
        self._off = 0  # consumed bytes of _chunks[0]
        self.rlen = 0
        self.received = 0  # total payload bytes delivered (read count)
        # end of stream: errno (0 = clean EOF) once the stream is over
        self.ended = False
        self.end_errno = 0
        self._error_reported = False
        # connect outcome
        self.connected = False
        self.connect_errno = 0
        self.connect_done = False
        # send side: _blocks hold [acked, total), from offset _head of the first
        self._blocks: deque[bytes | bytearray] = deque()
        self._head = 0
        self.unacked = 0
        self.acked = 0
        # The guest's sends wait for acks: from a full buffer down to the low-water mark.
        self.send_full = False
        self.sent = 0
        self.guest_closed = False
        # The stream is being closed from this side: the guest closed the socket, or the
        # runtime is stopping (``host_close``). The task sends what the guest had handed
        # over, then ends the stream; nothing more is taken from the guest.
        self.closing = False
        self.shut_wr = False
        # trio-side wake-ups (created and awaited on the trio thread only)
        self._reader_parked: trio.Event | None = None
        self._wake_at = self.recv_low  # the parked reader wakes once rlen is down to this
        self._writer_parked: trio.Event | None = None
        self.done = threading.Event()  # the trio task has finished

    # -- eventfd helpers (lock held) -----------------------------------------------------
    def _set_read(self) -> None:
        if not self._r_set and not self._fds_closed:
            os.eventfd_write(self.read_fd, 1)
            self._r_set = True

    def _clear_read(self) -> None:
        if self._r_set and not self._fds_closed:
            try:
                os.eventfd_read(self.read_fd)
            except BlockingIOError:
                pass
            self._r_set = False

    def _set_write(self) -> None:
        if not self._w_set and not self._fds_closed:
            os.eventfd_write(self.write_fd, 1)
            self._w_set = True

    def _clear_write(self) -> None:
        if self._w_set and not self._fds_closed:
            try:
                os.eventfd_read(self.write_fd)
            except BlockingIOError:
                pass
            self._w_set = False

    def _wake_soon(self, event: trio.Event) -> None:
        try:
            self.token.run_sync_soon(event.set)
        except trio.RunFinishedError:
            pass

    # -- guest thread ------------------------------------------------------------------
    def connect_result(self) -> bool:
        """True once connected; raises the connect errno; False while pending."""
        with self.lock:
            if not self.connect_done:
                return False
            if self.connect_errno:
                raise OSError(self.connect_errno, os.strerror(self.connect_errno))
            return True

    def recv_into(self, buf: memoryview, peek: bool) -> int:
        with self.lock:
            if self.rlen == 0:
                if self.ended:
                    if self.end_errno and not self._error_reported:
                        self._error_reported = True
                        err = self.end_errno
                        raise OSError(err, os.strerror(err))
                    return 0
                raise BlockingIOError
            want = len(buf)
            got = 0
            chunks = self._chunks
            off = self._off
            idx = 0
            while got < want and idx < len(chunks):
                chunk = chunks[idx]
                take = min(len(chunk) - off, want - got)
                buf[got : got + take] = chunk[off : off + take]
                got += take
                off += take
                if off == len(chunk):
                    idx += 1
                    off = 0
            if not peek:
                for _ in range(idx):
                    chunks.popleft()
                self._off = off
                self.rlen -= got
                if self.rlen == 0 and not self.ended:
                    self._clear_read()
                parked = self._reader_parked
                if parked is not None and self.rlen <= self._wake_at:
                    self._reader_parked = None
                    self._wake_soon(parked)
            return got

    def send(self, data: memoryview) -> int:
        with self.lock:
            if self.ended or self.closing:
                if self.end_errno and not self._error_reported:
                    self._error_reported = True
                    err = self.end_errno
                    raise OSError(err, os.strerror(err))
                raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))
            room = self.send_max - self.unacked
            if room <= 0:
                raise BlockingIOError
            n = min(room, len(data))
            if not n:
                return 0
            blocks = self._blocks
            if n >= OWN_BLOCK:
                blocks.append(bytes(data[:n]))
            elif blocks and isinstance(blocks[-1], bytearray) and len(blocks[-1]) < SMALL_BLOCK:
                blocks[-1] += data[:n]
            else:
                blocks.append(bytearray(data[:n]))
            self.unacked += n
            if n == room:
                # Full: the guest's sends wait until the relay's acks bring the buffer
                # down to the low-water mark, and acks withheld from the relay must go
                # now (``wait_drained``).
                self._clear_write()
                self.send_full = True
                waiting = self._reader_parked
                if waiting is not None:
                    self._reader_parked = None
                    self._wake_soon(waiting)
            parked = self._writer_parked
            if parked is not None:
                self._writer_parked = None
                self._wake_soon(parked)
            return n

    def shutdown_write(self) -> None:
        with self.lock:
            self.shut_wr = True
            parked = self._writer_parked
            self._writer_parked = None
        if parked is not None:
            self._wake_soon(parked)

    def guest_close(self, on_trio: Any) -> None:
        """The last guest descriptor is gone: tell the task, release the eventfds."""
        with self.lock:
            self.guest_closed = True
            self.closing = True
            self._fds_closed = True
            self._release_fds()
            self._chunks.clear()
            self.rlen = 0
            parked = [e for e in (self._reader_parked, self._writer_parked) if e is not None]
            self._reader_parked = self._writer_parked = None
        try:
            self.token.run_sync_soon(on_trio)
            for event in parked:
                self.token.run_sync_soon(event.set)
        except trio.RunFinishedError:
            pass

    # -- trio thread -------------------------------------------------------------------
    def host_close(self) -> None:
        """The runtime is stopping before the guest closed the socket (the trio scope
        that hosts the task was cancelled): close the stream as the guest's close would.

        The guest keeps its descriptors (and the eventfds) until it closes them; a
        blocked ``send`` wakes up and fails with ``EPIPE``.
        """
        with self.lock:
            self.closing = True
            self._set_write()
            parked = [e for e in (self._reader_parked, self._writer_parked) if e is not None]
            self._reader_parked = self._writer_parked = None
        for event in parked:
            event.set()

    def mark_connected(self) -> None:
        with self.lock:
            self.connected = True
            self.connect_done = True
            if self.unacked < self.send_max:
                self._set_write()

    def mark_connect_failed(self, err: int) -> None:
        with self.lock:
            self.connect_done = True
            self.connect_errno = err
            self._set_write()
            self._set_read()

    def finish(self, err: int) -> None:
        """The stream is over: EOF (``err`` 0) or an error reported once to the guest."""
        with self.lock:
            if self.ended:
                return
            self.ended = True
            self.end_errno = err
            self._set_read()
            self._set_write()

    def deliver(self, data: bytes) -> None:
        if not data:
            return
        with self.lock:
            self.received += len(data)
            if self.guest_closed:
                return
            self._chunks.append(data)
            self.rlen += len(data)
            self._set_read()

    async def wait_recv_room(self) -> None:
        """Park the reader while the guest has not drained the receive buffer."""
        while True:
            event = trio.Event()
            with self.lock:
                if self.rlen < self.recv_high or self.closing:
                    return
                self._reader_parked = event
                self._wake_at = self.recv_low
            await event.wait()

    def below_high(self) -> bool:
        """The guest's unread bytes are under the high-water mark (the reader may go on)."""
        return self.rlen < self.recv_high or self.closing

    async def wait_drained(self, full_limit: int) -> None:
        """Wait until the guest has read the buffer down to the low-water mark or, while
        its send buffer is full, down to ``full_limit`` (or the stream is closing)."""
        while True:
            event = trio.Event()
            with self.lock:
                if self.rlen <= self.recv_low or self.closing:
                    return
                if self.send_full and self.rlen <= full_limit:
                    return
                self._reader_parked = event
                # A send buffer filling up wakes the reader too (send()); one emptying
                # only makes this wake early, and the loop parks again.
                self._wake_at = full_limit if self.send_full else self.recv_low
            await event.wait()

    # send side ------------------------------------------------------------------------
    @property
    def total(self) -> int:
        return self.acked + self.unacked

    async def wait_unsent(self, stop_on_shut: bool = False) -> bool:
        """Wait until there are unsent bytes (True), or none are left and the stream is
        closing (or, with ``stop_on_shut``, the guest shut down writing): False."""
        while True:
            event = trio.Event()
            with self.lock:
                if self.acked + self.unacked > self.sent:
                    return True
                if self.closing or (stop_on_shut and self.shut_wr):
                    return False
                self._writer_parked = event
            await event.wait()

    def take_unsent(self, limit: int, release: bool) -> list[memoryview]:
        """Hand out the next ``limit`` bytes after ``sent`` (as pieces, in order) and
        advance ``sent``.

        ``release`` frees them at once (protocols without acks).
        """
        pieces: list[memoryview] = []
        with self.lock:
            skip = self.sent - self.acked + self._head
            want = limit
            for block in self._blocks:
                size = len(block)
                if skip >= size:
                    skip -= size
                    continue
                n = min(size - skip, want)
                view = memoryview(block)[skip : skip + n]
                if isinstance(block, bytearray):  # it may still grow: a view would stop that
                    copy = memoryview(view.tobytes())
                    view.release()
                    view = copy
                pieces.append(view)
                want -= n
                skip = 0
                if not want:
                    break
            self.sent += limit - want
            if release:
                self._release_locked(self.sent)
        return pieces

    def release(self, upto: int) -> None:
        """The relay acknowledged everything before absolute position ``upto``."""
        with self.lock:
            self._release_locked(upto)

    def _release_locked(self, upto: int) -> None:
        n = upto - self.acked
        if n <= 0:
            return
        self.acked = upto
        self.unacked -= n
        blocks = self._blocks
        n += self._head
        while blocks and n >= len(blocks[0]):
            n -= len(blocks.popleft())
        self._head = n
        if self.unacked <= self.send_low:
            self.send_full = False
            self._set_write()

    def rewind(self, to: int) -> None:
        """After a resume: send again from absolute position ``to`` (``acked <= to``)."""
        with self.lock:
            self.sent = to

    def all_sent(self) -> bool:
        with self.lock:
            return self.sent >= self.acked + self.unacked

    def all_acked(self) -> bool:
        with self.lock:
            return not self.unacked


def _close_fds(*fds: int) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
