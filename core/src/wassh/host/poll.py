"""poll_oneoff: readiness of clocks, stdio, files and sockets in one wait.

Every object names an OS handle whose readiness stands for its own (a socket,
a pipe, an eventfd that a buffered transport signals); the guest thread waits
on all of them at once with poll(2), so no thread hop is needed to wait.
This runs once per turn of every guest event loop: it is kept lean. A signal
with a guest handler ends the wait with EINTR (the waiter raises it); the SDK
runs the handler once this call has returned.
"""

from __future__ import annotations

import struct
import time
from typing import TYPE_CHECKING

from ..abi.errno import Errno, WasiError
from .fdtable import FD_LIMIT
from .objects import OpenObject
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

# One layout decodes both kinds: the third field is the fd of an FD_READ/FD_WRITE
# subscription, or the clock id of a CLOCK one (then timeout, precision, flags).
_SUBSCRIPTION = struct.Struct("<QB7xI4xQQH6x")
_EVENT = struct.Struct("<QHB5xQH6x")
_ANY_TROUBLE = POLLERR | POLLHUP | POLLNVAL
# Each subscription costs host memory: enough for every descriptor read and
# written twice over, plus clocks. Linux's poll() likewise refuses more fds than
# a process may open (EINVAL).
MAX_SUBSCRIPTIONS = 4 * FD_LIMIT
# poll(2) takes an int of milliseconds; a far deadline is waited for in steps.
_MAX_WAIT = 86400.0
# A wait handle meaning "never ready" (ALWAYS_READY's opposite): an object that
# cannot become ready as it stands (a datagram socket nothing can reach yet). Its
# subscription reports nothing; only the deadline, another descriptor or a
# signal ends the wait.
NEVER_READY = (-2, 0)
_NEVER_FD = NEVER_READY[0]


def _clock_deadline(clock: int, timeout: int, flags: int) -> float:
    """A deadline on the monotonic clock, in seconds."""
    now = time.monotonic()
    if not flags & SUBCLOCKFLAG_ABSTIME:
        return now + timeout / 1e9
    if clock == CLOCK_REALTIME:
        return now + (timeout - time.time_ns()) / 1e9
    return timeout / 1e9


def _connect_deadline(
    proc: Process, pending: list[tuple[int, int, OpenObject, int, int]]
) -> float | None:
    """The soonest deadline of a non-blocking connect this poll waits on, if any."""
    connecting = proc.sockets.connecting
    for sock in [s for s in connecting if not s.is_connecting()]:
        del connecting[sock]  # finished (or closed) since: forget it
    watched = [connecting[p[2]] for p in pending if p[2] in connecting]
    return min(watched) if watched else None


def poll_oneoff(proc: Process, subs: int, out: int, nsubs: int, nevents_out: int) -> int:
    mem = proc.memory
    mem.check(nevents_out, 4)
    if nsubs == 0:
        raise WasiError(Errno.EINVAL, "poll_oneoff with no subscriptions")
    size = _SUBSCRIPTION.size * nsubs
    mem.check(subs, size)
    mem.check(out, _EVENT.size * nsubs)
    if nsubs > MAX_SUBSCRIPTIONS:
        raise WasiError(Errno.EINVAL, f"poll_oneoff with {nsubs} subscriptions")
    deadline: float | None = None
    clock_userdata = 0
    fd_subs: list[tuple[int, int, int]] = []  # (userdata, tag, fd)
    bad: list[tuple[int, int, int, int, int]] = []  # ready-made error events
    for userdata, tag, what, timeout, _precision, flags in _SUBSCRIPTION.iter_unpack(
        mem.view[subs : subs + size]
    ):
        if tag in (EVENTTYPE_FD_READ, EVENTTYPE_FD_WRITE):
            fd_subs.append((userdata, tag, what))
        elif tag == EVENTTYPE_CLOCK:
            if what not in (CLOCK_REALTIME, CLOCK_MONOTONIC):
                bad.append((userdata, Errno.EINVAL, tag, 0, 0))
                continue
            when = _clock_deadline(what, timeout, flags)
            if deadline is None or when < deadline:
                deadline, clock_userdata = when, userdata
        else:
            raise WasiError(Errno.EINVAL, f"unknown subscription tag {tag}")

    waiter = proc.waiter
    lookup = proc.fds.lookup
    connecting = proc.sockets.connecting
    while True:
        events = list(bad)
        masks: dict[int, int] = {}
        pending: list[tuple[int, int, OpenObject, int, int]] = []  # (ud, tag, obj, osfd, mask)
        for userdata, tag, fd in fd_subs:
            obj = lookup(fd)
            if obj is None:
                events.append((userdata, Errno.EBADF, tag, 0, 0))
                continue
            write = tag == EVENTTYPE_FD_WRITE
            osfd, mask = obj.poll_handle(write)
            if osfd < 0:  # ALWAYS_READY or NEVER_READY
                if osfd == _NEVER_FD:
                    continue
                event = obj.poll_event(write, 0)
                if event is not None:
                    events.append((userdata, event[0], tag, event[1], event[2]))
            else:
                masks[osfd] = masks.get(osfd, 0) | mask
                pending.append((userdata, tag, obj, osfd, mask))
        wait_for: float | None
        # A non-blocking connect's deadline wakes the wait too (Socket.connect).
        connects = _connect_deadline(proc, pending) if connecting else None
        if events:
            wait_for = 0.0
        elif deadline is None and connects is None:
            wait_for = None
        else:
            soonest = min(d for d in (deadline, connects) if d is not None)
            wait_for = min(_MAX_WAIT, max(0.0, soonest - time.monotonic()))
        if pending or wait_for != 0.0:
            ready, _woken = waiter.wait(masks, wait_for)
        else:
            ready = []
        if ready:
            revents_by_fd = dict(ready)
            for userdata, tag, pobj, osfd, mask in pending:
                revents = revents_by_fd.get(osfd, 0)
                if revents & (mask | _ANY_TROUBLE):
                    event = pobj.poll_event(tag == EVENTTYPE_FD_WRITE, revents)
                    if event is not None:
                        events.append((userdata, event[0], tag, event[1], event[2]))
        if connects is not None and time.monotonic() >= connects:
            seen = {e[0] for e in events}
            for userdata, tag, pobj, _osfd, _mask in pending:
                if userdata not in seen and pobj in connecting:
                    event = pobj.poll_event(tag == EVENTTYPE_FD_WRITE, 0)
                    if event is not None:
                        events.append((userdata, event[0], tag, event[1], event[2]))
        if deadline is not None and time.monotonic() >= deadline:
            events.append((clock_userdata, 0, EVENTTYPE_CLOCK, 0, 0))
        if events:
            break
    view = mem.view
    pack = _EVENT.pack_into
    for i, (userdata, err, tag, nbytes, eflags) in enumerate(events):
        pack(view, out + i * 32, userdata, err, tag, nbytes, eflags)
    mem.set_u32(nevents_out, len(events))
    return 0
