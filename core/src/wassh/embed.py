"""The embedding API: run a guest from trio code, or from a plain script.

``prepare``, ``run`` and ``run_sync`` take the same keyword arguments (``prepare``
also ``trio_token``) and check every one of them before anything starts: a wrong
type is a ``TypeError`` naming the argument, raised before a plugin loads or the
module compiles, so a typo never runs a guest with half of what was meant.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import wasmtime

from .command_module import compile_module
from .embed_arguments import (
    Argv,
    DirSpec,
    Names,
    OutputSpec,
    Program,
    StdinSpec,
    Wasm,
    checked_config,
    checked_dirs,
    checked_env,
    checked_events,
    checked_flag,
    checked_hosts,
    checked_output,
    checked_plugins,
    checked_programs,
    checked_settings,
    checked_size,
    checked_stdin,
    checked_strs,
    checked_trio_token,
    checked_wasm,
)
from .plugins import TransportConfig, Transports, make_plugin_manager
from .runtime import GuestCancelled, GuestConfig, Process
from .spawn import ProgramMap

if TYPE_CHECKING:
    import trio
    from trio.lowlevel import TrioToken

    from .events import EventSink


def prepare(
    wasm: Wasm,
    argv: Argv | None = None,
    *,
    env: Mapping[str, str] | None = None,
    stdin: StdinSpec = None,
    stdout: OutputSpec = None,
    stderr: OutputSpec = None,
    dirs: Sequence[DirSpec] = (),
    hosts: Mapping[str, str | Sequence[str]] | None = None,
    plugins: Sequence[object] = (),
    block: Names = (),
    entry_points: bool = True,
    config: TransportConfig | None = None,
    trace: bool = False,
    dev: bool = True,
    max_memory: int | None = None,
    events: EventSink | None = None,
    settings: Mapping[str, Mapping[str, object]] | None = None,
    programs: Mapping[str, Program] | None = None,
    trio_token: TrioToken | None = None,
) -> Process:
    """Build a guest process without running it (``Process.run`` runs it).

    Args:
        wasm: The guest: a path to a ``.wasm`` file (or a program from ``wassh cc``),
            or a compiled ``wasmtime.Module``.
        argv: The guest's arguments, its program name first, as a list or tuple of str
            (a bare str is refused, not split into letters). Default: the file name of
            ``wasm``, or ``["guest"]`` for a module.
        env: The guest's environment, str to str. Default: empty (the host's own
            environment is never passed implicitly).
        stdin: The guest's standard input: bytes (or a bytearray, copied now), read to
            the end and then end of file; a host file descriptor; a file object with a
            ``fileno()`` (its descriptor is read directly, past any Python buffering);
            or None for the host's fd 0.
        stdout: The guest's standard output: a host file descriptor; a file object with a
            ``fileno()`` (flushed now; the guest writes to its descriptor); a callable
            taking each chunk of bytes, such as ``Capture()``; or None for the host's fd 1.
        stderr: The guest's standard error, as ``stdout``; None is the host's fd 2.
        dirs: Host directories the guest may use (preopens), as a list or tuple of
            ``"HOST[::GUEST]"`` strings or ``(host, guest)`` pairs; a mapping is refused
            (pairs let one host directory appear at several guest paths).
        hosts: Names the guest may resolve, each to an address or a list of addresses
            (str); added to ``config.hosts``, replacing a name given there. A list of pairs is
            refused: give a mapping.
        plugins: The embedder's own plugins, a list or tuple of plugin objects, classes
            (instantiated once per runtime) or modules; registered after the installed ones.
        block: Names of plugins not to load (a list, tuple or set of str); an unknown
            name is a ``wassh.PluginError``.
        entry_points: Whether to load the installed plugins (entry points); False keeps
            only the built-in defaults and ``plugins``.
        config: The core's settings (policy, timeouts, hosts, plugin settings); copied,
            never changed. Default: ``TransportConfig()``.
        trace: Log every host call the guest makes to stderr.
        dev: Preopen a virtual ``/dev`` (null, tty) after ``dirs``, unless ``dirs``
            already gives ``/`` or ``/dev``.
        max_memory: The most linear memory the guest may have, in bytes (an int, not a
            bool; not negative); past it ``memory.grow`` fails and ``malloc`` returns
            NULL. Default: wasm32's 4 GiB.
        events: A callable receiving each socket event (``wassh.events``) on the guest
            thread, in order; it must be quick and must not raise.
        settings: Plugins' own settings by plugin name, each a mapping of option names
            (str) to values, as ``TransportConfig.settings``; giving a plugin settings
            also requires it.
        programs: Programs the guest may start with ``posix_spawn`` or ``fork`` +
            ``exec``, by name, each a ``.wasm`` path or a module; the guest's own module
            is there under its own name.
        trio_token: The trio loop plugins' tasks run on until ``run_process`` attaches
            its own; None starts a background loop if a plugin needs one.

    Returns:
        The guest process, its plugins loaded and its module compiled.

    Raises:
        TypeError: An argument of the wrong type, named in the message (unknown
            keywords too), before any plugin loads or the module compiles.
        ValueError: A negative ``max_memory`` or file descriptor; settings given for
            a plugin both in ``config`` and ``settings``.
        wassh.PluginError: A plugin the configuration depends on cannot be used.
        wassh.StartError: ``wasm`` is not a WebAssembly module (``Process.run``
            raises it too for a module that is not a WASI command this host runs,
            or one that cannot be instantiated).
        OSError: ``wasm`` cannot be read.
    """
    wasm = checked_wasm(wasm)
    own_argv = None if argv is None else checked_strs("argv", argv, ordered=True)
    guest_env = checked_env(env)
    guest_stdin = checked_stdin(stdin)
    guest_stdout = checked_output("stdout", stdout)
    guest_stderr = checked_output("stderr", stderr)
    preopens = checked_dirs(dirs)
    extra_hosts = checked_hosts(hosts)
    own_plugins = checked_plugins(plugins)
    blocked = checked_strs("block", block, ordered=False)
    load_entry_points = checked_flag("entry_points", entry_points)
    tconfig = checked_config(config)
    tracing = checked_flag("trace", trace)
    with_dev = checked_flag("dev", dev)
    memory_limit = checked_size("max_memory", max_memory)
    sink = checked_events(events)
    plugin_settings = checked_settings(settings)
    program_modules = checked_programs(programs)
    token = checked_trio_token(trio_token)

    for plugin, given in plugin_settings.items():
        if plugin in tconfig.settings:
            raise ValueError(f"settings for plugin {plugin!r} given twice (config and settings)")
        tconfig.settings[plugin] = given
    tconfig.hosts.update(extra_hosts)

    module = wasm if isinstance(wasm, wasmtime.Module) else compile_module(wasm)
    if own_argv is None:
        own_argv = [Path(wasm).name] if not isinstance(wasm, wasmtime.Module) else ["guest"]
    pm = make_plugin_manager(entry_points=load_entry_points, plugins=own_plugins, block=blocked)
    transports = Transports(pm, tconfig)

    def child_transports() -> Transports:
        fresh = make_plugin_manager(
            entry_points=load_entry_points, plugins=own_plugins, block=blocked
        )
        return Transports(fresh, tconfig)

    guest = GuestConfig(
        argv=own_argv,
        env=guest_env,
        stdin=guest_stdin,
        stdout=guest_stdout,
        stderr=guest_stderr,
        preopens=preopens,
        trace=tracing,
        dev=with_dev,
        max_memory=memory_limit,
    )
    proc = Process(module, guest, transports, trio_token=token, events=sink)
    program_map = ProgramMap(program_modules)
    # The guest's own module under its own name: ssh starting ``ssh -W`` runs itself.
    names = [PurePosixPath(own_argv[0]).name if own_argv else ""]
    if not isinstance(wasm, wasmtime.Module):
        names.append(Path(wasm).name)
    for own in names:
        for name in (own, own.removesuffix(".wasm")):
            if name:
                program_map.add(name, module)
    proc.children.configure(program_map, child_transports)
    return proc


async def run(
    wasm: Wasm,
    argv: Argv | None = None,
    *,
    env: Mapping[str, str] | None = None,
    stdin: StdinSpec = None,
    stdout: OutputSpec = None,
    stderr: OutputSpec = None,
    dirs: Sequence[DirSpec] = (),
    hosts: Mapping[str, str | Sequence[str]] | None = None,
    plugins: Sequence[object] = (),
    block: Names = (),
    entry_points: bool = True,
    config: TransportConfig | None = None,
    trace: bool = False,
    dev: bool = True,
    max_memory: int | None = None,
    events: EventSink | None = None,
    settings: Mapping[str, Mapping[str, object]] | None = None,
    programs: Mapping[str, Program] | None = None,
) -> int:
    """Run a guest to completion on its own thread; returns its exit status.

    Cancelling the surrounding scope stops the guest promptly (blocked in a host
    call or computing) and closes its sockets. The arguments are ``prepare``'s;
    plugins' tasks run on the calling trio loop.

    Args:
        wasm: The guest: a path to a ``.wasm`` file (or a program from ``wassh cc``),
            or a compiled ``wasmtime.Module``.
        argv: The guest's arguments, its program name first, as a list or tuple of str
            (a bare str is refused, not split into letters). Default: the file name of
            ``wasm``, or ``["guest"]`` for a module.
        env: The guest's environment, str to str. Default: empty (the host's own
            environment is never passed implicitly).
        stdin: The guest's standard input: bytes (or a bytearray, copied now), read to
            the end and then end of file; a host file descriptor; a file object with a
            ``fileno()`` (its descriptor is read directly, past any Python buffering);
            or None for the host's fd 0.
        stdout: The guest's standard output: a host file descriptor; a file object with a
            ``fileno()`` (flushed now; the guest writes to its descriptor); a callable
            taking each chunk of bytes, such as ``Capture()``; or None for the host's fd 1.
        stderr: The guest's standard error, as ``stdout``; None is the host's fd 2.
        dirs: Host directories the guest may use (preopens), as a list or tuple of
            ``"HOST[::GUEST]"`` strings or ``(host, guest)`` pairs; a mapping is refused
            (pairs let one host directory appear at several guest paths).
        hosts: Names the guest may resolve, each to an address or a list of addresses
            (str); added to ``config.hosts``, replacing a name given there. A list of pairs is
            refused: give a mapping.
        plugins: The embedder's own plugins, a list or tuple of plugin objects, classes
            (instantiated once per runtime) or modules; registered after the installed ones.
        block: Names of plugins not to load (a list, tuple or set of str); an unknown
            name is a ``wassh.PluginError``.
        entry_points: Whether to load the installed plugins (entry points); False keeps
            only the built-in defaults and ``plugins``.
        config: The core's settings (policy, timeouts, hosts, plugin settings); copied,
            never changed. Default: ``TransportConfig()``.
        trace: Log every host call the guest makes to stderr.
        dev: Preopen a virtual ``/dev`` (null, tty) after ``dirs``, unless ``dirs``
            already gives ``/`` or ``/dev``.
        max_memory: The most linear memory the guest may have, in bytes (an int, not a
            bool; not negative); past it ``memory.grow`` fails and ``malloc`` returns
            NULL. Default: wasm32's 4 GiB.
        events: A callable receiving each socket event (``wassh.events``) on the guest
            thread, in order; it must be quick and must not raise.
        settings: Plugins' own settings by plugin name, each a mapping of option names
            (str) to values, as ``TransportConfig.settings``; giving a plugin settings
            also requires it.
        programs: Programs the guest may start with ``posix_spawn`` or ``fork`` +
            ``exec``, by name, each a ``.wasm`` path or a module; the guest's own module
            is there under its own name.

    Returns:
        The guest's exit status (128 + signal when a signal's default action stopped it).

    Raises:
        TypeError: An argument of the wrong type, named in the message (unknown
            keywords too), before any plugin loads or the module compiles.
        ValueError: A negative ``max_memory`` or file descriptor; settings given for
            a plugin both in ``config`` and ``settings``.
        wassh.PluginError: A plugin the configuration depends on cannot be used.
        wassh.StartError: The module is not WebAssembly, is not a WASI command this
            host runs, or cannot be instantiated (``max_memory`` below its minimum).
        wassh.GuestTrap: The guest trapped.
        OSError: ``wasm`` cannot be read.
    """
    import trio

    proc = prepare(
        wasm,
        argv,
        env=env,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        dirs=dirs,
        hosts=hosts,
        plugins=plugins,
        block=block,
        entry_points=entry_points,
        config=config,
        trace=trace,
        dev=dev,
        max_memory=max_memory,
        events=events,
        settings=settings,
        programs=programs,
        trio_token=trio.lowlevel.current_trio_token(),
    )
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
        plugin_scope = trio.CancelScope(shield=True)
        plugin_nurseries: list[trio.Nursery] = []
        opened = trio.Event()
        # Not nursery.start: cancelled while starting, it would wait forever for the
        # shielded task to return. Here a cancelled wait ends that task itself.
        nursery.start_soon(_plugin_tasks, plugin_scope, plugin_nurseries, opened)
        try:
            await opened.wait()
        except BaseException:
            plugin_scope.cancel()  # the embedder gave up before the guest started
            raise
        plugin_nursery = plugin_nurseries[0]
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


async def _plugin_tasks(
    scope: trio.CancelScope, nurseries: list[trio.Nursery], opened: trio.Event
) -> None:
    """Host plugins' tasks until ``run_process`` cancels ``scope`` (a shielded one)."""
    import trio

    with scope:
        async with trio.open_nursery() as nursery:
            nurseries.append(nursery)
            opened.set()
            await trio.sleep_forever()


