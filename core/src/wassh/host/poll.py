"""poll_oneoff: readiness of clocks, stdio, files and sockets in one wait.

Every object names an OS handle whose readiness stands for its own (a socket,
a pipe, an eventfd that a buffered transport signals); the guest thread waits
on all of them at once with poll(2), so no thread hop is needed to wait.
"""

from __future__ import annotations

import struct
import time
from typing import TYPE_CHECKING

from ..abi.errno import Errno, WasiError
from .objects import ALWAYS_READY, OpenObject
from .waiter import POLLERR, POLLHUP, POLLNVAL
from .wasi_defs import (
    CLOCK_MONOTONIC,
    CLOCK_REALTIME,
    EVENTTYPE_CLOCK,
    EVENTTYPE_FD_READ,
    EVENTTYPE_FD_WRITE,
    SUBCLOCKFLAG_ABSTIME,
)

if TYPE_CHECKING:
    from ..runtime import Process

_SUB_HEAD = struct.Struct("<QB")
_SUB_CLOCK = struct.Struct("<IxxxxQQH")
_SUB_FD = struct.Struct("<I")
_EVENT = struct.Struct("<QHB5xQH6x")
_SUB_SIZE = 48


def _clock_deadline(clock: int, timeout: int, flags: int) -> float:
    """A deadline on the monotonic clock, in seconds."""
    now = time.monotonic()
    if not flags & SUBCLOCKFLAG_ABSTIME:
        return now + timeout / 1e9
    if clock == CLOCK_REALTIME:
        return now + (timeout - time.time_ns()) / 1e9
    return timeout / 1e9


def poll_oneoff(proc: Process, subs: int, out: int, nsubs: int, nevents_out: int) -> int:
    mem = proc.memory
    mem.check(nevents_out, 4)
    if nsubs == 0:
        raise WasiError(Errno.EINVAL, "poll_oneoff with no subscriptions")
    mem.check(subs, _SUB_SIZE * nsubs)
    mem.check(out, _EVENT.size * nsubs)
    view = mem.view
    deadline: float | None = None
    clock_userdata = 0
    fd_subs: list[tuple[int, int, int]] = []  # (userdata, tag, fd)
    bad: list[tuple[int, int, int]] = []  # (userdata, tag, errno)
    for i in range(nsubs):
        base = subs + i * _SUB_SIZE
        userdata, tag = _SUB_HEAD.unpack_from(view, base)
        if tag == EVENTTYPE_CLOCK:
            clock, timeout, _precision, flags = _SUB_CLOCK.unpack_from(view, base + 16)
            if clock not in (CLOCK_REALTIME, CLOCK_MONOTONIC):
                bad.append((userdata, tag, Errno.EINVAL))
                continue
            when = _clock_deadline(clock, timeout, flags)
            if deadline is None or when < deadline:
                deadline, clock_userdata = when, userdata
        elif tag in (EVENTTYPE_FD_READ, EVENTTYPE_FD_WRITE):
            (fd,) = _SUB_FD.unpack_from(view, base + 16)
            fd_subs.append((userdata, tag, fd))
        else:
            raise WasiError(Errno.EINVAL, f"unknown subscription tag {tag}")

    waiter = proc.waiter
    fds = proc.fds
    while True:
        events: list[tuple[int, int, int, int, int]] = [
            (ud, err, tag, 0, 0) for ud, tag, err in bad
        ]
        masks: dict[int, int] = {}
        pending: list[tuple[int, int, OpenObject, int, int]] = []  # (ud, tag, obj, osfd, mask)
        for userdata, tag, fd in fd_subs:
            obj = fds.lookup(fd)
            if obj is None:
                events.append((userdata, Errno.EBADF, tag, 0, 0))
                continue
            write = tag == EVENTTYPE_FD_WRITE
            osfd, mask = obj.poll_handle(write)
            if (osfd, mask) == ALWAYS_READY:
                err, nbytes, flags = obj.poll_event(write, 0)
                events.append((userdata, err, tag, nbytes, flags))
            else:
                masks[osfd] = masks.get(osfd, 0) | mask
                pending.append((userdata, tag, obj, osfd, mask))
        now = time.monotonic()
        wait_for: float | None
        if events or (deadline is not None and deadline <= now):
            wait_for = 0.0
        else:
            wait_for = None if deadline is None else deadline - now
        if pending or wait_for != 0.0:
            ready, _woken = waiter.wait(list(masks.items()), wait_for)
        else:
            ready = []
        if ready:
            revents_by_fd = dict(ready)
            for userdata, tag, pobj, osfd, mask in pending:
                revents = revents_by_fd.get(osfd, 0)
                if revents & (mask | POLLERR | POLLHUP | POLLNVAL):
                    err, nbytes, flags = pobj.poll_event(tag == EVENTTYPE_FD_WRITE, revents)
                    events.append((userdata, err, tag, nbytes, flags))
        if deadline is not None and time.monotonic() >= deadline:
            events.append((clock_userdata, 0, EVENTTYPE_CLOCK, 0, 0))
        signals = waiter.take_signals() if waiter.signals else []
        if signals:
            proc.deliver_signals(signals)
            if not events:
                raise WasiError(Errno.EINTR)
        if events:
            break
    view = mem.view  # a signal handler may have grown memory; the view stays valid
    for i, (userdata, err, tag, nbytes, flags) in enumerate(events):
        _EVENT.pack_into(view, out + i * _EVENT.size, userdata, err, tag, nbytes, flags)
    mem.set_u32(nevents_out, len(events))
    return 0
