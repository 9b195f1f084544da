"""Signals for guests: what a signal means for a guest, and the host's part in it.

A native process that receives SIGINT either runs its handler, ignores it, or
dies of it (exit status 130 as the shell shows it). A guest is the same, except
that its handlers only run when it polls (``__wassh_signal_deliver``): the host
applies the default action itself, so that Ctrl-C stops a guest that computes
and never polls. Which signals the guest catches, ignores or blocks, the SDK
keeps in a small table the host reads from linear memory at any moment
(``__wassh_signal_state``); a guest without it gets every default action.

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

# struct __wassh_signal_state in the SDK's signal.c: version, size, then the
# caught, ignored and blocked masks (bit n - 1 for signal n).
STATE = struct.Struct("<IIQQQ")
STATE_VERSION = 1


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
    _version, _size, caught, ignored, blocked = STATE.unpack(state)
    bit = 1 << (signum - 1)
    if blocked & bit or caught & bit:
        # Blocked signals stay pending in the guest (whatever their action will be
        # once unblocked), as Linux keeps them.
        return SignalAction.QUEUED
    if ignored & bit:
        return SignalAction.IGNORED
    return SignalAction.TERMINATED


__all__ = [
    "IGNORED_BY_DEFAULT",
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
]
