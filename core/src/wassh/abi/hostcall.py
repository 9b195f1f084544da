"""Host functions through wasmtime's unchecked API: ~1 µs a call instead of ~20 µs.

Each import is a ctypes callback that reads its i32/i64 arguments straight out
of the raw value array and writes the errno back into slot 0. Errors become
errno here and only here (``to_errno``); ``BaseException``s that must unwind the
guest (``proc_exit``, cancellation) become a trap and are re-raised by the
runtime after the guest call returns. docs/abi.md describes the conventions
this sets for every call; ``wasmtime_private`` holds the unchecked API's names.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import wasmtime

from .errno import Errno, WasiError, to_errno
from .wasmtime_private import (
    RAW_VALUE_SLOTS,
    UncheckedCallback,
    define_func_raw,
    define_func_unchecked,
    trap_new,
)

log = logging.getLogger("wassh.abi")

_SLOT = RAW_VALUE_SLOTS

HostFn = Callable[..., int]

# One letter per parameter. Pointers, lengths, descriptors and flags are unsigned
# (``i``, ``I``); file offsets, sizes and C ``int`` counts are signed (``s``, ``S``),
# as the kernel reads them, so a guest's 2**63 arrives as the negative number
# Linux would see (and answer with EINVAL) instead of overflowing a C long.
_WASM_TYPE = {"i": "i32", "s": "i32", "I": "i64", "S": "i64"}


@dataclass(frozen=True, slots=True)
class HostImport:
    """One defined import: where it lives and its parameter letters."""

    module: str
    name: str
    params: str
    returns: bool


class Unwind:
    """Holds the BaseException that stopped the guest until the runtime re-raises it."""

    def __init__(self) -> None:
        self.pending: BaseException | None = None


@functools.cache
def _callback_code(params: str, returns: bool, traced: bool) -> types.CodeType:
    """The code of the callback for one signature, compiled once per process.

    ``params`` holds one letter per parameter (see ``_WASM_TYPE``). Source is
    generated per signature so each call indexes its arguments directly instead
    of looping. The slots are C ``int32``: read as they are, they are signed.
    Compiling is most of what defining ~80 imports costs, so every process and
    every import with the same signature shares the code object.
    """
    reads = []
    for index, kind in enumerate(params):
        lo = f"a[{index * _SLOT}]"
        hi = f"a[{index * _SLOT + 1}]"
        if kind == "i":
            reads.append(f"{lo} & 0xFFFFFFFF")
        elif kind == "s":
            reads.append(lo)
        elif kind == "I":
            reads.append(f"(({lo} & 0xFFFFFFFF) | (({hi} & 0xFFFFFFFF) << 32))")
        else:
            reads.append(f"(({lo} & 0xFFFFFFFF) | ({hi} << 32))")
    call = f"fn({', '.join(reads)})"
    if traced:
        call = f"tracer(name, fn, ({', '.join(reads)}{',' if reads else ''}))"
    store = "a[0] = " if returns else ""
    failure = "a[0] = to_errno(e)" if returns else "raise"
    src = f"""
def callback(env, caller, a, n):
    try:
        {store}{call}
        return 0
    except Exception as e:
        try:
            {failure}
            return 0
        except BaseException as inner:
            unwind.pending = inner
            return trap()
    except BaseException as e:
        unwind.pending = e
        return trap()
