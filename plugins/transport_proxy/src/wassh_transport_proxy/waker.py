"""What a guest waits on while a handshake runs: the socket's next event, or the deadline.

A handshake waits for different things in turn (the TCP connect, room to
send, the proxy's reply), and must end by the connect timeout even when the
guest waits without one (a non-blocking connect polled forever). So the
handle the guest polls is an epoll descriptor watching two things: the
connection, for what the handshake needs next, and a timerfd that fires at
the deadline. It is readable (POLLIN) when either is ready.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import select
import socket
import time
from typing import Any

log = logging.getLogger("wassh.proxy")

_CLOCK_MONOTONIC = getattr(time, "CLOCK_MONOTONIC", 1)


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


@functools.cache
def _libc() -> Any:
    """libc's timerfd calls (Python has its own from 3.13 on), or None."""
    import ctypes.util  # here: it imports subprocess, which a run without a proxy never needs

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.timerfd_settime.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.POINTER(_Itimerspec),
            ctypes.POINTER(_Itimerspec),
        ]
        return libc
    except (OSError, AttributeError) as exc:
        log.debug("no timerfd (%s): handshake deadlines are checked when the guest looks", exc)
        return None


def timer_fd(seconds: float) -> int | None:
    """A non-blocking timerfd that becomes readable in ``seconds``, or None if there is none."""
    seconds = max(seconds, 1e-6)
    create = getattr(os, "timerfd_create", None)
    if create is not None:  # Python 3.13+
        fd: int = create(_CLOCK_MONOTONIC, flags=os.O_NONBLOCK | os.O_CLOEXEC)
        os.timerfd_settime(fd, initial=seconds)  # type: ignore[attr-defined]
        return fd
    libc = _libc()
    if libc is None:
        return None
    # TFD_NONBLOCK and TFD_CLOEXEC are O_NONBLOCK and O_CLOEXEC on every architecture.
    fd = libc.timerfd_create(_CLOCK_MONOTONIC, os.O_NONBLOCK | os.O_CLOEXEC)
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"timerfd_create: {os.strerror(err)}")
    whole = int(seconds)
    spec = _Itimerspec(_Timespec(0, 0), _Timespec(whole, int((seconds - whole) * 1e9) or 1))
    if libc.timerfd_settime(fd, 0, ctypes.byref(spec), None) != 0:
        err = ctypes.get_errno()
        os.close(fd)
        raise OSError(err, f"timerfd_settime: {os.strerror(err)}")
    return int(fd)


class Waker:
    """An epoll descriptor over one connection (its interest changes) and a deadline."""

    __slots__ = ("_epoll", "_fd", "_timer")

    def __init__(self, conn: socket.socket, events: int, seconds: float) -> None:
        self._epoll = select.epoll()
        self._timer: int | None = None
        self._fd = -1
        try:
            self._timer = timer_fd(seconds)
            if self._timer is not None:
                self._epoll.register(self._timer, select.EPOLLIN)
            self.watch(conn, events)
        except BaseException:
            self.close()
            raise

    def fileno(self) -> int:
        return self._epoll.fileno()

    def watch(self, conn: socket.socket, events: int) -> None:
        """Wait for ``events`` (``select.EPOLLIN``/``EPOLLOUT``) on ``conn`` from now on."""
        fd = conn.fileno()
        if fd == self._fd:
            try:
                self._epoll.modify(fd, events)
                return
            except FileNotFoundError:  # a new socket under the number of a closed one
                pass
        elif self._fd >= 0:
            try:
                self._epoll.unregister(self._fd)
            except OSError:  # closed already: epoll forgot it by itself
                pass
        self._epoll.register(fd, events)
        self._fd = fd

    def close(self) -> None:
        self._epoll.close()
        if self._timer is not None:
            os.close(self._timer)
            self._timer = None
