"""Whether a compiled module can run as a command here, said before it starts.

wasmtime reports a missing import or export as a link error deep in
instantiation; the command line wants one line naming what is missing.
"""

from __future__ import annotations

import os

import wasmtime

from .abi.preview1 import MODULE as PREVIEW1
from .engine import load_module

HOST_MODULES = (PREVIEW1, "wassh_experimental", "wassh")


class StartError(RuntimeError):
    """The guest could not start: its module is not WebAssembly, is not a WASI
    command this host can run, or cannot be instantiated (a memory limit below
    the module's minimum, say). Raised before any guest code runs; the message is
    one line, ``what: reason``, and ``reason`` alone is the why."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{what}: {reason}")
        self.reason = reason


def first_line(error: BaseException, default: str) -> str:
    """wasmtime's errors run to many lines of context; the first one says what."""
    text = str(error).strip()
    return text.splitlines()[0] if text else default


def compile_module(path: str | os.PathLike[str], *, use_cache: bool = True) -> wasmtime.Module:
    """The module at ``path`` (``OSError`` if it cannot be read), or ``StartError``
    when its bytes are not WebAssembly."""
    try:
        return load_module(path, use_cache)
    except wasmtime.WasmtimeError as exc:
        what = f"{os.fspath(path)} is not a usable WebAssembly module"
        raise StartError(what, first_line(exc, "invalid module")) from None


_KINDS: dict[type, str] = {
    wasmtime.FuncType: "the function",
    wasmtime.MemoryType: "the memory",
    wasmtime.TableType: "the table",
    wasmtime.GlobalType: "the global",
}


def why_not_runnable(module: wasmtime.Module) -> str | None:
    """Why ``module`` cannot run as a WASI command with this host, or None if it can."""
    for imp in module.imports:
        if imp.module not in HOST_MODULES or not isinstance(imp.type, wasmtime.FuncType):
            what = _KINDS.get(type(imp.type), "an import")
            return f"it imports {what} {imp.module}.{imp.name}, which this host does not provide"
    exports = {exp.name: exp.type for exp in module.exports}
    if not isinstance(exports.get("memory"), wasmtime.MemoryType):
        return "it exports no memory named 'memory' (not a WASI command module)"
    start = exports.get("_start")
    if not isinstance(start, wasmtime.FuncType):
        return "it has no _start function (not a WASI command module)"
    if start.params or start.results:
        return "its _start function takes parameters or returns values"
    return None