"""
    module = compile(src, "<hostcall>", "exec")
    return next(c for c in module.co_consts if isinstance(c, types.CodeType))


def _entry_returning(fn: HostFn, unwind: Unwind) -> Callable[..., int | None]:
    def entry(*args: int) -> int | None:
        try:
            return fn(*args)
        except Exception as e:
            try:
                return to_errno(e)
            except BaseException as inner:
                unwind.pending = inner
                return None
        except BaseException as e:
            unwind.pending = e
            return None

    return entry


def _entry_void(fn: HostFn, unwind: Unwind) -> Callable[..., int | None]:
    def entry(*args: int) -> int | None:
        try:
            fn(*args)
            return 0
        except BaseException as e:
            unwind.pending = e
            return None

    return entry


def _make_entry(name: str, fn: HostFn, params: str, returns: bool, unwind: Unwind) -> Any:
    """An import's Python implementation as ``wassh._fastpath`` calls it.

    C passes the arguments as ints already read by their letters, takes back the
    result, or None once ``unwind.pending`` holds what stops the guest (C traps).
    One closure for every signature: nothing is compiled per process.
    """
    entry = (_entry_returning if returns else _entry_void)(fn, unwind)
    # The import's name as the file name: a traceback says which host call it was in.
    entry.__code__ = entry.__code__.replace(co_filename=f"<hostcall {name}>")
    return entry


def _make_callback(
    name: str, fn: HostFn, params: str, returns: bool, unwind: Unwind, tracer: Any
) -> Any:
    """Build the Python callback for one import: the shared code, its own globals."""
    code = _callback_code(params, returns, tracer is not None)
    namespace: dict[str, Any] = {
        "fn": fn,
        "to_errno": to_errno,
        "unwind": unwind,
        "trap": _new_trap,
        "tracer": tracer,
        "name": name,
    }
    # The import's name as the file name: a traceback says which host call it was in.
    return types.FunctionType(code.replace(co_filename=f"<hostcall {name}>"), namespace)


def _new_trap() -> int:
    # Stays in this file: wassh.host_signals knows its frames as unsafe to raise in.
    msg = b"wassh: guest unwound by the host"
    ptr = trap_new(ctypes.create_string_buffer(msg), len(msg))
    return ctypes.cast(ptr, ctypes.c_void_p).value or 0


@functools.cache
def _func_type(params: str, returns: bool) -> wasmtime.FuncType:
    """One FuncType per signature for the whole process (a define only reads it)."""
    vt = {"i32": wasmtime.ValType.i32(), "i64": wasmtime.ValType.i64()}
    return wasmtime.FuncType(
        [vt[_WASM_TYPE[p]] for p in params], [wasmtime.ValType.i32()] if returns else []
    )


class HostCallTable:
    """Defines host functions into a Linker and keeps their callbacks alive.

    With ``fast`` (``wassh.fastpath.FastPath``), every import is a C callback of
    ``wassh._fastpath`` that serves the hot calls in C and calls the same Python
    implementation for the rest; otherwise each is a ctypes callback.
    """

    def __init__(
        self, linker: wasmtime.Linker, unwind: Unwind, tracer: Any = None, fast: Any = None
    ) -> None:
        self._linker = linker
        self._unwind = unwind
        self._tracer = tracer
        self._fast = fast
        self._keep: list[Any] = []
        self._defined: dict[tuple[str, str], HostImport] = {}

    def has(self, module: str, name: str) -> bool:
        return (module, name) in self._defined

    def imports(self) -> list[HostImport]:
        """Everything defined so far, in definition order (what a fuzzer drives)."""
        return list(self._defined.values())

    def define(self, module: str, name: str, params: str, fn: HostFn, returns: bool = True) -> None:
        ty = _func_type(params, returns)
        if self._fast is not None:
            from ..fastpath import op_number

            entry = _make_entry(name, fn, params, returns, self._unwind)
            callback, data = self._fast.runtime.define(
                op_number(module, name), params, returns, entry
            )
            define_func_raw(self._linker, module, name, ty, callback, data)
        else:
            cb = UncheckedCallback(
                _make_callback(name, fn, params, returns, self._unwind, self._tracer)
            )
            self._keep.append(cb)
            define_func_unchecked(self._linker, module, name, ty, cb)
        self._defined[(module, name)] = HostImport(module, name, params, returns)

    def define_enosys(self, module: str, name: str, ty: wasmtime.FuncType) -> None:
        """Answer an import we do not know with ENOSYS instead of a link error."""
        params = "".join("I" if str(p) == "i64" else "i" for p in ty.params)
        returns = len(ty.results) == 1

        def enosys(*_args: int) -> int:
            raise WasiError(Errno.ENOSYS, f"{module}.{name} is not implemented")

        self.define(module, name, params, enosys, returns)
