"""The embedding API: run a guest from trio code, or from a plain script."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import wasmtime

from .engine import load_module
from .plugins import TransportConfig, Transports, make_plugin_manager
from .runtime import GuestCancelled, GuestConfig, Process, Stdin, Stdout
from .spawn import ProgramMap

if TYPE_CHECKING:
    from .events import EventSink


def _parse_dir(spec: str | tuple[str, str]) -> tuple[str, str]:
    if isinstance(spec, tuple):
        return spec
    host, sep, guest = spec.partition("::")
    return host, guest if sep else host


def prepare(
    wasm: str | os.PathLike[str] | wasmtime.Module,
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    stdin: Stdin = None,
    stdout: Stdout = None,
    stderr: Stdout = None,
    dirs: Sequence[str | tuple[str, str]] = (),
    hosts: Mapping[str, str | Sequence[str]] | None = None,
    plugins: Sequence[object] = (),
    block: Sequence[str] = (),
    entry_points: bool = True,
    config: TransportConfig | None = None,
    trace: bool = False,
    dev: bool = True,
    max_memory: int | None = None,
    trio_token: Any = None,
    events: EventSink | None = None,
    settings: Mapping[str, Mapping[str, object]] | None = None,
    programs: Mapping[str, str | os.PathLike[str] | wasmtime.Module] | None = None,
) -> Process:
    """Build a guest process without running it (``Process.run`` runs it).

    ``settings`` gives plugins their own settings by plugin name (as
    ``TransportConfig.settings``); ``events`` receives the sockets' events
    (``wassh.events``) on the guest thread. ``programs`` maps names to the
    modules (or .wasm paths) the guest may start with ``posix_spawn`` or
    ``fork`` + ``exec``; the guest's own module is there under its file name.
    """
    module = wasm if isinstance(wasm, wasmtime.Module) else load_module(wasm)
    if argv is None:
        argv = [Path(str(wasm)).name] if not isinstance(wasm, wasmtime.Module) else ["guest"]
    # A copy: what this guest adds (hosts, settings) never leaks into the caller's.
    tconfig = (
        replace(config, hosts=dict(config.hosts), settings=dict(config.settings))
        if config is not None
        else TransportConfig()
    )
    for plugin, given in (settings or {}).items():
        if plugin in tconfig.settings:
            raise ValueError(f"settings for plugin {plugin!r} given twice (config and settings)")
        tconfig.settings[plugin] = dict(given)
    for name, addrs in (hosts or {}).items():
        tconfig.hosts[name] = [addrs] if isinstance(addrs, str) else list(addrs)
    pm = make_plugin_manager(entry_points=entry_points, plugins=plugins, block=block)
    transports = Transports(pm, tconfig)

    def child_transports() -> Transports:
        fresh = make_plugin_manager(entry_points=entry_points, plugins=plugins, block=block)
        return Transports(fresh, tconfig)

    guest = GuestConfig(
        argv=list(argv),
        env=dict(env or {}),
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        preopens=[_parse_dir(d) for d in dirs],
        trace=trace,
        dev=dev,
        max_memory=max_memory,
    )
    proc = Process(module, guest, transports, trio_token=trio_token, events=events)
    program_map = ProgramMap(programs)
    # The guest's own module under its own name: ssh starting ``ssh -W`` runs itself.
    names = [PurePosixPath(argv[0]).name if argv else ""]
    if not isinstance(wasm, wasmtime.Module):
        names.append(Path(wasm).name)
    for own in names:
        for name in (own, own.removesuffix(".wasm")):
            if name:
                program_map.add(name, module)
    proc.children.configure(program_map, child_transports)
    return proc


async def run(
    wasm: str | os.PathLike[str] | wasmtime.Module,
    argv: Sequence[str] | None = None,
    **options: Any,
) -> int:
    """Run a guest to completion on its own thread; returns its exit status.

    Options are those of ``prepare``. Cancelling the surrounding scope stops the
    guest promptly (blocked in a host call or computing) and closes its sockets.
    """
    import trio

    proc = prepare(wasm, argv, trio_token=trio.lowlevel.current_trio_token(), **options)
    return await run_process(proc)


async def run_process(proc: Process) -> int:
    """Run a prepared guest on its own thread from trio code; see ``run``."""
    import outcome
    import trio

    token = trio.lowlevel.current_trio_token()
    results: list[outcome.Outcome[int]] = []
    async with trio.open_nursery() as nursery:
        # Plugins' background tasks live in a nursery shielded from the embedder's
        # cancellation until the guest has stopped and closed its sockets: each
        # connection ends the way the guest ends it, and no plugin task's Cancelled
        # reaches the embedder wrapped in an exception group.
        plugin_scope, plugin_nursery = await nursery.start(_plugin_tasks)
        proc.attach_loop(token, plugin_nursery)
        task = trio.lowlevel.current_task()

        def deliver(result: outcome.Outcome[int]) -> None:
            results.append(result)
            token.run_sync_soon(trio.lowlevel.reschedule, task, outcome.Value(None))

        def abort(_raise_cancel: Callable[[], Any]) -> trio.lowlevel.Abort:
            proc.cancel()
            return trio.lowlevel.Abort.FAILED  # keep waiting: the thread unwinds by itself

        trio.lowlevel.start_thread_soon(proc.run, deliver)
        await trio.lowlevel.wait_task_rescheduled(abort)
        plugin_scope.cancel()
    # Unwrapped outside the nursery so the guest's own error is not wrapped in a group.
    try:
        return results[0].unwrap()
    except GuestCancelled:
        await trio.lowlevel.checkpoint()  # re-raises the Cancelled that stopped the guest
        raise


async def _plugin_tasks(*, task_status: Any) -> None:
    """Host plugins' tasks until ``run_process`` cancels the returned scope."""
    import trio

    with trio.CancelScope(shield=True) as scope:
        async with trio.open_nursery() as nursery:
            task_status.started((scope, nursery))
            await trio.sleep_forever()


def run_sync(
    wasm: str | os.PathLike[str] | wasmtime.Module,
    argv: Sequence[str] | None = None,
    **options: Any,
) -> int:
    """``run`` for scripts: starts a trio loop of its own."""
    import trio

    return trio.run(lambda: run(wasm, argv, **options))


class Capture:
    """A stdout/stderr sink that keeps everything the guest writes."""

    def __init__(self) -> None:
        self.data = bytearray()

    def __call__(self, chunk: bytes) -> None:
        self.data += chunk

    def text(self) -> str:
        return self.data.decode("utf-8", "replace")
