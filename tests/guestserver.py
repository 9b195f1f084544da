"""Running a guest server in a trio test while the test drives the host side."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
import wassh


class LineSink:
    """A stdout sink (called on the guest thread) that a trio test can wait on."""

    def __init__(self) -> None:
        self.data = bytearray()
        self._lock = threading.Lock()

    def __call__(self, chunk: bytes) -> None:
        with self._lock:
            self.data += chunk

    def lines(self) -> list[str]:
        with self._lock:
            complete = bytes(self.data).rpartition(b"\n")[0]
        return complete.decode("utf-8", "replace").splitlines() if complete else []

    def text(self) -> str:
        with self._lock:
            return self.data.decode("utf-8", "replace")


class GuestServer:
    def __init__(self, wasm: Path) -> None:
        self.wasm = wasm
        self.out = LineSink()
        self.err = wassh.Capture()
        self.code: int | None = None
        self.finished = trio.Event()

    async def line(self, prefix: str, timeout: float = 30) -> str:
        """The first complete stdout line starting with ``prefix``."""
        with trio.fail_after(timeout):
            while True:
                for line in self.out.lines():
                    if line.startswith(prefix):
                        return line
                if self.finished.is_set():
                    raise AssertionError(
                        f"guest exited ({self.code}) without printing {prefix!r}: "
                        f"{self.out.text()!r} {self.err.text()!r}"
                    )
                await trio.sleep(0.002)

    async def port(self) -> int:
        return int((await self.line("port ")).split()[1])

    async def wait(self, timeout: float = 60) -> int:
        with trio.fail_after(timeout):
            await self.finished.wait()
        assert self.code is not None
        return self.code


@asynccontextmanager
async def guest_server(wasm: Path, *args: str, **options: Any) -> AsyncIterator[GuestServer]:
    """Start ``wasm`` with ``args`` in the background; cancelled if still running at exit."""
    server = GuestServer(wasm)

    async def run() -> None:
        try:
            server.code = await wassh.run(
                wasm, [wasm.stem, *args], stdout=server.out, stderr=server.err, **options
            )
        finally:
            server.finished.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        try:
            yield server
        finally:
            nursery.cancel_scope.cancel()
