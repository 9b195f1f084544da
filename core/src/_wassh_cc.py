"""The driver behind ``wassh cc``, lean because build systems call it hundreds of times.

It imports nothing beyond ``os`` and ``sys`` (loaded with the interpreter) and never the
``wassh`` package, whose import loads the host (wasmtime's bindings, ~150 ms). What a
call needs from the package, the zig binary, the flags and the guest SDK's objects, is
kept in a *record* in the cache by :mod:`wassh.cc`, which also builds the SDK. The
record holds while the size and mtime of every SDK source, of both driver modules and
of zig are what they were when it was written: a few dozen ``stat`` calls instead of
hashing the SDK on every call. On a miss, :mod:`wassh.cc` is imported and rewrites it.

Besides the flags, the driver decides what the compiler cannot know about wassh:

- ``-o NAME`` (and no ``-o`` at all: ``a.out``) where NAME does not end in ``.wasm``,
  when the call links, writes a *runnable program*: a shell header that runs the module
  with ``wassh run`` followed by the module (see :func:`launcher_header`). Configure
  scripts can then run their test programs (``conftest``, run with ``--no-cache``: once
  only), and ``wassh run`` accepts the file as well.
  ``wassh cc --extract-module PROGRAM OUT.wasm`` writes the bare module back.
- Without ``-g`` on the link line, the program carries no DWARF (as with gcc): zig's
  libc brings ~1 MB of it. The ``name`` section stays, so a trap still names functions.
  ``-s`` strips everything.
- ``-lutil``, ``-lm``, ``-lpthread``, ``-ldl``... are libc to zig, which drops them;
  a project's own library of such a name found through ``-L`` is linked by path.
- ``-shared`` and its kin stop with one line: wasm32-wasi programs link statically.
- ``-fsyntax-only`` checks each source by compiling it to a scratch object that is
  thrown away (zig's own handling of the flag fails).
"""

from __future__ import annotations

import os
import sys

# No other imports (collections.abc alone would cost ~3 ms per call).

__all__ = [
    "LAUNCHER_MAGIC",
    "RECORD_VERSION",
    "extract_module",
    "launcher_header",
    "main",
    "module_bytes",
    "record_path",
    "signature",
    "strip_debug",
]

RECORD_VERSION = "wassh-cc-record 1"
SDK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wassh", "sdk")
DRIVERS = (
    os.path.abspath(__file__),
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "wassh", "cc.py"),
)
WASM_MAGIC = b"\0asm"
LAUNCHER_MAGIC = b"#!"

# What zig treats as part of libc for wasm32-wasi (and so ignores as -l).
_LIBC_NAMES = frozenset(
    {"c", "m", "rt", "pthread", "util", "resolv", "dl", "crypt", "xnet", "setjmp"}
)
# Options after which the compiler does not link.
_NO_LINK_FLAGS = frozenset(
    {"-c", "-E", "-S", "-M", "-MM", "-fsyntax-only", "-###", "--version", "--help"}
)
_NO_LINK_PREFIXES = ("-print-", "--print-")
# Every link exports the function table, so the host can tell the SDK how many
# parameters a signal handler takes (wasm traps on an indirect call of the
# wrong type; a K&R `void h()` handler takes none).
LINK_FLAGS = ("-Wl,--export-table",)
_SHARED_FLAGS = frozenset(
    {"-shared", "-dynamiclib", "-bundle", "-Wl,-shared", "-Wl,--shared", "-Wl,-Bshareable"}
)
# Options whose value is the next argument (so that value is not an input file).
_FLAGS_WITH_VALUE = frozenset(
    {
        "-o",
        "-I",
        "-D",
        "-U",
        "-L",
        "-l",
        "-x",
        "-include",
        "-imacros",
        "-isystem",
        "-idirafter",
        "-iquote",
        "-isysroot",
        "-iprefix",
        "-iwithprefix",
        "-iwithprefixbefore",
        "--sysroot",
        "-MF",
        "-MT",
        "-MQ",
        "-Xlinker",
        "-Xclang",
        "-Xpreprocessor",
        "-Xassembler",
        "-mllvm",
        "-target",
        "-arch",
        "-z",
        "-u",
        "-e",
        "-T",
    }
)


