"""Where the guest thread blocks: one poll(2) over OS handles plus a wake pipe.

The wake pipe lets the runtime interrupt a blocked guest (cancellation, queued
signals) without any cross-thread call on the data path.
"""

from __future__ import annotations

import collections
import os
import select

POLLIN = select.POLLIN
POLLOUT = select.POLLOUT
POLLERR = select.POLLERR
POLLHUP = select.POLLHUP
POLLRDHUP = getattr(select, "POLLRDHUP", 0x2000)
POLLNVAL = select.POLLNVAL


class GuestTerminated(BaseException):
    """Unwinds the guest when the embedder stops it; passes through every handler."""


class Waiter:
    """Blocks the guest thread until an OS handle is ready, a deadline passes or it is woken."""

    def __init__(self) -> None:
        self._rfd, self._wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.cancelled = False
        self.signals: collections.deque[int] = collections.deque()

    def wake(self) -> None:
        try:
            os.write(self._wfd, b"!")
        except OSError:  # a wake-up is already pending, or the process has ended
            pass

    def cancel(self) -> None:
        self.cancelled = True
        self.wake()

    def queue_signal(self, signum: int) -> None:
        # No lock: this may run in a Python signal handler on the guest thread,
        # interrupting take_signals. deque.append/popleft are atomic.
        self.signals.append(signum)
        self.wake()

    def take_signals(self) -> list[int]:
        out: list[int] = []
        while True:
            try:
                out.append(self.signals.popleft())
            except IndexError:
                return out

    def check_cancelled(self) -> None:
        if self.cancelled:
            raise GuestTerminated

    def wait(
        self, handles: list[tuple[int, int]], timeout: float | None
    ) -> tuple[list[tuple[int, int]], bool]:
        """Wait for ``(fd, events)`` handles.

        Returns the ready ``(fd, revents)`` pairs and whether the wake pipe fired
        (so callers re-check signals); raises GuestTerminated once cancelled.
        """
        self.check_cancelled()
        poller = select.poll()
        poller.register(self._rfd, POLLIN)
        for fd, events in handles:
            poller.register(fd, events)
        ms = None if timeout is None else max(0, int(timeout * 1000 + 0.999))
        while True:
            try:
                ready = poller.poll(ms)
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries for us
                continue
        woken = False
        out: list[tuple[int, int]] = []
        for fd, revents in ready:
            if fd == self._rfd:
                woken = True
                try:
                    while os.read(self._rfd, 64):
                        pass
                except BlockingIOError:
                    pass
            else:
                out.append((fd, revents))
        self.check_cancelled()
        return out, woken

    def wait_one(self, fd: int, events: int, timeout: float | None = None) -> int:
        """Block until ``fd`` reports one of ``events``; returns revents (0 on timeout)."""
        ready, _ = self.wait([(fd, events)], timeout)
        return ready[0][1] if ready else 0

    def close(self) -> None:
        for fd in (self._rfd, self._wfd):
            try:
                os.close(fd)
            except OSError:
                pass
