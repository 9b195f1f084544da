"""The trio side of a relay socket: one task per connection, one driver per protocol.

The drivers live in ``driver_*`` modules (``driver`` has what they share).

A connection ends in one of three ways: the stream ends (the relay closed it,
or it was lost for good); the guest closes the socket; or the trio scope that
hosts the task is cancelled (an embedder cancelling ``wassh.run``). The last two
close the stream the same way, cleanly and within ``close_timeout``: the
socket's scope is shielded from the start, so a cancellation from outside never
interrupts the driver in the middle of a frame; a watcher task outside the
shield turns it into a close instead. Under ``wassh.run`` the cancellation
reaches the tasks before the guest thread has unwound and closed its sockets;
the guest's close then finds the close under way.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable
from typing import Any

import trio

from .connection import RelayConnection
from .driver import Driver, Fatal, RelayError, log
from .driver_corp_v1 import CorpRelay
from .driver_corp_v4 import CorpRelayV4
from .driver_websockify import Websockify
from .settings import RelaySettings

__all__ = [
    "DRIVERS",
    "CorpRelay",
    "CorpRelayV4",
    "Fatal",
    "RelayError",
    "RelaySocket",
    "Websockify",
]

DRIVERS: dict[str, Callable[..., Driver]] = {
    "websockify": Websockify,
    "corp-relay": CorpRelay,
    "corp-relay-v4": CorpRelayV4,
}


class RelaySocket:
    """``sock.state`` of a relay socket: its buffers, its driver and its task's scope."""

    __slots__ = ("active", "active_lock", "claim", "closing_by", "conn", "driver", "port", "scope")

    def __init__(
        self,
        conn: RelayConnection,
        driver: Driver,
        port: int,
        claim: Any,
        active: set[Any],
        active_lock: threading.Lock,
    ) -> None:
        self.conn = conn
        self.driver = driver
        self.port = port
        self.claim = claim
        # Shielded: only this socket's own close cancels its work (``_begin_close``),
        # never a cancellation of the scope around the task (see ``run_connection``).
        self.scope = trio.CancelScope(shield=True)
        self.closing_by: float | None = None  # the close deadline, once closing
        self.active = active
        self.active_lock = active_lock

    def close(self) -> None:
        """Guest thread: the last descriptor is gone."""
        self.conn.guest_close(self._begin_close)

    def host_close(self) -> None:
        """Trio thread: the scope hosting the task was cancelled; close as the guest would."""
        if self.conn.done.is_set():
            return
        self.conn.host_close()
        self._begin_close()

    def _begin_close(self) -> None:
        """Trio thread: cancel a connect in progress, or flush and close, cleanly and
        within ``close_timeout`` (whichever of the guest's close and the host's comes
        first sets the deadline)."""
        if not self.conn.connected:
            self.scope.cancel()
            return
        if self.closing_by is not None:
            return
        self.closing_by = trio.current_time() + self.driver.settings.close_timeout
        self.scope.deadline = min(self.scope.deadline, self.closing_by)
        self.driver.start_closing(self.closing_by)


def start_connection(
    portal: Any,
    settings: RelaySettings,
    claim: Any,
    host: str,
    port: int,
    active: set[Any],
    active_lock: threading.Lock,
) -> RelaySocket:
    """Guest thread: build the socket's state and start its task on the portal's loop."""
    conn = RelayConnection(portal.token)
    driver = DRIVERS[settings.protocol](settings, conn, host, port)
    state = RelaySocket(conn, driver, port, claim, active, active_lock)
    with active_lock:
        active.add(conn)
    try:
        portal.start_soon(run_connection, state)
    except BaseException:
        with active_lock:
            active.discard(conn)
        conn.guest_close(lambda: None)
        raise
    return state


async def _open(driver: Driver) -> None:
    """``driver.open()``, bounded like a TCP connect (a relay may never answer)."""
    timeout = driver.settings.connect_timeout
    with trio.move_on_after(timeout):
        await driver.open()
        return
    raise RelayError(errno.ETIMEDOUT, f"no answer from the relay within {timeout:g} s")


async def run_connection(state: RelaySocket) -> None:
    """The relay socket's trio task: open, then move bytes until the stream ends.

    It ends without an exception whatever happens, within ``close_timeout`` of a
    cancellation of the scope around it.
    """
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_close_when_cancelled, state)
        await _serve(state)
        nursery.cancel_scope.cancel()  # the watcher: the connection is over


async def _close_when_cancelled(state: RelaySocket) -> None:
    """Outside the socket's shielded scope: turn a cancellation of the scope that hosts
    the task into a clean close.

    The Cancelled is not re-raised: the task ends by itself within
    ``close_timeout``, and a Cancelled out of it would only reach the embedder
    wrapped in the exception group of the nursery that hosts it.
    """
    try:
        await trio.sleep_forever()
    except trio.Cancelled:
        state.host_close()  # a no-op once the connection is over


async def _serve(state: RelaySocket) -> None:
    conn, driver = state.conn, state.driver
    try:
        with state.scope:
            try:
                await _open(driver)
            except RelayError as exc:
                log.warning("relay %s: connect failed: %s", driver.label, exc)
                conn.mark_connect_failed(exc.errno)
                return
            state.claim.succeeded = True
            log.info("relay %s: connected", driver.label)
            conn.mark_connected()
            err = await driver.run()
            conn.finish(err)
    except Exception as exc:  # a relay bug must not take the embedder's nursery down
        log.exception("relay %s: unexpected error: %s", driver.label, exc)
    finally:
        if not conn.connect_done:
            conn.mark_connect_failed(errno.ENETUNREACH)
        conn.finish(errno.ECONNRESET)  # no-op when the stream has ended already
        with trio.CancelScope(shield=True):
            try:
                await driver.aclose()
            except Exception:
                pass
        conn.done.set()
        with state.active_lock:
            state.active.discard(conn)