class UsageError(Exception):
    """A request ``wassh cc`` refuses, in one line."""


class ToolMissing(Exception):
    """zig (the ``ziglang`` package) is not installed, or the guest SDK did not build."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


# -- the record ---------------------------------------------------------------------


def cache_root() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "wassh")


def record_path() -> str:
    """One record per installation (the directory holding this module)."""
    key = 0xCBF29CE484222325
    for ch in os.path.dirname(os.path.abspath(__file__)):  # FNV-1a: no hashlib import
        key = ((key ^ ord(ch)) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return os.path.join(cache_root(), f"cc-{key:016x}.record")


def signature(zig: str, objects_dir: str) -> str:
    """Size and mtime of what a record depends on; any change makes it stale."""
    paths = [*DRIVERS, zig, objects_dir]
    for top, dirs, files in os.walk(SDK_DIR):
        dirs.sort()
        paths.extend(os.path.join(top, f) for f in sorted(files) if f.endswith((".c", ".h")))
    parts = []
    for path in paths:
        st = os.stat(path)
        parts.append(f"{path}:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}")
    return "|".join(parts)


def _read_record() -> tuple[list[str], list[str]] | None:
    """``(compile prefix, SDK objects)`` if the record exists and holds."""
    try:
        with open(record_path(), encoding="utf-8") as f:
            version, sig, prefix, objects = f.read().split("\n")
        head = prefix.split("\0")
        objs = objects.split("\0")
        if version != RECORD_VERSION or sig != signature(head[0], os.path.dirname(objs[0])):
            return None
    except (OSError, ValueError, IndexError):
        return None
    return head, objs


def _load() -> tuple[list[str], list[str]]:
    found = _read_record()
    if found is not None:
        return found
    try:
        from wassh import cc  # the package, once: builds the SDK if needed
    except ImportError as exc:
        raise ToolMissing(f"cannot load the wassh package: {exc}", 2) from None
    try:
        return cc.refresh_record()
    except cc.ZigMissing as exc:
        raise ToolMissing(str(exc), 2) from None
    except cc.CompileError as exc:
        detail = exc.stderr if isinstance(exc.stderr, str) else ""
        raise ToolMissing(f"building the guest SDK failed\n{detail}".rstrip(), 1) from None


# -- the module inside a runnable program ---------------------------------------------


def launcher_header(wassh: list[str], *, cache: bool = True) -> bytes:
    """The shell lines before the module in a runnable program.

    The format: the file starts with ``#!``; its header is shell text without NUL
    bytes; the module starts at the first ``\\0asm``. ``wassh run`` skips the header,
    and its module cache keys on the module's bytes. The program runs with the
    current directory preopened as ``.`` (configure's test programs write files such
    as ``conftest.val`` there), its arguments as given, and nothing else. Without
    ``cache`` it runs with ``--no-cache``.
    """
    command = " ".join(_shell_quote(w) for w in wassh)
    options = "--dir ." if cache else "--dir . --no-cache"
    # "--" before the program ends wassh's options; the one after it is taken off
    # the program's arguments by wassh run, which keeps any "--" of their own.
    return f'#!/bin/sh\nexec {command} run {options} -- "$0" -- "$@"\n'.encode()


def module_bytes(data: bytes) -> bytes:
    """The module in ``data``: the whole of it, or what follows a launcher's header."""
    if data.startswith(LAUNCHER_MAGIC):
        at = data.find(WASM_MAGIC)
        if at >= 0:
            return data[at:]
    return data


def _shell_quote(word: str) -> str:
    return "'" + word.replace("'", "'\\''") + "'"


def _wassh_command() -> list[str]:
    """How the program's header reaches ``wassh``: the command that ran this, if it is
    the ``wassh`` script, else the one beside this Python, else ``python -m wassh``."""
    argv0 = sys.argv[0] if sys.argv else ""
    if os.path.basename(argv0) == "wassh" and os.path.isfile(argv0):
        return [os.path.abspath(argv0)]
    beside = os.path.join(os.path.dirname(sys.executable), "wassh")
    if os.access(beside, os.X_OK):
        return [beside]
    return [sys.executable, "-m", "wassh"]


