"""The embedding API: run a guest from trio code, or from a plain script.

``prepare``, ``run`` and ``run_sync`` take the same keyword arguments (``prepare``
also ``trio_token``) and check every one of them before anything starts: a wrong
type is a ``TypeError`` naming the argument, raised before a plugin loads or the
module compiles, so a typo never runs a guest with half of what was meant.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import replace
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import wasmtime

from .command_module import StartError, first_line
from .engine import load_module
from .plugins import TransportConfig, Transports, make_plugin_manager
from .runtime import GuestCancelled, GuestConfig, Process, Stdin, Stdout
from .spawn import ProgramMap

if TYPE_CHECKING:
    import trio
    from trio.lowlevel import TrioToken

    from .events import EventSink


class HasFileno(Protocol):
    """A file object: anything with a ``fileno()``, such as ``open(path, "rb")``."""

    def fileno(self) -> int: ...


Wasm: TypeAlias = str | os.PathLike[str] | wasmtime.Module
"""A guest: a path to a ``.wasm`` file (or a program from ``wassh cc``), or a compiled module."""
Argv: TypeAlias = list[str] | tuple[str, ...]
"""A guest's arguments: a list or tuple (a bare ``str`` would be one argument per letter)."""
StdinSpec: TypeAlias = bytes | bytearray | int | HasFileno | None
"""The guest's stdin: bytes (then end of file), a host descriptor, a file object, or None."""
OutputSpec: TypeAlias = int | HasFileno | Callable[[bytes], object] | None
"""The guest's stdout or stderr: a host descriptor, a file object, a callable taking
bytes (``Capture``), or None."""
DirSpec: TypeAlias = str | tuple[str, str]
"""A preopened directory: ``"HOST[::GUEST]"`` or a ``(host, guest)`` pair."""
Names: TypeAlias = list[str] | tuple[str, ...] | AbstractSet[str]
"""Plugin names: a list, tuple or set of str."""
Program: TypeAlias = str | os.PathLike[str] | wasmtime.Module
"""A program a guest may start: a path to its module, or a compiled module."""


# -- the checks: each returns the argument in the form the runtime takes -----------------


def _kind(value: object) -> str:
    return type(value).__name__


def _is_text(value: object) -> bool:
    """Text or bytes: sequences, but never what a list of items was meant to be."""
    return isinstance(value, str | bytes | bytearray | memoryview)


def _checked_wasm(wasm: object) -> Wasm:
    if isinstance(wasm, wasmtime.Module | str):
        return wasm
    if isinstance(wasm, os.PathLike):
        try:
            path = os.fspath(wasm)
        except Exception:  # a broken __fspath__ is a wrong argument like any other
            path = None
        if isinstance(path, str):
            return wasm
    raise TypeError(
        f"wasm must be a path (str or os.PathLike[str]) or a wasmtime.Module, not {_kind(wasm)}"
    )


def _checked_strs(name: str, value: object, *, ordered: bool) -> list[str]:
    items: list[object]
    if (isinstance(value, Sequence) and not _is_text(value)) or (
        isinstance(value, AbstractSet) and not ordered
    ):
        items = list(value)
    else:
        what = "a list or tuple" if ordered else "a list, tuple or set"
        raise TypeError(f"{name} must be {what} of str, not {_kind(value)}")
    strs: list[str] = []
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"{name} must hold str only: item {index} is {_kind(item)}")
        strs.append(item)
    return strs


def _checked_mapping(name: str, value: object, what: str) -> Mapping[object, object]:
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping of {what}, not {_kind(value)}")
    for key in value:
        if not isinstance(key, str):
            raise TypeError(f"{name} keys must be str: {key!r} is {_kind(key)}")
    return value


def _checked_env(env: object) -> dict[str, str]:
    if env is None:
        return {}
    given = _checked_mapping("env", env, "str to str")
    for key, value in given.items():
        if not isinstance(value, str):
            raise TypeError(f"env values must be str: {key!r} is {_kind(value)}")
    return {str(key): str(value) for key, value in given.items()}


