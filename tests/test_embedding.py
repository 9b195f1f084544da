"""The embedding API: trio integration, cancellation, stdio choices."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import trio
import wasmtime
import wassh
from wassh.engine import get_engine


class SilentServer:
    """Accepts connections and never answers; notices when the client goes away."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.accepted = threading.Event()
        self.peer_closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        self.accepted.set()
        with conn:
            while conn.recv(4096):
                pass
            self.peer_closed.set()


async def test_cancel_stops_a_guest_blocked_in_recv(netclient: Path) -> None:
    server = SilentServer()
    stdin_r, stdin_w = os.pipe()  # a stdin that stays open and silent
    start = time.monotonic()
    with trio.move_on_after(0.5) as scope:
        await wassh.run(
            netclient,
            ["netclient", "relay", "127.0.0.1", str(server.port)],
            stdin=stdin_r,
            stdout=wassh.Capture(),
        )
    os.close(stdin_r)
    os.close(stdin_w)
    assert scope.cancelled_caught
    assert time.monotonic() - start < 3
    assert server.accepted.is_set()
    # Every socket the guest held is closed when it is stopped.
    assert await trio.to_thread.run_sync(server.peer_closed.wait, 5)


async def test_cancel_stops_a_computing_guest() -> None:
    module = wasmtime.Module(
        get_engine(),
        '(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))',
    )
    start = time.monotonic()
    with trio.move_on_after(0.3) as scope:
        await wassh.run(module, ["spin"])
    assert scope.cancelled_caught
    assert time.monotonic() - start < 3


async def test_other_guests_keep_running_while_one_is_cancelled(
    netclient: Path, echo_server: object
) -> None:
    spin = wasmtime.Module(
        get_engine(),
        '(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))',
    )
    out = wassh.Capture()
    async with trio.open_nursery() as nursery:
        cancel = trio.CancelScope()

        async def spinner() -> None:
            with cancel:
                await wassh.run(spin, ["spin"])

        nursery.start_soon(spinner)
        await trio.sleep(0.1)
        code = await wassh.run(
            netclient,
            ["netclient", "echo", "127.0.0.1", str(echo_server.port), "alive"],
            stdout=out,
        )  # type: ignore[attr-defined]
        cancel.cancel()
    assert code == 0
    assert out.text().startswith("alive\n")


def test_run_sync_with_bytes_stdin_and_captured_output(
    netclient: Path, echo_server: object
) -> None:
    out = wassh.Capture()
    code = wassh.run_sync(
        netclient,
        ["netclient", "relay", "127.0.0.1", str(echo_server.port)],  # type: ignore[attr-defined]
        stdin=b"from bytes\n",
        stdout=out,
    )
    assert code == 0
    assert out.data == b"from bytes\n"
