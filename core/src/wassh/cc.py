"""``wassh cc``: a C compiler driver for wassh guests, in the spirit of ``emcc``.

It runs ``zig cc`` (from the ``ziglang`` package) for ``wasm32-wasi`` (preview1)
with the wassh guest SDK: the SDK's override headers come first on the include
path, so that ordinary POSIX socket code compiles, and when linking, the SDK's
object files are added so that the socket calls reach the wassh host calls.

The SDK sources are compiled once per (SDK sources, flags, zig version) into
``$XDG_CACHE_HOME/wassh/sdk-<hash>/`` (default ``~/.cache``). The directory is
built under a temporary name and renamed into place, so concurrent builds never
see a half-written cache.

The SDK is linked as object files placed *before* the user's inputs, never as an
archive: wasi-libc already defines ``accept``, ``send``, ``recv`` and
``getsockopt``, and with an archive (or objects placed after a user object that
references those names) the libc versions would win or collide.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path

__all__ = [
    "SDK_INCLUDE",
    "CompileError",
    "build_command",
    "compile_c",
    "main",
    "sdk_objects",
]

SDK_DIR = Path(__file__).resolve().parent / "sdk"
SDK_INCLUDE = SDK_DIR / "include"
SDK_SRC = SDK_DIR / "src"

TARGET_FLAGS: tuple[str, ...] = ("-target", "wasm32-wasi")
# setjmp/longjmp: LLVM lowers them onto wasm exception handling, the
# standardised instructions (exnref), which the host's engine enables. Code
# that never calls setjmp compiles exactly as without these flags.
SJLJ_FLAGS: tuple[str, ...] = (
    "-mexception-handling",
    "-mllvm",
    "-wasm-enable-sjlj",
    "-mllvm",
    "-wasm-use-legacy-eh=false",
)
DEFINES: tuple[str, ...] = (
    "-D_WASI_EMULATED_SIGNAL",
    "-D_WASI_EMULATED_PROCESS_CLOCKS",
    "-D_WASI_EMULATED_GETPID",
    "-D_WASI_EMULATED_MMAN",
)
DEFAULT_OPT = "-O2"
SDK_CFLAGS: tuple[str, ...] = ("-O2", "-Wall", "-Wextra")

# Options after which the compiler does not link.
_NO_LINK_FLAGS = frozenset(
    {"-c", "-E", "-S", "-M", "-MM", "-fsyntax-only", "-###", "--version", "--help"}
)
_NO_LINK_PREFIXES = ("-print-", "--print-")

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


class CompileError(subprocess.CalledProcessError):
    """A compiler run failed; ``stderr`` holds the compiler's diagnostics."""

    def __str__(self) -> str:
        text = super().__str__()
        err = self.stderr
        if isinstance(err, bytes):
            err = err.decode(errors="replace")
        return f"{text}\n{err}" if err else text


def _zig_cc() -> list[str]:
    # The ``zig`` binary inside the ``ziglang`` package, run directly: ``python -m
    # ziglang`` would cost a second interpreter start on every compile (configure
    # scripts and makefiles run the compiler hundreds of times).
    spec = importlib.util.find_spec("ziglang")
    if spec is not None and spec.origin:
        zig = Path(spec.origin).parent / ("zig.exe" if os.name == "nt" else "zig")
        if zig.is_file():
            return [str(zig), "cc"]
    return [sys.executable, "-m", "ziglang", "cc"]


def _zig_version() -> str:
    try:
        return metadata.version("ziglang")
    except metadata.PackageNotFoundError:  # pragma: no cover - ziglang is a dependency
        return "unknown"


def _sdk_sources() -> list[Path]:
    return sorted(SDK_SRC.glob("*.c"))


def _sdk_hash() -> str:
    h = hashlib.sha256()
    h.update(f"zig={_zig_version()}\0".encode())
    for flag in (*TARGET_FLAGS, *SJLJ_FLAGS, *SDK_CFLAGS, *DEFINES):
        h.update(flag.encode() + b"\0")
    for path in sorted(p for p in SDK_DIR.rglob("*") if p.is_file()):
        if path.suffix not in (".c", ".h"):
            continue
        h.update(path.relative_to(SDK_DIR).as_posix().encode() + b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:20]


def _cache_root() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "wassh"


def _compile_sdk_source(source: Path, out_dir: Path) -> None:
    obj = out_dir / f"wassh_sdk_{source.stem}.o"
    cmd = [
        *_zig_cc(),
        *TARGET_FLAGS,
        *SJLJ_FLAGS,
        *SDK_CFLAGS,
        *DEFINES,
        "-I",
        str(SDK_INCLUDE),
        "-c",
        str(source),
        "-o",
        str(obj),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise CompileError(proc.returncode, cmd, proc.stdout, proc.stderr)


def sdk_objects() -> list[Path]:
    """Return the SDK object files, compiling them into the cache if needed."""
    final = _cache_root() / f"sdk-{_sdk_hash()}"
    if not final.is_dir():
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
        try:
            sources = _sdk_sources()
            with ThreadPoolExecutor(max_workers=max(1, min(len(sources), 8))) as pool:
                for fut in [pool.submit(_compile_sdk_source, s, tmp) for s in sources]:
                    fut.result()
            try:
                tmp.rename(final)
            except OSError:
                if not final.is_dir():  # not a lost race: a real failure
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return sorted(final.glob("*.o"))


def _links(args: Sequence[str]) -> bool:
    """Whether a compiler invocation with these arguments runs the linker."""
    has_input = False
    skip_next = False
    for arg in args:
        if skip_next:
            skip_next = False
            continue
        if arg in _NO_LINK_FLAGS or arg.startswith(_NO_LINK_PREFIXES):
            return False
        if arg in _FLAGS_WITH_VALUE:
            skip_next = True
        elif arg == "-" or not arg.startswith("-"):
            has_input = True  # a source/object file, or an @response file
    return has_input


def build_command(args: Sequence[str]) -> list[str]:
    """The full ``zig cc`` command line for ``wassh cc args...``."""
    cmd = [*_zig_cc(), *TARGET_FLAGS, *SJLJ_FLAGS, DEFAULT_OPT, *DEFINES, "-I", str(SDK_INCLUDE)]
    if _links(args):
        cmd.extend(str(obj) for obj in sdk_objects())
    cmd.extend(args)
    return cmd


def compile_c(sources: list[Path], output: Path, extra_args: Sequence[str] = ()) -> None:
    """Compile (and, unless ``-c`` is among ``extra_args``, link) C sources.

    Raises :class:`CompileError` (a :class:`subprocess.CalledProcessError`) with the
    compiler's stderr on failure.
    """
    cmd = build_command([*(str(s) for s in sources), "-o", str(output), *extra_args])
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise CompileError(proc.returncode, cmd, proc.stdout, proc.stderr)


def main(argv: list[str]) -> int:
    """Entry point of ``wassh cc``: returns zig's exit code."""
    try:
        cmd = build_command(argv)
    except CompileError as exc:
        sys.stderr.write("wassh cc: building the guest SDK failed\n")
        sys.stderr.write(exc.stderr or "")
        return exc.returncode or 1
    if os.name == "posix":
        sys.stdout.flush()
        os.execv(cmd[0], cmd)  # no second process: build systems call this a lot
    return subprocess.run(cmd, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
