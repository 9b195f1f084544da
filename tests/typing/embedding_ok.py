"""Every argument of the embedding API, each used correctly: ``mypy --strict`` finds nothing.

``tests/test_embedding_types.py`` type-checks this file, and runs it against a real
guest: what the types accept, the checks at run time accept too.
"""

from __future__ import annotations

import os
import types
from pathlib import Path

import trio
import wasmtime
import wassh
from wassh.engine import get_engine
from wassh.events import Event


class Plugin:
    """An embedder's plugin, given as its class: one instance per runtime."""

    name = "typing-example"


def on_event(event: Event) -> None:
    """An event sink: the guest opens no socket, so it is never called."""
    del event


def prepare_with_every_argument(guest: Path, work: Path, output: int) -> wassh.Process:
    """Every argument ``prepare`` takes; stdout and stderr go to ``output``."""
    module = wasmtime.Module.from_file(get_engine(), str(guest))
    env = types.MappingProxyType({"ONE": "1"})
    return wassh.prepare(
        str(guest),
        ["echo", "prepared"],
        env=env,
        stdin=bytearray(b"from bytearray\n"),
        stdout=output,
        stderr=output,
        dirs=[f"{work}::/out", (str(work), "/again")],
        hosts={"one.test": "127.0.0.1", "two.test": ["127.0.0.1", "::1"]},
        plugins=[Plugin, types.SimpleNamespace(name="namespace-plugin")],
        block=("websocket",),
        entry_points=True,
        config=wassh.TransportConfig(connect_timeout=5.0),
        trace=False,
        dev=True,
        max_memory=64 * 1024 * 1024,
        events=on_event,
        settings={"tcp": {}},
        programs={"by-path": guest, "by-name": str(guest), "by-module": module},
        trio_token=None,
    )


async def run_with_every_argument(guest: Path, work: Path) -> int:
    """Every argument ``run`` takes; the guest's stdin and stdout are files in ``work``."""
    with open(work / "stdin", "rb") as stdin, open(work / "stdout", "wb") as stdout:
        return await wassh.run(
            guest,
            ("echo", "run"),
            env={"TWO": "2"},
            stdin=stdin,
            stdout=stdout,
            stderr=wassh.Capture(),
            dirs=[(str(work), "/out")],
            hosts={"one.test": ("127.0.0.1",)},
            plugins=(types.ModuleType("module_plugin"),),
            block={"websocket", "proxy"},
            entry_points=False,
            config=None,
            trace=False,
            dev=False,
            max_memory=None,
            events=None,
            settings=None,
            programs=None,
        )


def run_sync_with_every_argument(guest: Path, work: Path) -> tuple[int, bytes]:
    """Every argument ``run_sync`` takes; returns the status and what stdout received."""
    out = wassh.Capture()
    read_end, write_end = os.pipe()
    os.write(write_end, b"from a pipe\n")
    os.close(write_end)
    try:
        code = wassh.run_sync(
            os.fspath(guest),
            argv=["echo", "sync"],
            env=None,
            stdin=read_end,
            stdout=out,
            stderr=out.__call__,
            dirs=(str(work),),
            hosts=None,
            plugins=[Plugin()],
            block=["websocket"],
            entry_points=True,
            config=wassh.TransportConfig(),
            trace=False,
            dev=True,
            max_memory=1 << 30,
            events=lambda event: None,
            settings={},
            programs={},
        )
    finally:
        os.close(read_end)
    return code, bytes(out.data)


def prepare_on_a_loop(guest: Path) -> wassh.Process:
    """``trio_token``: plugins' tasks go to the calling loop."""

    async def main() -> wassh.Process:
        return wassh.prepare(
            guest, stdin=b"", stdout=wassh.Capture(), trio_token=trio.lowlevel.current_trio_token()
        )

    return trio.run(main)
