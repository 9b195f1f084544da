"""Signals for guests: what a signal means for a guest, and the host's part in it.

A native process that receives SIGINT either runs its handler, ignores it, or
dies of it (exit status 130 as the shell shows it). A guest is the same, except
that its handlers run in the guest, never from inside a host call: the host
queues the signal, a blocked host call fails with EINTR, and the SDK then takes
the queued signals (``wassh.signal_take``) and runs the handlers, so a handler
may ``siglongjmp`` out. The host applies the default action itself, so that
Ctrl-C stops a guest that computes and never polls. Which signals the guest
catches, ignores or blocks, the SDK keeps in a small table the host reads from
linear memory at any moment (``__wassh_signal_state``); a guest without it gets
every default action. The host writes one word of it: "signals are queued",
which the SDK checks after each call it wraps, so a signal that arrives while
the guest computes is handled at its next call, as Linux handles it on the
return from the next system call.

Numbers here are the guest's (musl's), whatever the host's are.
"""

from __future__ import annotations

import enum
import struct

SIGHUP = 1
SIGINT = 2
SIGQUIT = 3
SIGABRT = 6
SIGKILL = 9
SIGALRM = 14
SIGTERM = 15
SIGCHLD = 17
SIGCONT = 18
SIGSTOP = 19
SIGTSTP = 20
SIGTTIN = 21
SIGTTOU = 22
SIGURG = 23
SIGWINCH = 28

# Default action "ignore" (or stop, which a guest cannot do): these always go to
# the guest, whose SDK knows what to do with them, as they always have.
IGNORED_BY_DEFAULT = frozenset(
    {SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU, SIGURG, SIGWINCH}
)

# struct __wassh_signal_state in the SDK's signal.c: version, size, the caught,
# ignored and blocked masks (bit n - 1 for signal n), then the word the host sets
# while signals are queued (and a reserved word).
STATE = struct.Struct("<IIQQQII")
STATE_VERSION = 2
QUEUED_OFFSET = 32


class SignalAction(enum.Enum):
    """What became of a signal sent to a guest."""

    QUEUED = "queued"  # the guest's own business: delivered at its next poll
    IGNORED = "ignored"  # the guest ignores it (SIG_IGN), or has already stopped
    TERMINATED = "terminated"  # the default action: the guest is stopped


def exit_status(signum: int) -> int:
    """The status a shell shows for a process that died of ``signum``."""
    return 128 + signum


def decide(signum: int, state: bytes | None) -> SignalAction:
    """The action for ``signum`` given the guest's published state (None: not published)."""
    if signum == SIGKILL:
        return SignalAction.TERMINATED
    if signum in IGNORED_BY_DEFAULT:
        return SignalAction.QUEUED
    if state is None or not 0 < signum <= 64:
        return SignalAction.TERMINATED
    _version, _size, caught, ignored, blocked, _queued, _reserved = STATE.unpack(state)
    bit = 1 << (signum - 1)
    if blocked & bit or caught & bit:
        # Blocked signals stay pending in the guest (whatever their action will be
        # once unblocked), as Linux keeps them.
        return SignalAction.QUEUED
    if ignored & bit:
        return SignalAction.IGNORED
    return SignalAction.TERMINATED


def interrupts(signals: tuple[int, ...], state: bytes | None) -> bool:
    """Whether one of the queued ``signals`` interrupts a blocked call (EINTR).

    As on Linux, only a signal that runs a handler does: one the guest catches and
    does not block. Without a published table no signal has a handler.
    """
    if state is None:
        return False
    _version, _size, caught, _ignored, blocked, _queued, _reserved = STATE.unpack(state)
    runnable = caught & ~blocked
    return any(0 < sig <= 64 and runnable >> (sig - 1) & 1 for sig in signals)


__all__ = [
    "IGNORED_BY_DEFAULT",
    "QUEUED_OFFSET",
    "SIGALRM",
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGTERM",
    "SIGWINCH",
    "STATE",
    "STATE_VERSION",
    "SignalAction",
    "decide",
    "exit_status",
    "interrupts",
]
