"""Pipes the guest makes with ``pipe()``: an OS pipe whose two ends are guest fds.

The OS descriptors are non-blocking; a blocking guest descriptor waits on the
guest thread's ``Waiter`` (so cancellation and signals still reach it), and
``poll_oneoff`` waits on the OS pipe directly.
"""

from __future__ import annotations

import os

from .stdio import HostStream
from .waiter import Waiter


class PipeEnd(HostStream):
    """One end of a pipe: reads on the read end see what the write end wrote.

    A ``HostStream`` over a non-blocking OS descriptor: writes to a full pipe
    wait on the waiter (or give EAGAIN to a non-blocking guest descriptor), and
    a write end whose reader is gone polls as EPIPE.
    """


def make_pipe(waiter: Waiter) -> tuple[PipeEnd, PipeEnd]:
    """A new pipe as ``(read end, write end)``."""
    rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    return PipeEnd(rfd, waiter, owned=True), PipeEnd(wfd, waiter, owned=True)
