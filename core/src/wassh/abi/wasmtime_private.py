"""Everything wassh takes from wasmtime-py beyond its public API, in one place.

wasmtime-py's public API is enough to compile, link and run a guest, but not
fast enough for a host call, nor able to let one guest of several be stopped.
What this module relies on, and why the public API does not serve:

``wasmtime._ffi.filename``
    The path of the bundled libwasmtime. Its size and mtime key the compiled-module
    cache (``wassh.engine``): the public API tells no version, and
    ``importlib.metadata`` would cost ~30 ms of every start-up.

``wasmtime._bindings._wasmtime_linker_define_func_unchecked``
    The C API's ``wasmtime_linker_define_func_unchecked``. ``Linker.define_func``
    converts each argument and result through ``wasmtime.Val`` (~20 µs a call); the
    unchecked form hands the callback the raw ``wasmtime_val_raw_t`` array (~1 µs),
    which ``wassh.abi.hostcall`` reads as four ``int32`` slots per value.

``wasmtime._bindings._wasmtime_trap_new``
    Builds the ``wasm_trap_t*`` an unchecked callback returns to unwind the guest.
    ``wasmtime.Trap`` owns its pointer and would free it; handing it to wasmtime
    needs the private ``Managed._consume``.

``wasmtime._bindings._wasmtime_error_new``
    Builds the ``wasmtime_error_t*`` the epoch deadline callback returns to trap.

``wasmtime._bindings._wasmtime_store_epoch_deadline_callback``
    ``Store.set_epoch_deadline`` alone traps every guest at the deadline; the
    callback lets the cancelled one trap and the others go on
    (``wassh.engine.EpochGuard``).

``wasmtime.WasmtimeError._from_ptr``
    Turns the error ``wasmtime_linker_define_func_unchecked`` returns into the
    exception the public ``Linker`` methods raise.

``Linker.ptr()``, ``FuncType.ptr()``, ``Store.ptr()``
    Public methods, but the pointers they return are only of use to the private
    functions above, which must accept exactly their types.

``RELIED_ON`` states each of these as a C-like signature; ``check()`` compares
them with the installed wasmtime (``tests/test_wasmtime_boundary.py``), and
importing this module checks the signatures so that a wasmtime that changed them
is refused with one clear error instead of a crash inside a callback. The
wasmtime releases these were reviewed against are ``TESTED_WASMTIME``, which
``core/pyproject.toml`` pins.

Everything is resolved here at import; the callers keep the ctypes functions as
they are, so a host call costs what it would with direct use of wasmtime-py.
"""

from __future__ import annotations

import ctypes
from _ctypes import CFuncPtr
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, NamedTuple

import wasmtime

# The wasmtime-py releases everything below was checked against; core/pyproject.toml
# pins the same range, and tests/test_wasmtime_boundary.py holds the two together.
TESTED_WASMTIME: Final = ">=45,<51"

REVIEW_HINT: Final = (
    "review core/src/wassh/abi/wasmtime_private.py against this wasmtime, then update "
    "TESTED_WASMTIME there and the wasmtime pin in core/pyproject.toml"
)


class WasmtimeBoundaryError(RuntimeError):
    """The installed wasmtime-py no longer provides what this module relies on."""


class _Missing(WasmtimeBoundaryError):
    def __init__(self, where: str) -> None:
        super().__init__(
            f"wasmtime {_installed_version()} has no {where}, which wassh relies on; " + REVIEW_HINT
        )
        self.where = where


class Reliance(NamedTuple):
    """One private name and what it must be.

    ``expected`` is the C-like rendering ``probe`` must return: ``(args) -> result``
    for a function, ``fn(args) -> result`` for a function pointer, ``u64`` for
    ``size_t`` (ctypes does not tell them apart), ``name(N bytes)`` for a struct
    or union whose layout is read, ``name*`` for a pointer to an opaque one.
    A NamedTuple, not a dataclass: this is built at every start-up.
    """

    name: str
    expected: str
    why: str
    probe: Callable[[], str]
    at_import: bool = True


def _installed_version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("wasmtime")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - vendored wasmtime
        return "(unknown version)"


