"""``wassh cc``: a C compiler driver for wassh guests, in the spirit of ``emcc``.

It runs ``zig cc`` (from the ``ziglang`` package) for ``wasm32-wasi`` (preview1)
with the wassh guest SDK: the SDK's override headers come first on the include
path, so that ordinary POSIX socket code compiles, and when linking, the SDK's
object files are added so that the socket calls reach the wassh host calls.

The SDK sources are compiled once per (SDK sources, flags, zig version) into
``$XDG_CACHE_HOME/wassh/sdk-<hash>/`` (default ``~/.cache``). The directory is
built under a temporary name and renamed into place, so concurrent builds never
see a half-written cache; a lock file makes a parallel ``make`` build it once.

The command line itself is driven by the lean module ``_wassh_cc`` (runnable
programs, stripping, project libraries, refused modes): this module builds the
SDK and writes the record that lets that driver skip it on later calls.

zig comes from the ``ziglang`` package, the ``cc`` extra (``pip install
"wassh[cc]"``): running guests does not need it.

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
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path

import _wassh_cc

__all__ = [
    "SDK_INCLUDE",
    "CompileError",
    "ZigMissing",
    "build_command",
    "compile_c",
    "main",
    "refresh_record",
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


class CompileError(subprocess.CalledProcessError):
    """A compiler run failed; ``stderr`` holds the compiler's diagnostics."""

    def __str__(self) -> str:
        text = super().__str__()
        err = self.stderr
        if isinstance(err, bytes):
            err = err.decode(errors="replace")
        return f"{text}\n{err}" if err else text


class ZigMissing(RuntimeError):
    """The ``ziglang`` package (zig) is not installed."""

    def __init__(self) -> None:
        super().__init__(
            "needs zig, which is not installed: pip install 'wassh[cc]' (or: pip install ziglang)"
        )


def _zig_cc() -> list[str]:
    # The ``zig`` binary inside the ``ziglang`` package, run directly: ``python -m
    # ziglang`` would cost a second interpreter start on every compile (configure
    # scripts and makefiles run the compiler hundreds of times).
    spec = importlib.util.find_spec("ziglang")
    if spec is not None and spec.origin:
        zig = Path(spec.origin).parent / ("zig.exe" if os.name == "nt" else "zig")
        if zig.is_file():
            return [str(zig), "cc"]
    raise ZigMissing


def _zig_version() -> str:
    try:
        return metadata.version("ziglang")
    except metadata.PackageNotFoundError:
        raise ZigMissing from None


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
    return Path(_wassh_cc.cache_root())


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


def _build_sdk(final: Path) -> None:
    """Compile the SDK into ``final``, once even when several builds start together."""
    import fcntl

    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / f".{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another build may be doing it: wait for it
        if final.is_dir():
            return
        # zig builds wasi-libc on its first use: tens of seconds without a word otherwise.
        sys.stderr.write(
            "wassh cc: building the guest SDK (once; about a minute the first time)...\n"
        )
        sys.stderr.flush()
        started = time.monotonic()
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
        try:
            sources = _sdk_sources()
            with ThreadPoolExecutor(max_workers=max(1, min(len(sources), 8))) as pool:
                for fut in [pool.submit(_compile_sdk_source, s, tmp) for s in sources]:
                    fut.result()
            tmp.rename(final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        took = time.monotonic() - started
        sys.stderr.write(f"wassh cc: guest SDK built in {took:.1f} s\n")


def sdk_objects() -> list[Path]:
    """Return the SDK object files, compiling them into the cache if needed."""
    final = _cache_root() / f"sdk-{_sdk_hash()}"
    if not final.is_dir():
        _build_sdk(final)
    return sorted(final.glob("*.o"))


def _prefix() -> list[str]:
    """zig and the flags every call gets, before its own arguments."""
    return [*_zig_cc(), *TARGET_FLAGS, *SJLJ_FLAGS, DEFAULT_OPT, *DEFINES, "-I", str(SDK_INCLUDE)]


def refresh_record() -> tuple[list[str], list[str]]:
    """Build the SDK if needed and record what the lean driver needs on later calls:
    ``(compile prefix, SDK objects)``.

    The signature is taken before the SDK is hashed: a source edited meanwhile
    leaves a stale record, never a wrong one.
    """
    prefix = _prefix()
    final = _cache_root() / f"sdk-{_sdk_hash()}"
    final.parent.mkdir(parents=True, exist_ok=True)
    if not final.is_dir():
        _build_sdk(final)
    sig = _wassh_cc.signature(prefix[0], str(final))
    objects = [str(p) for p in sorted(final.glob("*.o"))]
    fields = [sig, *prefix, *objects]
    if objects and not any("\n" in f or "\0" in f for f in fields):
        text = "\n".join([_wassh_cc.RECORD_VERSION, sig, "\0".join(prefix), "\0".join(objects)])
        record = Path(_wassh_cc.record_path())
        tmp = record.with_name(f"{record.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, record)
        except OSError:  # a read-only cache: every call takes this path, still correct
            tmp.unlink(missing_ok=True)
    return prefix, objects


def build_command(args: Sequence[str]) -> list[str]:
    """The full ``zig cc`` command line for ``wassh cc args...`` (the arguments as
    given: no runnable-program header, stripping or library rewriting)."""
    cmd = _prefix()
    if _wassh_cc.Plan(list(args)).links:
        cmd.extend(str(obj) for obj in sdk_objects())
        cmd.extend(_wassh_cc.LINK_FLAGS)
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
    """Entry point of ``wassh cc`` (see ``_wassh_cc``): zig's exit status."""
    return _wassh_cc.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
