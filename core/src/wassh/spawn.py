"""Which program a guest's exec or posix_spawn runs, and the process it runs in.

Nothing here ever runs a host binary. A name is looked up in the **program
map**: the running module under its own file name (so ``ssh`` starting
``ssh -W`` works), plus what ``wassh run --program NAME=PATH.wasm`` or
``prepare(programs=...)`` add. ``sh -c 'COMMAND'`` (also ``/bin/sh``,
``bash`` or ``$SHELL``) is read by a minimal parser — words, quotes, a
leading ``exec`` — and what it names is looked up again; anything a shell
would interpret (pipes, ``;``, redirections, ``$``) fails with one line and
the child exits 127, as a shell's "not found" does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import PurePosixPath

import wasmtime

from .abi.errno import Errno
from .host.objects import OpenObject
from .runtime import Process
from .spawn_request import Handover

Program = str | os.PathLike[str] | wasmtime.Module

SHELLS = frozenset({"sh", "bash", "dash", "ash"})
# Characters a shell gives a meaning the parser does not implement.
_SPECIAL = {
    "|": "pipes",
    "&": "'&' and '&&'",
    ";": "';' (one command only)",
    "<": "redirections",
    ">": "redirections",
    "(": "subshells",
    ")": "subshells",
    "`": "command substitution",
    "$": "'$' expansions",
    "\n": "several lines",
}
_MAX_SHELL_DEPTH = 8


class SpawnFailure(Exception):
    """The program cannot start: ``errno`` for a caller that can be told
    (posix_spawn, exec without fork), else a child that prints ``message`` and
    exits with ``status``."""

    def __init__(self, message: str, status: int = 127, errno: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.errno = errno


class ShellSyntax(Exception):
    """A ``sh -c`` command uses something the minimal parser does not do."""


def shell_words(command: str, home: str | None = None) -> list[str]:
    """Split ``command`` as sh would for a simple command: quotes and backslashes.

    A leading ``~/`` becomes ``home``. ``ShellSyntax`` names what is not supported.
    """
    words: list[str] = []
    word: list[str] = []
    in_word = False
    i, n = 0, len(command)
    while i < n:
        c = command[i]
        if c in " \t":
            if in_word:
                words.append("".join(word))
                word, in_word = [], False
            i += 1
            continue
        if c == "#" and not in_word:
            raise ShellSyntax("comments")
        if c in _SPECIAL:
            raise ShellSyntax(_SPECIAL[c])
        if c == "~" and not in_word:
            if home is None or not (i + 1 == n or command[i + 1] in "/ \t"):
                raise ShellSyntax("'~' expansion")
            word.append(home)
            in_word = True
            i += 1
            continue
        in_word = True
        if c == "'":
            end = command.find("'", i + 1)
            if end < 0:
                raise ShellSyntax("an unterminated quote")
            word.append(command[i + 1 : end])
            i = end + 1
        elif c == '"':
            i += 1
            while True:
                if i >= n:
                    raise ShellSyntax("an unterminated quote")
                c = command[i]
                if c == '"':
                    i += 1
                    break
                if c in "$`":
                    raise ShellSyntax(_SPECIAL[c])
                if c == "\\" and i + 1 < n and command[i + 1] in '"\\$`\n':
                    word.append(command[i + 1])
                    i += 2
                    continue
                word.append(c)
                i += 1
        elif c == "\\":
            if i + 1 >= n:
                raise ShellSyntax("a trailing backslash")
            word.append(command[i + 1])
            i += 2
        else:
            word.append(c)
            i += 1
    if in_word:
        words.append("".join(word))
    if words and "=" in words[0] and words[0].split("=", 1)[0].isidentifier():
        raise ShellSyntax("variable assignments")
    while words and words[0] == "exec":
        words = words[1:]
    return words


class ProgramMap:
    """Names a guest may run, each a module (compiled on first use)."""

    def __init__(self, programs: Mapping[str, Program] | None = None) -> None:
        self._given: dict[str, Program] = dict(programs or {})
        self._loaded: dict[str, wasmtime.Module] = {}

    def add(self, name: str, program: Program) -> None:
        self._given.setdefault(name, program)

    def names(self) -> list[str]:
        return sorted(self._given)

    def find(self, path: str) -> tuple[str, Program] | None:
        """The entry for ``path``: itself, its file name, or that without ``.wasm``."""
        base = PurePosixPath(path).name
        for key in (path, base, base.removesuffix(".wasm")):
            if key and key in self._given:
                return key, self._given[key]
        return None

    def module(self, key: str, program: Program) -> wasmtime.Module:
        if isinstance(program, wasmtime.Module):
            return program
        cached = self._loaded.get(key)
        if cached is None:
            from .engine import load_module

            try:
                cached = load_module(program)
            except OSError as exc:
                raise SpawnFailure(
                    f"{key}: cannot read {os.fspath(program)}: {exc.strerror}"
                ) from exc
            except wasmtime.WasmtimeError as exc:
                raise SpawnFailure(
                    f"{key}: {os.fspath(program)} is not a usable WebAssembly module"
                ) from exc
            self._loaded[key] = cached
        return cached


def _is_shell(path: str, env: Mapping[str, str]) -> bool:
    return PurePosixPath(path).name in SHELLS or (bool(env.get("SHELL")) and path == env["SHELL"])


def resolve(
    programs: ProgramMap, path: str, argv: list[str], env: Mapping[str, str]
) -> tuple[wasmtime.Module, list[str]] | None:
    """The module to run and its argv; None for an empty ``sh -c ''`` (exits 0).

    :raises SpawnFailure: the program is unknown, or the shell command unsupported.
    """
    direct = True
    for _depth in range(_MAX_SHELL_DEPTH):
        found = programs.find(path)
        if found is not None:
            return programs.module(*found), argv
        if not _is_shell(path, env):
            hint = "add it with --program NAME=PATH.wasm"
            raise SpawnFailure(
                f"{path}: no such program ({hint})", errno=Errno.ENOENT if direct else None
            )
        shell = PurePosixPath(path).name
        if len(argv) < 3 or argv[1] != "-c":
            raise SpawnFailure(f"{shell}: only '{shell} -c COMMAND' is supported")
        try:
            words = shell_words(argv[2], env.get("HOME"))
        except ShellSyntax as exc:
            raise SpawnFailure(f"{shell} -c: {exc} not supported in {argv[2]!r}") from None
        if not words:
            return None
        path, argv, direct = words[0], words, False
    raise SpawnFailure(f"{path}: shells nested too deeply")


class ChildProcess(Process):
    """A guest started by another: its descriptors 0-2 are handed over, not the host's."""

    handover: list[Handover]

    def _setup_fds(self) -> None:
        for n, given in enumerate(self.handover):
            obj = given.make(self.waiter)
            if obj is None:
                continue
            self.fds.place(n, obj)
            if given.shared is not None:  # the hold taken at spawn passes to the table
                given.shared.refs -= 1
                given.shared = None
        for host_path, guest_path in self.config.preopens:
            self.preopen_fds.add(self.fds.add(_open_preopen(host_path, guest_path), lowest=3))
        if self.config.dev and not any(g in ("/", "/dev") for _h, g in self.config.preopens):
            from .host.files import dev_preopen

            self.preopen_fds.add(self.fds.add(dev_preopen(), lowest=3))


def _open_preopen(host_path: str, guest_path: str) -> OpenObject:
    from .host.files import open_preopen

    return open_preopen(host_path, guest_path)
