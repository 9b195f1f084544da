"""The shared wasmtime engine and the compiled-module cache."""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import tempfile
import threading
from pathlib import Path

import wasmtime

log = logging.getLogger("wassh.engine")

_engine: wasmtime.Engine | None = None
_engine_lock = threading.Lock()


def get_engine() -> wasmtime.Engine:
    """One engine per host process: compiled modules are shared between guests."""
    global _engine
    with _engine_lock:
        if _engine is None:
            config = wasmtime.Config()
            # A fixed base address lets GuestMemory keep one view for the whole run.
            config.memory_may_move = False
            # Lets another thread stop a guest that is computing, not calling the host.
            config.epoch_interruption = True
            _engine = wasmtime.Engine(config)
        return _engine


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "wassh" / "modules"


def _engine_fingerprint() -> str:
    """What compiled code depends on: the wasmtime library itself (cheap to ask).

    importlib.metadata would cost ~30 ms of every start-up; the shared library's
    size and mtime change with every wasmtime release, which is what matters.
    """
    from wasmtime import _ffi

    try:
        st = os.stat(_ffi.filename)
        return f"{st.st_size}:{st.st_mtime_ns}"
    except (AttributeError, OSError):  # pragma: no cover - an unusual wasmtime install
        return "unknown"


def load_module(path: str | os.PathLike[str], use_cache: bool = True) -> wasmtime.Module:
    """Compile a module, or load its compiled form from the cache (Cranelift is slow)."""
    engine = get_engine()
    data = Path(path).read_bytes()
    if not use_cache:
        return wasmtime.Module(engine, data)
    key = hashlib.sha256(data + _engine_fingerprint().encode()).hexdigest()
    cached = cache_dir() / f"{key}.cwasm"
    if cached.exists():
        try:
            return wasmtime.Module.deserialize_file(engine, str(cached))
        except wasmtime.WasmtimeError:
            log.warning("dropping unusable cached module %s", cached)
            cached.unlink(missing_ok=True)
    module = wasmtime.Module(engine, data)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cached.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(bytes(module.serialize()))
        os.replace(tmp, cached)
    except OSError as exc:
        log.warning("cannot cache compiled module: %s", exc)
    return module


# -- epoch interruption ------------------------------------------------------------

_DEADLINE_CB = ctypes.CFUNCTYPE(
    ctypes.c_size_t,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_uint64),
    ctypes.POINTER(ctypes.c_uint8),
)
_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_NO_FINALIZER = _FINALIZER(lambda _data: None)


class EpochGuard:
    """Traps one store's guest at the next epoch tick once it has been cancelled.

    Every store's deadline is one tick away; a tick from ``interrupt`` makes each
    running guest check in: the cancelled one traps, the others carry on.
    """

    def __init__(self, store: wasmtime.Store) -> None:
        from wasmtime import _ffi as ffi

        self.cancelled = False
        self._ffi = ffi

        def on_deadline(_ctx: int, _data: int, delta: object, kind: object) -> int:
            if self.cancelled:
                msg = b"wassh: guest cancelled"
                err = ffi.wasmtime_error_new(ctypes.create_string_buffer(msg))
                return ctypes.cast(err, ctypes.c_void_p).value or 0
            delta[0] = 1  # type: ignore[index]
            kind[0] = 0  # type: ignore[index]  # continue running
            return 0

        self._cb = _DEADLINE_CB(on_deadline)
        store.set_epoch_deadline(1)
        from wasmtime import _bindings

        argtypes = _bindings._wasmtime_store_epoch_deadline_callback.argtypes
        ffi.wasmtime_store_epoch_deadline_callback(
            store.ptr(),
            ctypes.cast(self._cb, argtypes[1]),
            None,
            ctypes.cast(_NO_FINALIZER, argtypes[3]),
        )

    def interrupt(self) -> None:
        self.cancelled = True
        get_engine().increment_epoch()
