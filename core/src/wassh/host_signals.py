"""The host process's signals, passed on to the guest it runs on its main thread.

``wassh run`` runs the guest on the main thread, where Python runs signal
handlers, but only between bytecodes: a guest computing in wasm would never see
them. So the C-level handler's wake-up fd (``signal.set_wakeup_fd``) is read by a
watcher thread, which acts at once (wasmtime's epoch interruption stops a
computing guest from another thread, the wake pipe a blocked one). Whichever of
the watcher and the main thread's Python handler reads a signal first acts on
it (a byte read from a pipe goes to one reader), so each is acted on once. Once
a signal's default action has stopped the guest, the main thread's handler also
raises ``GuestTerminated`` where that is safe: that ends host calls blocked
outside the waiter (a password prompt, a plugin's trio call).
If the guest still has not stopped after a grace period, the terminals are put
back and the host exits with the guest's status anyway.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import threading
import time
from types import FrameType, TracebackType
from typing import TYPE_CHECKING

from . import engine
from .abi import hostcall
from .host.waiter import GuestTerminated
from .signals import SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGWINCH, SignalAction, exit_status

if TYPE_CHECKING:
    from .runtime import Process

log = logging.getLogger("wassh.signals")

# Host signal -> guest signal (the same numbers on Linux; named, not assumed).
TERMINATING: dict[int, int] = {
    signal.SIGHUP: SIGHUP,
    signal.SIGINT: SIGINT,
    signal.SIGQUIT: SIGQUIT,
    signal.SIGTERM: SIGTERM,
}
GRACE_SECONDS = 2.0
# Code whose exceptions would escape a ctypes callback (lost, and the guest may crash).
_NO_RAISE_FILES = frozenset(os.path.realpath(m.__file__ or "") for m in (hostcall, engine))


def safe_to_raise(frame: FrameType | None) -> bool:
    """Whether an exception raised in ``frame`` unwinds to code that expects it.

    A host call is a ctypes callback that turns exceptions from the code it calls
    into a trap, but not those raised in its own frame (on entry, or while it
    builds the trap); the epoch callback turns none. Outside any callback, the
    runtime and the command line catch ``GuestTerminated``.
    """
    child = None
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith("<hostcall "):
            return child is not None
        if os.path.realpath(filename) in _NO_RAISE_FILES:
            return False
        child, frame = frame, frame.f_back
    return True


class SignalForwarder:
    """A context manager: while it is open, the host's signals act on ``proc``.

    SIGINT, SIGTERM, SIGHUP and SIGQUIT go through ``Process.send_signal`` (the
    guest's handler, or the default action); SIGWINCH, when ``resizes`` is set,
    is queued for the guest. Does nothing unless entered on the main thread.
    With ``linger`` (a host process that exits with the guest), those four
    signals are ignored once it has ended instead of getting their previous
    handlers back: a late Ctrl-C must not turn the guest's status into a
    KeyboardInterrupt, nor, during the interpreter's shutdown (which puts back
    the default action of any signal with a Python handler), into a death by
    signal. The host is moments from exiting then.
    """

    def __init__(
        self,
        proc: Process,
        *,
        resizes: bool = False,
        linger: bool = False,
        grace: float = GRACE_SECONDS,
    ) -> None:
        self.proc = proc
        self.grace = grace
        self.linger = linger
        self.signals = dict(TERMINATING)
        winch = getattr(signal, "SIGWINCH", None)
        if resizes and winch is not None:
            self.signals[winch] = SIGWINCH
        self._deadline: float | None = None
        # Guards the first kill only, and calls nothing while held: the main thread's
        # handler may run while the watcher holds it, or while the main thread does.
        self._kill_lock = threading.RLock()
        self._killed_by: int | None = None  # the first signal whose default action applied
        self._active = False
        self._previous: dict[int, object] = {}
        self._old_wakeup = -1
        self._fds: list[int] = []
        self._thread: threading.Thread | None = None

    # -- setting up and tearing down (main thread) -------------------------------------
    def __enter__(self) -> SignalForwarder:
        if threading.current_thread() is not threading.main_thread():
            return self
        self._rfd, self._wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._ctl_r, self._ctl_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._fds = [self._rfd, self._wfd, self._ctl_r, self._ctl_w]
        self._old_wakeup = signal.set_wakeup_fd(self._wfd, warn_on_full_buffer=False)
        for hostsig in self.signals:
            self._previous[hostsig] = signal.signal(hostsig, self._on_signal)
        self._active = True
        self._main_ident = threading.get_ident()
        self._thread = threading.Thread(target=self._watch, name="wassh-signals", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._active:
            return
        self._active = False
        # The watcher first: it must not interrupt the main thread once the previous
        # handlers (Python's KeyboardInterrupt) are back.
        self._control(b"s")
        if self._thread is not None:
            self._thread.join()
        for hostsig, previous in self._previous.items():
            if self.linger and hostsig in TERMINATING:
                restored: object = signal.SIG_IGN
            else:
                # None: a handler installed outside Python, which cannot be put back.
                restored = signal.SIG_DFL if previous is None else previous
            signal.signal(hostsig, restored)  # type: ignore[arg-type]
        signal.set_wakeup_fd(self._old_wakeup)
        for fd in self._fds:
            os.close(fd)

    # -- acting on signals (either thread) ---------------------------------------------
    def _on_signal(self, _signum: int, frame: FrameType | None) -> None:
        """The Python-level handler: runs on the main thread, between bytecodes."""
        self._drain()
        if (
            self.proc.killed_by is not None
            and not self.proc.stopped.is_set()
            and safe_to_raise(frame)
        ):
            raise GuestTerminated

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self._rfd, 256)
            except OSError:  # empty (BlockingIOError), or closed at exit
                return
            if not data:
                return
            for hostsig in data:
                self._route(hostsig)

    def _route(self, hostsig: int) -> None:
        guest = self.signals.get(hostsig)
        if guest is None:
            return
        if self.proc.send_signal(guest) is not SignalAction.TERMINATED:
            return
        with self._kill_lock:
            first = self._killed_by is None
            if first:
                self._killed_by = guest
        if first:
            self._deadline = time.monotonic() + self.grace
            self._control(b"k")
            # The signal may have landed on another thread, leaving the main thread
            # blocked in a system call that Python restarts: interrupt it, so its
            # handler runs and raises. (Acting twice on a kill changes nothing.)
            if threading.get_ident() != self._main_ident:
                try:
                    signal.pthread_kill(self._main_ident, hostsig)
                except (OSError, ValueError):
                    pass

    def _control(self, what: bytes) -> None:
        try:
            os.write(self._ctl_w, what)
        except OSError:
            pass

    # -- the watcher thread ------------------------------------------------------------
    def _watch(self) -> None:
        # Signals go to the main thread, never here: there they interrupt system calls.
        signal.pthread_sigmask(signal.SIG_BLOCK, self.signals.keys())
        poller = select.poll()
        poller.register(self._rfd, select.POLLIN)
        poller.register(self._ctl_r, select.POLLIN)
        while True:
            deadline = self._deadline
            timeout = None
            if deadline is not None:
                timeout = max(0, int((deadline - time.monotonic()) * 1000) + 1)
            ready = {fd for fd, _ in poller.poll(timeout)}
            if self._ctl_r in ready:
                try:
                    if b"s" in os.read(self._ctl_r, 64):
                        return
                except OSError:
                    pass
            self._drain()
            if self._deadline is not None and time.monotonic() >= self._deadline:
                if not self.proc.stopped.is_set():
                    self._give_up()
                self._deadline = None

    def _give_up(self) -> None:
        """The guest is stuck where nothing can interrupt it: leave without it."""
        status = exit_status(self._killed_by or SIGTERM)
        log.warning("the guest did not stop within %g s of the signal; exiting", self.grace)
        self.proc.terminals.restore()
        os._exit(status)


__all__ = ["GRACE_SECONDS", "TERMINATING", "SignalForwarder"]