def _lookup(dotted: str) -> Any:
    """The object at ``wasmtime.<dotted path>``, or an error naming what is missing.

    Attributes all the way: the package imports ``_ffi`` and ``_bindings`` itself.
    """
    parts = dotted.split(".")
    assert parts[0] == "wasmtime", dotted
    obj: Any = wasmtime
    for depth, part in enumerate(parts[1:], start=2):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise _Missing(".".join(parts[:depth])) from None
    return obj


_INT_CODES: Final = "bBhHiIlLqQ"
_OTHER_CODES: Final = {"P": "void*", "z": "char*", "c": "char", "f": "f32", "d": "f64"}


def render(ctype: Any) -> str:
    """A ctypes type as the C-like text ``Reliance.expected`` uses."""
    if ctype is None:
        return "void"
    if not isinstance(ctype, type):
        return repr(ctype)
    if issubclass(ctype, ctypes._Pointer):
        return render(ctype._type_) + "*"
    if issubclass(ctype, CFuncPtr):
        argtypes, restype = getattr(ctype, "_argtypes_", None), getattr(ctype, "_restype_", None)
        return "fn" + _render_signature(argtypes, restype)
    if issubclass(ctype, ctypes.Structure | ctypes.Union):
        name = ctype.__name__.removesuffix("_t")
        size = ctypes.sizeof(ctype)
        return f"{name}({size} bytes)" if size else name
    code = getattr(ctype, "_type_", None)
    if isinstance(code, str) and code in _INT_CODES and issubclass(ctype, ctypes._SimpleCData):
        sign = "i" if code.islower() else "u"
        return f"{sign}{8 * ctypes.sizeof(ctype)}"
    if isinstance(code, str) and code in _OTHER_CODES:
        return _OTHER_CODES[code]
    return ctype.__name__


def _render_signature(argtypes: Sequence[Any] | None, restype: Any) -> str:
    if argtypes is None:
        return f"(unprototyped) -> {render(restype)}"
    return f"({', '.join(render(a) for a in argtypes)}) -> {render(restype)}"


def _function(dotted: str) -> Callable[[], str]:
    def probe() -> str:
        fn = _lookup(dotted)
        if not isinstance(fn, CFuncPtr):
            return f"not a ctypes function: {fn!r}"
        return _render_signature(fn.argtypes, fn.restype)

    return probe


def _library_file() -> str:
    path = _lookup("wasmtime._ffi.filename")
    if isinstance(path, str | Path) and Path(path).is_file():
        return "an existing file"
    return f"{path!r}, not an existing file"


def _callable(dotted: str) -> Callable[[], str]:
    def probe() -> str:
        return "callable" if callable(_lookup(dotted)) else "not callable"

    return probe


def _pointer_types() -> str:
    """Which argument types the ``ptr()`` of a fresh Linker, FuncType and Store have.

    Needs an engine, so only ``check()`` runs it, not the import.
    """
    define = _lookup("wasmtime._bindings._wasmtime_linker_define_func_unchecked")
    deadline = _lookup("wasmtime._bindings._wasmtime_store_epoch_deadline_callback")
    engine = wasmtime.Engine()
    objects = {
        "Linker": (wasmtime.Linker(engine).ptr(), define.argtypes[0]),
        "FuncType": (wasmtime.FuncType([], []).ptr(), define.argtypes[5]),
        "Store": (wasmtime.Store(engine).ptr(), deadline.argtypes[0]),
    }
    wrong = [
        f"{name}.ptr() is {type(ptr).__name__}, not {expected.__name__}"
        for name, (ptr, expected) in objects.items()
        if not isinstance(ptr, expected)
    ]
    return "; ".join(wrong) or "accepted as they are"