def run_sync(
    wasm: Wasm,
    argv: Argv | None = None,
    *,
    env: Mapping[str, str] | None = None,
    stdin: StdinSpec = None,
    stdout: OutputSpec = None,
    stderr: OutputSpec = None,
    dirs: Sequence[DirSpec] = (),
    hosts: Mapping[str, str | Sequence[str]] | None = None,
    plugins: Sequence[object] = (),
    block: Names = (),
    entry_points: bool = True,
    config: TransportConfig | None = None,
    trace: bool = False,
    dev: bool = True,
    max_memory: int | None = None,
    events: EventSink | None = None,
    settings: Mapping[str, Mapping[str, object]] | None = None,
    programs: Mapping[str, Program] | None = None,
) -> int:
    """``run`` for scripts: starts a trio loop of its own.

    Args:
        wasm: The guest: a path to a ``.wasm`` file (or a program from ``wassh cc``),
            or a compiled ``wasmtime.Module``.
        argv: The guest's arguments, its program name first, as a list or tuple of str
            (a bare str is refused, not split into letters). Default: the file name of
            ``wasm``, or ``["guest"]`` for a module.
        env: The guest's environment, str to str. Default: empty (the host's own
            environment is never passed implicitly).
        stdin: The guest's standard input: bytes (or a bytearray, copied now), read to
            the end and then end of file; a host file descriptor; a file object with a
            ``fileno()`` (its descriptor is read directly, past any Python buffering);
            or None for the host's fd 0.
        stdout: The guest's standard output: a host file descriptor; a file object with a
            ``fileno()`` (flushed now; the guest writes to its descriptor); a callable
            taking each chunk of bytes, such as ``Capture()``; or None for the host's fd 1.
        stderr: The guest's standard error, as ``stdout``; None is the host's fd 2.
        dirs: Host directories the guest may use (preopens), as a list or tuple of
            ``"HOST[::GUEST]"`` strings or ``(host, guest)`` pairs; a mapping is refused
            (pairs let one host directory appear at several guest paths).
        hosts: Names the guest may resolve, each to an address or a list of addresses
            (str); added to ``config.hosts``, replacing a name given there. A list of pairs is
            refused: give a mapping.
        plugins: The embedder's own plugins, a list or tuple of plugin objects, classes
            (instantiated once per runtime) or modules; registered after the installed ones.
        block: Names of plugins not to load (a list, tuple or set of str); an unknown
            name is a ``wassh.PluginError``.
        entry_points: Whether to load the installed plugins (entry points); False keeps
            only the built-in defaults and ``plugins``.
        config: The core's settings (policy, timeouts, hosts, plugin settings); copied,
            never changed. Default: ``TransportConfig()``.
        trace: Log every host call the guest makes to stderr.
        dev: Preopen a virtual ``/dev`` (null, tty) after ``dirs``, unless ``dirs``
            already gives ``/`` or ``/dev``.
        max_memory: The most linear memory the guest may have, in bytes (an int, not a
            bool; not negative); past it ``memory.grow`` fails and ``malloc`` returns
            NULL. Default: wasm32's 4 GiB.
        events: A callable receiving each socket event (``wassh.events``) on the guest
            thread, in order; it must be quick and must not raise.
        settings: Plugins' own settings by plugin name, each a mapping of option names
            (str) to values, as ``TransportConfig.settings``; giving a plugin settings
            also requires it.
        programs: Programs the guest may start with ``posix_spawn`` or ``fork`` +
            ``exec``, by name, each a ``.wasm`` path or a module; the guest's own module
            is there under its own name.

    Returns:
        The guest's exit status (128 + signal when a signal's default action stopped it).

    Raises:
        TypeError: An argument of the wrong type, named in the message (unknown
            keywords too), before any plugin loads or the module compiles.
        ValueError: A negative ``max_memory`` or file descriptor; settings given for
            a plugin both in ``config`` and ``settings``.
        wassh.PluginError: A plugin the configuration depends on cannot be used.
        wassh.StartError: The module is not WebAssembly, is not a WASI command this
            host runs, or cannot be instantiated (``max_memory`` below its minimum).
        wassh.GuestTrap: The guest trapped.
        OSError: ``wasm`` cannot be read.
    """
    import trio

    return trio.run(
        lambda: run(
            wasm,
            argv,
            env=env,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            dirs=dirs,
            hosts=hosts,
            plugins=plugins,
            block=block,
            entry_points=entry_points,
            config=config,
            trace=trace,
            dev=dev,
            max_memory=max_memory,
            events=events,
            settings=settings,
            programs=programs,
        )
    )


class Capture:
    """A stdout/stderr sink that keeps everything the guest writes."""

    def __init__(self) -> None:
        self.data = bytearray()

    def __call__(self, chunk: bytes) -> None:
        self.data += chunk

    def text(self) -> str:
        return self.data.decode("utf-8", "replace")
