"""The trio loop that plugins reach from the guest thread.

Embedded through ``wassh.run`` the loop is the embedder's own. Run from the
command line there is none until a plugin asks for one: then a background
thread starts a trio loop that lives as long as the host process. A guest
that only uses direct TCP never pays for importing trio.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any

_lock = threading.Lock()
_portal: LoopPortal | None = None


class LoopPortal:
    """A trio token plus a nursery on that loop, for plugins' background tasks."""

    def __init__(self, token: Any, nursery: Any) -> None:
        self.token = token
        self.nursery = nursery

    def start_soon(self, afn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Start ``afn(*args)`` as a background task; callable from any non-trio thread."""
        import trio

        if self.nursery is None:  # a bare token: the task lives as long as the loop
            trio.from_thread.run_sync(
                trio.lowlevel.spawn_system_task, afn, *args, trio_token=self.token
            )
            return
        trio.from_thread.run_sync(self.nursery.start_soon, afn, *args, trio_token=self.token)


def background_portal() -> LoopPortal:
    """The process-wide background loop, started on first use."""
    global _portal
    with _lock:
        if _portal is None:
            _portal = _start_background_loop()
        return _portal


def _start_background_loop() -> LoopPortal:
    import trio

    ready = threading.Event()
    holder: list[LoopPortal] = []

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            holder.append(LoopPortal(trio.lowlevel.current_trio_token(), nursery))
            ready.set()
            await trio.sleep_forever()

    threading.Thread(target=trio.run, args=(main,), name="wassh-trio", daemon=True).start()
    ready.wait()
    return holder[0]
