"""Pipes the guest makes with ``pipe()``: an OS pipe whose two ends are guest fds.

The OS descriptors are non-blocking; a blocking guest descriptor waits on the
guest thread's ``Waiter`` (so cancellation and signals still reach it), and
``poll_oneoff`` waits on the OS pipe directly.
"""

from __future__ import annotations

import os

from ..abi.errno import Errno, WasiError
from .stdio import HostStream
from .waiter import POLLERR, POLLHUP, POLLOUT, Waiter


class PipeEnd(HostStream):
    """One end of a pipe: reads on the read end see what the write end wrote."""

    def write(self, bufs: list[memoryview]) -> int:
        total = 0
        for buf in bufs:
            data = buf
            while data:
                try:
                    n = os.write(self.fd, data)
                except BlockingIOError:
                    if self.nonblocking or total:
                        if total:
                            return total
                        raise WasiError(Errno.EAGAIN) from None
                    self.waiter.wait_one(self.fd, POLLOUT)
                    continue
                except BrokenPipeError as exc:
                    if total:
                        return total
                    raise WasiError(Errno.EPIPE) from exc
                total += n
                data = data[n:]
        return total

    def poll_event(self, write: bool, revents: int) -> tuple[int, int, int]:
        if write and revents & (POLLERR | POLLHUP):
            return Errno.EPIPE, 0, 0  # nobody reads any more: the guest sees POLLHUP
        return 0, 0, 1 if revents & POLLHUP else 0


def make_pipe(waiter: Waiter) -> tuple[PipeEnd, PipeEnd]:
    """A new pipe as ``(read end, write end)``."""
    rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    return PipeEnd(rfd, waiter, owned=True), PipeEnd(wfd, waiter, owned=True)
