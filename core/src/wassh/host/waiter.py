"""Where the guest thread blocks: one poll(2) over OS handles plus a wake pipe.

The wake pipe lets the runtime interrupt a blocked guest (cancellation, queued
signals) without any cross-thread call on the data path. A queued signal that
would run a guest handler ends the wait with EINTR, as a caught signal ends a
blocked system call on Linux: the host call returns, and the guest's SDK then
runs the handler (never from inside a host call).
"""

from __future__ import annotations

import collections
import contextlib
import os
import select
import weakref
from collections.abc import Callable

from ..abi.errno import Errno, WasiError

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
        # A process prepared and dropped without running never calls close(): the
        # pipe goes with the waiter, so an embedder preparing many leaks nothing.
        self._close_pipe = weakref.finalize(self, _close_fds, self._rfd, self._wfd)
        self.cancelled = False
        self.signals: collections.deque[int] = collections.deque()
        self._poller = select.poll()
        self._poller.register(self._rfd, POLLIN)
        self._registered: dict[int, int] = {}
        # Told how many signals are queued (the compiled fast path, which cannot
        # look at the deque without the GIL and leaves them to the Python poll).
        self.on_signals: Callable[[int], None] | None = None
        # Whether a queued signal runs a guest handler now (the process reads the
        # guest's signal table); None: no signal ever interrupts a wait.
        self.interrupting: Callable[[], bool] | None = None

    @property
    def read_fd(self) -> int:
        """The wake pipe's read end: readable while a wake-up is pending."""
        return self._rfd

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
        note = self.on_signals
        if note is not None:
            note(1)
        self.wake()

    def take_signal(self) -> int:
        """The oldest queued signal, or 0."""
        try:
            signum = self.signals.popleft()
        except IndexError:
            return 0
        note = self.on_signals
        if note is not None:
            note(-1)
        return signum

    def interrupted(self) -> bool:
        """Whether a queued signal must end a blocked call now (EINTR)."""
        check = self.interrupting
        return bool(self.signals) and check is not None and check()

    def check_interrupted(self) -> None:
        """Raise EINTR if a queued signal must end a blocked call now."""
        if self.signals and self.interrupted():
            raise WasiError(Errno.EINTR)

    def take_signals(self) -> list[int]:
        out: list[int] = []
        note = self.on_signals
        while True:
            try:
                out.append(self.signals.popleft())
            except IndexError:
                return out
            if note is not None:
                note(-1)

    def drain(self) -> None:
        """Empty the wake pipe; raises GuestTerminated once cancelled."""
        try:
            while os.read(self._rfd, 64):
                pass
        except BlockingIOError:
            pass
        if self.cancelled:
            raise GuestTerminated

    def check_cancelled(self) -> None:
        if self.cancelled:
            raise GuestTerminated

    def wait(
        self, handles: dict[int, int], timeout: float | None
    ) -> tuple[list[tuple[int, int]], bool]:
        """Wait for OS handles (``{fd: events}``).

        Returns the ready ``(fd, revents)`` pairs and whether the wake pipe fired;
        raises GuestTerminated once cancelled, and EINTR (before waiting, or when
        woken) while a queued signal has a guest handler to run.
        One poller is kept and only the difference to the last call is registered:
        a server polling the same descriptors again and again re-registers nothing.
        """
        if self.cancelled:
            raise GuestTerminated
        # Only a call that blocks is interrupted: a non-blocking one never fails
        # with EINTR (the SDK runs the handler after it, as Linux does).
        blocking = timeout is None or timeout > 0
        if blocking and self.signals:
            self.check_interrupted()
        if handles != self._registered:
            poller = self._poller
            old = self._registered
            for fd in old.keys() - handles.keys():
                poller.unregister(fd)
            for fd, events in handles.items():
                if old.get(fd) != events:
                    poller.register(fd, events)  # also modifies an existing registration
            self._registered = dict(handles)
        ms = None if timeout is None else max(0, int(timeout * 1000 + 0.999))
        ready = self._poller.poll(ms)
        woken = False
        rfd = self._rfd
        out: list[tuple[int, int]] = []
        for fd, revents in ready:
            if fd == rfd:
                woken = True
                try:
                    while os.read(rfd, 64):
                        pass
                except BlockingIOError:
                    pass
            else:
                out.append((fd, revents))
        if self.cancelled:
            raise GuestTerminated
        if woken and blocking and self.signals:
            self.check_interrupted()
        return out, woken

    def wait_one(self, fd: int, events: int, timeout: float | None = None) -> int:
        """Block until ``fd`` reports one of ``events``; returns revents (0 on timeout)."""
        ready, _ = self.wait({fd: events}, timeout)
        return ready[0][1] if ready else 0

    def close(self) -> None:
        self._close_pipe()  # once: a later call never closes a descriptor reused since


def _close_fds(*fds: int) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