def _checked_hosts(hosts: object) -> dict[str, list[str]]:
    if hosts is None:
        return {}
    given = _checked_mapping("hosts", hosts, "names to an address or a list of addresses")
    checked: dict[str, list[str]] = {}
    for name, addrs in given.items():
        if isinstance(addrs, str):
            checked[str(name)] = [addrs]
        elif (
            isinstance(addrs, Sequence)
            and not _is_text(addrs)
            and all(isinstance(a, str) for a in addrs)
        ):
            checked[str(name)] = list(addrs)
        else:
            raise TypeError(
                f"hosts values must be an address (str) or a list or tuple of addresses: "
                f"{name!r} is {_kind(addrs)}"
            )
    return checked


def _checked_settings(settings: object) -> dict[str, dict[str, object]]:
    if settings is None:
        return {}
    given = _checked_mapping("settings", settings, "plugin names to their settings")
    checked: dict[str, dict[str, object]] = {}
    for plugin, options in given.items():
        if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
            raise TypeError(
                f"settings values must be mappings of option names (str) to values: "
                f"{plugin!r} is {_kind(options)}"
            )
        checked[str(plugin)] = dict(options)
    return checked


def _checked_programs(programs: object) -> dict[str, Program]:
    if programs is None:
        return {}
    given = _checked_mapping("programs", programs, "program names to modules or paths")
    checked: dict[str, Program] = {}
    for name, program in given.items():
        try:
            checked[str(name)] = _checked_wasm(program)
        except TypeError:
            raise TypeError(
                f"programs values must be paths (str or os.PathLike[str]) or wasmtime.Module: "
                f"{name!r} is {_kind(program)}"
            ) from None
    return checked


def _checked_dirs(dirs: object) -> list[tuple[str, str]]:
    # A mapping is refused rather than read as host -> guest: a sequence of pairs is
    # the one shape, so a host directory may be preopened at several guest paths.
    if _is_text(dirs) or not isinstance(dirs, Sequence):
        raise TypeError(
            f"dirs must be a list or tuple of 'HOST[::GUEST]' strings or (host, guest) pairs, "
            f"not {_kind(dirs)}"
        )
    preopens = []
    for index, spec in enumerate(dirs):
        if isinstance(spec, str):
            host, sep, guest = spec.partition("::")
            preopens.append((host, guest if sep else host))
        elif isinstance(spec, tuple) and len(spec) == 2 and all(isinstance(p, str) for p in spec):
            preopens.append((spec[0], spec[1]))
        else:
            raise TypeError(
                f"dirs must hold 'HOST[::GUEST]' strings or (host, guest) pairs of str: "
                f"item {index} is {_kind(spec)}"
            )
    return preopens


def _is_plugin(plugin: object) -> bool:
    """A module, a class, or an instance of a class of the embedder's (not None, a name, ...)."""
    return isinstance(plugin, ModuleType | type) or type(plugin).__module__ != "builtins"


def _checked_plugins(plugins: object) -> list[object]:
    if _is_text(plugins) or not isinstance(plugins, Sequence):
        raise TypeError(f"plugins must be a list or tuple of plugins, not {_kind(plugins)}")
    for index, plugin in enumerate(plugins):
        if not _is_plugin(plugin):
            raise TypeError(
                f"plugins must hold plugin objects, classes or modules: item {index} is "
                f"{_kind(plugin)} (a plugin's name goes in block, not plugins)"
                if isinstance(plugin, str)
                else f"plugins must hold plugin objects, classes or modules: item {index} is "
                f"{_kind(plugin)}"
            )
    return list(plugins)


def _checked_flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be bool, not {_kind(value)}")
    return value


