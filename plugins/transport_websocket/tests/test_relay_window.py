"""The receive window of the corp drivers while the guest's own send buffer is full.

A guest blocked in ``send`` reads nothing, so the client acknowledges the relay's
bytes regardless of the high-water mark (otherwise relay and guest can wait for
each other). Those bytes were invited by our own acks: a relay that keeps within
its window past them must never be cut off for them, however much the guest has
left unread; and the client must still stop inviting more somewhere, so that the
guest's unread bytes stay bounded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing
from wassh_transport_websocket.connection import RelayConnection
from wassh_transport_websocket.relay import CorpRelay, Fatal
from wassh_transport_websocket.settings import RelaySettings

HIGH = 100  # the high-water mark: acks are withheld above it (low-water mark: 50)
LIMIT = 400  # recv_limit
MESSAGE = 50  # payload bytes per relay message
SEND_MAX = 64  # the guest's send buffer
# corp-relay's acks ride on the headers of the next messages: no WebSocket is needed.
NO_WS: Any = None


def _blocked_sender(sent: int = SEND_MAX) -> tuple[CorpRelay, RelayConnection]:
    """A corp-relay driver whose guest has sent ``sent`` bytes (by default enough to
    fill its send buffer: it is blocked sending) and reads nothing."""
    conn = RelayConnection(trio.lowlevel.current_trio_token(), recv_high=HIGH, send_max=SEND_MAX)
    settings = RelaySettings.from_settings(
        {"url": "ws://r/", "protocol": "corp-relay", "recv_limit": LIMIT}, 75.0
    )
    driver = CorpRelay(settings, conn, "h", 1)
    assert conn.send(memoryview(b"s" * sent)) == sent
    assert conn.send_full == (sent == SEND_MAX)
    return driver, conn


def _relay_sends(driver: CorpRelay, window: int | None, most: int = 1000) -> int:
    """A relay sending MESSAGE-byte messages while fewer than ``window`` of its bytes
    are unacknowledged (None: ignoring the acks); it sees each ack at once, the most
    a relay can get out of them. Returns how many bytes it sent before it stopped."""
    sent = 0
    for _ in range(most):
        if window is not None and sent + MESSAGE - driver.ack_pos > window:
            break
        driver._handle(b"\x00\x00\x00\x00" + b"r" * MESSAGE)
        sent += MESSAGE
    return sent


def _read(conn: RelayConnection, n: int) -> None:
    assert conn.recv_into(memoryview(bytearray(n)), False) == n


@pytest.mark.parametrize("window", [MESSAGE, 150, LIMIT - HIGH])
async def test_a_relay_within_its_window_is_never_cut_off(window: int) -> None:
    driver, conn = _blocked_sender()
    sent = _relay_sends(driver, window)
    # The client acknowledged while the guest held at most LIMIT unread bytes, then
    # withheld its acks: the relay stopped at its window past the last of them.
    assert sent < 1000 * MESSAGE
    assert driver.withholding
    assert driver.ack_pos <= LIMIT
    assert conn.rlen == sent <= LIMIT + window


async def test_a_relay_that_ignores_its_window_is_still_cut_off() -> None:
    driver, conn = _blocked_sender()
    with pytest.raises(Fatal, match="recv_limit setting"):
        _relay_sends(driver, None)
    # Cut off once it went LIMIT - HIGH past our last ack with more than LIMIT unread.
    assert conn.rlen - driver.ack_pos > LIMIT - HIGH
    assert conn.rlen <= 2 * LIMIT - HIGH + MESSAGE


async def _until(condition: Callable[[], bool]) -> None:
    with trio.fail_after(5):
        while not condition():
            await trio.sleep(0.01)


@pytest.mark.parametrize("left", [50, LIMIT])
async def test_acks_withheld_at_the_limit_go_out_once_the_guest_reads(
    left: int, autojump_clock: trio.testing.MockClock
) -> None:
    driver, conn = _blocked_sender()
    _relay_sends(driver, 150)
    told = driver.ack_pos
    async with trio.open_nursery() as nursery:
        nursery.start_soon(driver._release_acks, NO_WS)
        await trio.sleep(1)
        assert driver.ack_pos == told  # still above the limit: nothing more
        # Down to the low-water mark, or (the send buffer still full) to the limit.
        _read(conn, conn.rlen - left)
        await _until(lambda: not driver.withholding)
        assert driver.ack_pos == driver.granted == conn.received
        nursery.cancel_scope.cancel()


async def test_below_the_limit_a_full_send_buffer_releases_withheld_acks() -> None:
    driver, conn = _blocked_sender(SEND_MAX - 1)
    _relay_sends(driver, 150)
    assert driver.withholding and driver.ack_pos <= HIGH
    async with trio.open_nursery() as nursery:
        nursery.start_soon(driver._release_acks, NO_WS)
        await trio.testing.wait_all_tasks_blocked()
        assert driver.withholding
        conn.send(memoryview(b"s"))  # full: the guest blocks sending
        await trio.testing.wait_all_tasks_blocked()
        assert driver.ack_pos == conn.received and not driver.withholding
        nursery.cancel_scope.cancel()