RELIED_ON: Final[tuple[Reliance, ...]] = (
    Reliance(
        "wasmtime._ffi.filename",
        "an existing file",
        "keys the compiled-module cache without importlib.metadata's start-up cost",
        _library_file,
    ),
    Reliance(
        "wasmtime._bindings._wasmtime_linker_define_func_unchecked",
        "(wasmtime_linker*, char*, u64, char*, u64, wasm_functype*, "
        "fn(void*, wasmtime_caller*, wasmtime_val_raw(16 bytes)*, u64) -> u64, "
        "void*, fn(void*) -> void) -> wasmtime_error*",
        "host calls without wasmtime.Val conversion; arguments read as int32 slots",
        _function("wasmtime._bindings._wasmtime_linker_define_func_unchecked"),
    ),
    Reliance(
        "wasmtime._bindings._wasmtime_trap_new",
        "(char*, u64) -> wasm_trap*",
        "the trap a host call returns to unwind the guest",
        _function("wasmtime._bindings._wasmtime_trap_new"),
    ),
    Reliance(
        "wasmtime._bindings._wasmtime_error_new",
        "(char*) -> wasmtime_error*",
        "the error the epoch deadline callback returns to stop a cancelled guest",
        _function("wasmtime._bindings._wasmtime_error_new"),
    ),
    Reliance(
        "wasmtime._bindings._wasmtime_store_epoch_deadline_callback",
        "(wasmtime_store*, fn(wasmtime_context*, void*, u64*, u8*) -> u64, "
        "void*, fn(void*) -> void) -> void",
        "stops one cancelled guest at an epoch tick while the others go on",
        _function("wasmtime._bindings._wasmtime_store_epoch_deadline_callback"),
    ),
    Reliance(
        "wasmtime.WasmtimeError._from_ptr",
        "callable",
        "raises a failed definition as the public API would",
        _callable("wasmtime.WasmtimeError._from_ptr"),
    ),
    Reliance(
        "wasmtime.Linker/FuncType/Store.ptr()",
        "accepted as they are",
        "the handles the functions above take",
        _pointer_types,
        at_import=False,
    ),
)


def check(reliances: Sequence[Reliance] = RELIED_ON, *, at_import: bool = False) -> None:
    """Raise ``WasmtimeBoundaryError`` listing every reliance the installed wasmtime breaks."""
    problems = []
    for reliance in reliances:
        if at_import and not reliance.at_import:
            continue
        try:
            found = reliance.probe()
        except _Missing as exc:
            problems.append(f"{reliance.name} ({reliance.why}):\n  has no {exc.where}")
            continue
        if found != reliance.expected:
            problems.append(
                f"{reliance.name} ({reliance.why}):\n  expected {reliance.expected}\n"
                f"  found    {found}"
            )
    if problems:
        raise WasmtimeBoundaryError(
            f"wasmtime {_installed_version()} changed what wassh relies on "
            f"(tested: wasmtime{TESTED_WASMTIME}); {REVIEW_HINT}:\n" + "\n".join(problems)
        )


check(at_import=True)

# -- what the rest of wassh uses -----------------------------------------------------

LIBRARY_PATH: Final[Path] = Path(_lookup("wasmtime._ffi.filename"))
"""The bundled libwasmtime shared library."""

_define_func_unchecked: Final[CFuncPtr] = _lookup(
    "wasmtime._bindings._wasmtime_linker_define_func_unchecked"
)
_DEFINE_CALLBACK_T: Final[Any] = _define_func_unchecked.argtypes[6]
_DEFINE_FINALIZER_T: Final[Any] = _define_func_unchecked.argtypes[8]

trap_new: Final[CFuncPtr] = _lookup("wasmtime._bindings._wasmtime_trap_new")
"""``wasmtime_trap_new(const char *msg, size_t len) -> wasm_trap_t*``.

Exposed as the ctypes function itself: it is called inside host-call callbacks,
where a frame of this module would add a call and would be one that
``wassh.host_signals`` does not know as unsafe to raise in.
"""

error_new: Final[CFuncPtr] = _lookup("wasmtime._bindings._wasmtime_error_new")
"""``wasmtime_error_new(const char *msg) -> wasmtime_error_t*``, for the epoch callback."""

_epoch_deadline_callback: Final[CFuncPtr] = _lookup(
    "wasmtime._bindings._wasmtime_store_epoch_deadline_callback"
)
_DEADLINE_CALLBACK_T: Final[Any] = _epoch_deadline_callback.argtypes[1]
_DEADLINE_FINALIZER_T: Final[Any] = _epoch_deadline_callback.argtypes[3]