def _checked_size(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int (bytes) or None, not {_kind(value)}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, not {value}")
    return value


def _checked_fd(name: str, fd: int) -> int:
    if fd < 0:
        raise ValueError(f"{name} must not be a negative file descriptor, not {fd}")
    return fd


def _fd_of_file(name: str, stream: object, shapes: str) -> int:
    try:
        fd = stream.fileno()  # type: ignore[attr-defined]
    except (OSError, ValueError) as exc:  # io.BytesIO, a closed file
        raise TypeError(
            f"{name} must be {shapes}, not {_kind(stream)} without a file descriptor ({exc})"
        ) from None
    if isinstance(fd, bool) or not isinstance(fd, int):
        raise TypeError(f"{name} must be {shapes}: {_kind(stream)}.fileno() gave {_kind(fd)}")
    return _checked_fd(name, fd)


_STDIN_SHAPES = "bytes, a file descriptor, a file object (with a fileno()) or None"
_OUTPUT_SHAPES = (
    "a file descriptor, a file object (with a fileno()), a callable taking bytes or None"
)


def _checked_stdin(stdin: object) -> Stdin:
    if stdin is None or isinstance(stdin, bytes):
        return stdin
    if isinstance(stdin, bytearray):
        return bytes(stdin)
    if isinstance(stdin, bool) or _is_text(stdin):
        raise TypeError(f"stdin must be {_STDIN_SHAPES}, not {_kind(stdin)}")
    if isinstance(stdin, int):
        return _checked_fd("stdin", stdin)
    if hasattr(stdin, "fileno"):
        return _fd_of_file("stdin", stdin, _STDIN_SHAPES)
    raise TypeError(f"stdin must be {_STDIN_SHAPES}, not {_kind(stdin)}")


def _checked_output(name: str, output: object) -> Stdout:
    if output is None:
        return None
    if isinstance(output, bool) or _is_text(output):
        raise TypeError(f"{name} must be {_OUTPUT_SHAPES}, not {_kind(output)}")
    if isinstance(output, int):
        return _checked_fd(name, output)
    if callable(output):
        sink: Callable[[bytes], object] = output
        return sink
    if hasattr(output, "fileno"):
        fd = _fd_of_file(name, output, _OUTPUT_SHAPES)
        # The guest writes to the descriptor itself: what the object buffered comes first.
        flush = getattr(output, "flush", None)
        if callable(flush):
            flush()
        return fd
    raise TypeError(f"{name} must be {_OUTPUT_SHAPES}, not {_kind(output)}")


def _checked_config(config: object) -> TransportConfig:
    if config is None:
        return TransportConfig()
    if not isinstance(config, TransportConfig):
        raise TypeError(f"config must be a wassh.TransportConfig or None, not {_kind(config)}")
    # A copy: what this guest adds (hosts, settings) never leaks into the caller's.
    return replace(config, hosts=dict(config.hosts), settings=dict(config.settings))


def _checked_events(events: object) -> EventSink | None:
    if events is not None and not callable(events):
        raise TypeError(f"events must be a callable taking an event, or None, not {_kind(events)}")
    return events  # callable: the sink's signature is its documented contract


def _checked_trio_token(token: object) -> TrioToken | None:
    if token is None:
        return None
    # No token exists without trio imported: the check costs no import.
    trio = sys.modules.get("trio")
    if trio is None or not isinstance(token, trio.lowlevel.TrioToken):
        raise TypeError(f"trio_token must be a trio.lowlevel.TrioToken or None, not {_kind(token)}")
    return token  # type: ignore[no-any-return]


def _compiled(path: str | os.PathLike[str]) -> wasmtime.Module:
    try:
        return load_module(path)
    except wasmtime.WasmtimeError as exc:
        why = first_line(exc, "invalid module")
        raise StartError(f"{os.fspath(path)} is not a usable WebAssembly module: {why}") from None


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
    wasm = _checked_wasm(wasm)
    own_argv = None if argv is None else _checked_strs("argv", argv, ordered=True)
    guest_env = _checked_env(env)
    guest_stdin = _checked_stdin(stdin)
    guest_stdout = _checked_output("stdout", stdout)
    guest_stderr = _checked_output("stderr", stderr)
    preopens = _checked_dirs(dirs)
    extra_hosts = _checked_hosts(hosts)
    own_plugins = _checked_plugins(plugins)
    blocked = _checked_strs("block", block, ordered=False)
    load_entry_points = _checked_flag("entry_points", entry_points)
    tconfig = _checked_config(config)
    tracing = _checked_flag("trace", trace)
    with_dev = _checked_flag("dev", dev)
    memory_limit = _checked_size("max_memory", max_memory)
    sink = _checked_events(events)
    plugin_settings = _checked_settings(settings)
    program_modules = _checked_programs(programs)
    token = _checked_trio_token(trio_token)

    for plugin, given in plugin_settings.items():
        if plugin in tconfig.settings:
            raise ValueError(f"settings for plugin {plugin!r} given twice (config and settings)")
        tconfig.settings[plugin] = given
    tconfig.hosts.update(extra_hosts)

    module = wasm if isinstance(wasm, wasmtime.Module) else _compiled(wasm)
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
