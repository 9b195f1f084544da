"""A guest's real-time interval timer (``ITIMER_REAL``: ``alarm``, ``setitimer``).

The timer counts on the host's monotonic clock, whatever the guest does, and
fires from a thread of its own: the guest may be computing, blocked in a host
call or waiting in poll, and gets its SIGALRM as a native process would (the
signal's disposition decides: a handler, ignored, or the default action, death
with status 142). The thread exists only while the timer is armed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# A far expiry is waited for in steps (Condition.wait takes a bounded timeout).
_MAX_STEP = 86400.0


class RealTimer:
    """One process's ITIMER_REAL; ``fire`` is called (on the timer's thread) at expiry."""

    def __init__(self, fire: Callable[[], object]) -> None:
        self._fire = fire
        self._cond = threading.Condition()
        self._deadline: float | None = None  # monotonic expiry, None when disarmed
        self._interval = 0.0
        self._closed = False
        self._thread: threading.Thread | None = None

    def get(self) -> tuple[float, float]:
        """(seconds until expiry, interval); (0, interval) when disarmed."""
        with self._cond:
            return self._current()

    def set(self, value: float, interval: float) -> tuple[float, float]:
        """Arm (``value`` > 0) or disarm (0) the timer; returns its previous setting."""
        with self._cond:
            old = self._current()
            if value > 0 and not self._closed:
                self._deadline = time.monotonic() + value
                self._interval = interval
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="wassh-itimer", daemon=True
                    )
                    self._thread.start()
            else:
                self._deadline = None
                self._interval = interval
            self._cond.notify()
            return old

    def close(self) -> None:
        """Disarm for good and let the thread end (the process has stopped)."""
        with self._cond:
            self._closed = True
            self._deadline = None
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _current(self) -> tuple[float, float]:
        if self._deadline is None:
            return 0.0, self._interval
        return max(0.0, self._deadline - time.monotonic()), self._interval

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    if self._deadline is None:
                        self._cond.wait()
                        continue
                    left = self._deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(min(left, _MAX_STEP))
                if self._closed:
                    self._thread = None
                    return
                assert self._deadline is not None
                if self._interval > 0:
                    # Expiries missed while late (a loaded host) make one signal, as
                    # Linux's overrun does; the period keeps its phase.
                    now = time.monotonic()
                    deadline = self._deadline + self._interval
                    if deadline <= now:
                        missed = int((now - deadline) / self._interval) + 1
                        deadline += missed * self._interval
                    self._deadline = deadline
                else:
                    self._deadline = None
            self._fire()


__all__ = ["RealTimer"]