_error_from_ptr: Final[Callable[[Any], wasmtime.WasmtimeError]] = _lookup(
    "wasmtime.WasmtimeError._from_ptr"
)

RAW_VALUE_SLOTS: Final[int] = ctypes.sizeof(_DEFINE_CALLBACK_T._argtypes_[2]._type_) // 4
"""``int32`` slots per ``wasmtime_val_raw_t`` (16 bytes, so 4): the stride of an argument."""

UncheckedCallback: Final = ctypes.CFUNCTYPE(
    ctypes.c_size_t,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_int32),
    ctypes.c_size_t,
)
"""A host call as wassh writes it: ``(env, caller, args, nargs) -> wasm_trap_t* or 0``.

``args`` is the ``wasmtime_val_raw_t`` array seen as ``int32`` slots
(``RAW_VALUE_SLOTS`` per value); the result goes back into slot 0.
"""

EpochDeadlineCallback: Final = ctypes.CFUNCTYPE(
    ctypes.c_size_t,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_uint64),
    ctypes.POINTER(ctypes.c_uint8),
)
"""``(context, data, *delta, *kind) -> wasmtime_error_t* or 0``, called at each deadline.

Setting ``*delta`` and ``*kind = DEADLINE_CONTINUE`` lets the guest run on.
"""

DEADLINE_CONTINUE: Final = 0
"""``WASMTIME_UPDATE_DEADLINE_CONTINUE`` of the C API's ``wasmtime_update_deadline_kind_t``."""

_Finalizer = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
# Nothing to free: the callbacks' owners keep them alive, and no data pointer is passed.
_NO_FINALIZER: Final = _Finalizer(lambda _data: None)


def define_func_unchecked(
    linker: wasmtime.Linker,
    module: str,
    name: str,
    ty: wasmtime.FuncType,
    callback: CFuncPtr,
) -> None:
    """Define ``module.name`` in ``linker`` as ``callback`` (an ``UncheckedCallback``).

    The caller must keep ``callback`` alive as long as the linker and its instances.
    Raises ``wasmtime.WasmtimeError`` as ``Linker.define_func`` would.
    """
    mod_b, name_b = module.encode(), name.encode()
    err = _define_func_unchecked(
        linker.ptr(),
        mod_b,
        len(mod_b),
        name_b,
        len(name_b),
        ty.ptr(),
        ctypes.cast(callback, _DEFINE_CALLBACK_T),
        None,
        ctypes.cast(_NO_FINALIZER, _DEFINE_FINALIZER_T),
    )
    if err:
        raise _error_from_ptr(err)


def define_func_raw(
    linker: wasmtime.Linker,
    module: str,
    name: str,
    ty: wasmtime.FuncType,
    callback: int,
    data: int,
) -> None:
    """Define ``module.name`` as a C callback at address ``callback`` with ``data``.

    For ``wassh._fastpath``, whose callbacks have ``UncheckedCallback``'s signature;
    the caller keeps ``data`` alive as long as the linker and its instances.
    """
    mod_b, name_b = module.encode(), name.encode()
    err = _define_func_unchecked(
        linker.ptr(),
        mod_b,
        len(mod_b),
        name_b,
        len(name_b),
        ty.ptr(),
        ctypes.cast(ctypes.c_void_p(callback), _DEFINE_CALLBACK_T),
        ctypes.c_void_p(data),
        ctypes.cast(_NO_FINALIZER, _DEFINE_FINALIZER_T),
    )
    if err:
        raise _error_from_ptr(err)


def set_epoch_deadline_callback(store: wasmtime.Store, callback: CFuncPtr) -> None:
    """Have ``callback`` (an ``EpochDeadlineCallback``) decide at each deadline of ``store``.

    The caller must keep ``callback`` alive as long as the store.
    """
    _epoch_deadline_callback(
        store.ptr(),
        ctypes.cast(callback, _DEADLINE_CALLBACK_T),
        None,
        ctypes.cast(_NO_FINALIZER, _DEADLINE_FINALIZER_T),
    )