def strip_debug(module: bytes) -> bytes:
    """``module`` without its DWARF custom sections (``.debug_*``); all else stays."""
    if not module.startswith(WASM_MAGIC) or len(module) < 8:
        return module
    out = [module[:8]]
    at = 8
    while at < len(module):
        start = at
        size, at = _leb128(module, at + 1)
        end = at + size
        if module[start] == 0:
            name_len, name_at = _leb128(module, at)
            if module[name_at : name_at + name_len].startswith(b".debug_"):
                at = end
                continue
        out.append(module[start:end])
        at = end
    return b"".join(out)


def _leb128(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def extract_module(program: str, output: str) -> None:
    with open(program, "rb") as f:
        data = module_bytes(f.read())
    if not data.startswith(WASM_MAGIC):
        raise UsageError(f"--extract-module: {program} is not a wasm module or program")
    _write_atomically(output, data, 0o644)


def _write_atomically(path: str, data: bytes, mode: int) -> None:
    tmp = f"{path}.wassh-cc-{os.getpid()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with open(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)  # not narrowed by the umask: the output zig wrote was not either
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# -- the command line ---------------------------------------------------------------


class Plan:
    """What one ``wassh cc`` call does, read from its arguments."""

    def __init__(self, args: list[str]) -> None:
        self.args = list(args)
        self.links = False
        self.syntax_only = False
        self.output: str | None = None
        self.debug = False
        self.strip_all = False
        self.lib_dirs: list[str] = []
        self.inputs: list[int] = []  # indices of source/object arguments
        self._read()

    def _read(self) -> None:
        has_input = False
        no_link = False
        args = self.args
        i = 0
        while i < len(args):
            arg = args[i]
            value = args[i + 1] if i + 1 < len(args) else None
            if arg in _SHARED_FLAGS:
                raise UsageError(
                    f"{arg}: shared libraries are not supported: wasm32-wasi programs "
                    "link statically (configure with --disable-shared)"
                )
            if arg == "-fsyntax-only":
                self.syntax_only = True
            if arg in _NO_LINK_FLAGS or arg.startswith(_NO_LINK_PREFIXES):
                no_link = True
            if arg == "-s":
                self.strip_all = True
            elif arg.startswith("-g"):
                self.debug = arg != "-g0"
            if arg == "-o" and value is not None:
                self.output = value
            elif arg.startswith("-o") and len(arg) > 2:
                self.output = arg[2:]
            if arg == "-L" and value is not None:
                self.lib_dirs.append(value)
            elif arg.startswith("-L") and len(arg) > 2:
                self.lib_dirs.append(arg[2:])
            if arg in _FLAGS_WITH_VALUE:
                i += 2
                continue
            if arg == "-" or not arg.startswith("-"):
                has_input = True  # a source or object file
                self.inputs.append(i)
            i += 1
        self.links = has_input and not no_link

    def link_args(self) -> list[str]:
        """The arguments with project libraries named like libc ones linked by path."""
        out: list[str] = []
        args = self.args
        i = 0
        while i < len(args):
            arg = args[i]
            if arg in _FLAGS_WITH_VALUE and i + 1 < len(args):
                if arg == "-l":
                    out.append(self._library(args[i + 1]))
                else:
                    out.extend(args[i : i + 2])
                i += 2
                continue
            out.append(self._library(arg[2:]) if arg.startswith("-l") else arg)
            i += 1
        if self.output is None:
            out.extend(["-o", "a.out"])
        return out

    def _library(self, name: str) -> str:
        if name in _LIBC_NAMES:
            for d in self.lib_dirs:  # as ld: every -L, whatever its place
                path = os.path.join(d, f"lib{name}.a")
                if os.path.isfile(path):
                    return path
        return f"-l{name}"

    @property
    def launcher(self) -> bool:
        return self.links and not (self.output or "a.out").endswith(".wasm")


def _spawn(cmd: list[str]) -> int:
    pid = os.posix_spawn(cmd[0], cmd, os.environ)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            return os.waitstatus_to_exitcode(status)
        except InterruptedError:  # pragma: no cover - PEP 475 retries already
            continue


def _exec(cmd: list[str]) -> int:
    sys.stdout.flush()
    if os.name == "posix":
        os.execv(cmd[0], cmd)  # no second process
    import subprocess  # pragma: no cover - not POSIX

    return subprocess.run(cmd, check=False).returncode  # pragma: no cover


def _syntax_only(prefix: list[str], plan: Plan) -> int:
    """Each source compiled and the object thrown away: the diagnostics of -fsyntax-only."""
    skip = set(plan.inputs)
    common: list[str] = []
    args = plan.args
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-o":
            i += 2
            continue
        if i not in skip and arg != "-fsyntax-only" and not (arg.startswith("-o") and len(arg) > 2):
            common.append(arg)
        i += 1
    # zig takes "-o /dev/null" as no output and writes NAME.o beside the source.
    scratch = os.path.join(cache_root(), f"syntax-only-{os.getpid()}")
    os.makedirs(scratch, exist_ok=True)
    obj = os.path.join(scratch, "check.o")
    status = 0
    try:
        for at in plan.inputs:
            rc = _spawn([*prefix, *common, "-c", args[at], "-o", obj])
            status = status or rc
    finally:
        try:
            os.unlink(obj)
        except OSError:
            pass
        os.rmdir(scratch)
    return status


def expand_response_files(args: list[str], depth: int = 0) -> list[str]:
    """``@FILE`` arguments replaced by the arguments in FILE (quoted as in a shell,
    nested files too), as the compiler would: an ``-o`` or ``-l`` in one counts."""
    import shlex  # only for the build systems that use response files

    if depth > 16:
        raise UsageError("response files nested too deep (one includes itself?)")
    out: list[str] = []
    for arg in args:
        if arg.startswith("@") and os.path.isfile(arg[1:]):
            with open(arg[1:], encoding="utf-8", errors="surrogateescape") as f:
                out.extend(expand_response_files(shlex.split(f.read()), depth + 1))
        else:
            out.append(arg)
    return out


def run(args: list[str]) -> int:
    """``wassh cc args...``: the exit status (zig's, or 1 for a refused request)."""
    if args[:1] == ["--extract-module"]:
        if len(args) != 3:
            raise UsageError("usage: wassh cc --extract-module PROGRAM OUTPUT.wasm")
        extract_module(args[1], args[2])
        return 0
    if any(a.startswith("@") for a in args):
        args = expand_response_files(args)
    plan = Plan(args)
    prefix, objects = _load()
    if plan.syntax_only:
        return _syntax_only(prefix, plan)
    if not plan.links:
        return _exec([*prefix, *args])
    cmd = [*prefix, *objects, *LINK_FLAGS, *plan.link_args()]
    if plan.strip_all and not plan.launcher:
        return _exec(cmd)
    status = _spawn(cmd)
    output = plan.output or "a.out"
    if status != 0 or not os.path.isfile(output):
        return status
    with open(output, "rb") as f:
        module = f.read()
    if not (plan.debug or plan.strip_all):
        module = strip_debug(module)
    mode = os.stat(output).st_mode & 0o7777
    if plan.launcher:
        # configure's test programs run once: their compiled code is not worth caching.
        once = os.path.basename(output).startswith("conftest")
        module = launcher_header(_wassh_command(), cache=not once) + module
        mode |= 0o111
    _write_atomically(output, module, mode)
    return 0


def main(argv: list[str]) -> int:
    """Entry point of ``wassh cc``; a refused request or a missing tool is one line."""
    try:
        return run(argv)
    except UsageError as exc:
        sys.stderr.write(f"wassh cc: {exc}\n")
        return 1
    except ToolMissing as exc:
        sys.stderr.write(f"wassh cc: {exc}\n")
        return exc.status
    except OSError as exc:
        sys.stderr.write(f"wassh cc: {exc.filename or ''}: {exc.strerror or exc}\n")
        return 1
