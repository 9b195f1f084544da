"""The embedding API's arguments: the shapes each one takes, and the checks.

Every check returns its argument in the form the runtime takes, or raises
``TypeError`` (``ValueError`` for a value out of range) naming the argument, so a
call with a typo is refused before a plugin loads or the module compiles.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import replace
from types import ModuleType
from typing import TYPE_CHECKING, Protocol, TypeAlias

import wasmtime

from .plugins import TransportConfig
from .runtime import Stdin, Stdout

if TYPE_CHECKING:
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


def checked_wasm(wasm: object) -> Wasm:
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


def checked_strs(name: str, value: object, *, ordered: bool) -> list[str]:
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


def checked_mapping(name: str, value: object, what: str) -> Mapping[object, object]:
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping of {what}, not {_kind(value)}")
    for key in value:
        if not isinstance(key, str):
            raise TypeError(f"{name} keys must be str: {key!r} is {_kind(key)}")
    return value


def checked_env(env: object) -> dict[str, str]:
    if env is None:
        return {}
    given = checked_mapping("env", env, "str to str")
    for key, value in given.items():
        if not isinstance(value, str):
            raise TypeError(f"env values must be str: {key!r} is {_kind(value)}")
    return {str(key): str(value) for key, value in given.items()}


def checked_hosts(hosts: object) -> dict[str, list[str]]:
    if hosts is None:
        return {}
    given = checked_mapping("hosts", hosts, "names to an address or a list of addresses")
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


def checked_settings(settings: object) -> dict[str, dict[str, object]]:
    if settings is None:
        return {}
    given = checked_mapping("settings", settings, "plugin names to their settings")
    checked: dict[str, dict[str, object]] = {}
    for plugin, options in given.items():
        if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
            raise TypeError(
                f"settings values must be mappings of option names (str) to values: "
                f"{plugin!r} is {_kind(options)}"
            )
        checked[str(plugin)] = dict(options)
    return checked


def checked_programs(programs: object) -> dict[str, Program]:
    if programs is None:
        return {}
    given = checked_mapping("programs", programs, "program names to modules or paths")
    checked: dict[str, Program] = {}
    for name, program in given.items():
        try:
            checked[str(name)] = checked_wasm(program)
        except TypeError:
            raise TypeError(
                f"programs values must be paths (str or os.PathLike[str]) or wasmtime.Module: "
                f"{name!r} is {_kind(program)}"
            ) from None
    return checked


def checked_dirs(dirs: object) -> list[tuple[str, str]]:
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


def checked_plugins(plugins: object) -> list[object]:
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


def checked_flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be bool, not {_kind(value)}")
    return value


def checked_size(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int (bytes) or None, not {_kind(value)}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, not {value}")
    return value


def checked_fd(name: str, fd: int) -> int:
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
    return checked_fd(name, fd)


_STDIN_SHAPES = "bytes, a file descriptor, a file object (with a fileno()) or None"
_OUTPUT_SHAPES = (
    "a file descriptor, a file object (with a fileno()), a callable taking bytes or None"
)


def checked_stdin(stdin: object) -> Stdin:
    if stdin is None or isinstance(stdin, bytes):
        return stdin
    if isinstance(stdin, bytearray):
        return bytes(stdin)
    if isinstance(stdin, bool) or _is_text(stdin):
        raise TypeError(f"stdin must be {_STDIN_SHAPES}, not {_kind(stdin)}")
    if isinstance(stdin, int):
        return checked_fd("stdin", stdin)
    if hasattr(stdin, "fileno"):
        return _fd_of_file("stdin", stdin, _STDIN_SHAPES)
    raise TypeError(f"stdin must be {_STDIN_SHAPES}, not {_kind(stdin)}")


def checked_output(name: str, output: object) -> Stdout:
    if output is None:
        return None
    if isinstance(output, bool) or _is_text(output):
        raise TypeError(f"{name} must be {_OUTPUT_SHAPES}, not {_kind(output)}")
    if isinstance(output, int):
        return checked_fd(name, output)
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


def checked_config(config: object) -> TransportConfig:
    if config is None:
        return TransportConfig()
    if not isinstance(config, TransportConfig):
        raise TypeError(f"config must be a wassh.TransportConfig or None, not {_kind(config)}")
    # A copy: what this guest adds (hosts, settings) never leaks into the caller's.
    return replace(config, hosts=dict(config.hosts), settings=dict(config.settings))


def checked_events(events: object) -> EventSink | None:
    if events is not None and not callable(events):
        raise TypeError(f"events must be a callable taking an event, or None, not {_kind(events)}")
    return events  # callable: the sink's signature is its documented contract


def checked_trio_token(token: object) -> TrioToken | None:
    if token is None:
        return None
    # No token exists without trio imported: the check costs no import.
    trio = sys.modules.get("trio")
    if trio is None or not isinstance(token, trio.lowlevel.TrioToken):
        raise TypeError(f"trio_token must be a trio.lowlevel.TrioToken or None, not {_kind(token)}")
    return token  # type: ignore[no-any-return]
