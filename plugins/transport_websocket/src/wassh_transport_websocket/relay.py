"""The trio side of a relay socket: one task per connection, one driver per protocol.

The drivers live in ``driver_*`` modules (``driver`` has what they share).
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
    """``transport_state`` of a relay socket: its buffers, its driver and its task's scope."""

    __slots__ = ("active", "active_lock", "claim", "conn", "driver", "port", "scope")

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
        self.scope = trio.CancelScope()
        self.active = active
        self.active_lock = active_lock

    def close(self) -> None:
        """Guest thread: the last descriptor is gone."""
        self.conn.guest_close(self._on_guest_close)

    def _on_guest_close(self) -> None:
        """Trio thread: cancel a connect in progress, or flush and close (bounded)."""
        if not self.conn.connected:
            self.scope.cancel()
            return
        # Shielded: the flush and the close handshake finish even when the loop's
        # nursery is cancelled because the guest has exited; the deadline bounds them.
        self.scope.shield = True
        self.scope.deadline = trio.current_time() + self.driver.settings.close_timeout


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
    """The relay socket's trio task: open, then move bytes until the stream ends."""
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
