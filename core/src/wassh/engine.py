"""The shared wasmtime engine and the compiled-module cache."""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from pathlib import Path

import wasmtime

from . import cache
from .abi.wasmtime_private import (
    DEADLINE_CONTINUE,
    LIBRARY_PATH,
    EpochDeadlineCallback,
    error_new,
    set_epoch_deadline_callback,
)

try:  # hashlib would load OpenSSL's libcrypto first: ~3 ms of every start-up
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - a Python built without it
    from hashlib import blake2b

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
            # setjmp/longjmp in guests (wassh cc lowers them onto exceptions).
            config.wasm_exceptions = True
            _engine = wasmtime.Engine(config)
        return _engine


def _engine_fingerprint() -> str:
    """What compiled code depends on: the wasmtime library itself (cheap to ask).

    importlib.metadata would cost ~30 ms of every start-up; the shared library's
    size and mtime change with every wasmtime release, which is what matters.
    """
    try:
        st = os.stat(LIBRARY_PATH)
        # "exceptions": the engine's settings, part of what a compiled module needs.
        return f"{st.st_size}:{st.st_mtime_ns}:exceptions"
    except OSError:  # pragma: no cover - an unusual wasmtime install
        return "unknown"


def load_module(path: str | os.PathLike[str], use_cache: bool = True) -> wasmtime.Module:
    """Compile a module, or load its compiled form from the cache (Cranelift is slow)."""
    engine = get_engine()
    data = Path(path).read_bytes()
    if data.startswith(b"#!"):
        # A runnable program from wassh cc: shell text, then the module at the first
        # "\0asm" (the format: _wassh_cc.launcher_header). The cache keys on the module.
        at = data.find(b"\0asm")
        if at >= 0:
            data = data[at:]
    if not use_cache:
        return wasmtime.Module(engine, data)
    digest = blake2b(data, digest_size=32)
    digest.update(_engine_fingerprint().encode())
    key = digest.hexdigest()
    cached = cache.cache_dir() / f"{key}{cache.SUFFIX}"
    try:
        module = wasmtime.Module.deserialize_file(engine, str(cached))
    except wasmtime.WasmtimeError:
        # Not there (never cached, or evicted meanwhile by any process) or unusable.
        if cached.exists():
            log.warning("dropping unusable cached module %s", cached)
            cached.unlink(missing_ok=True)
    else:
        cache.touch(cached)
        return module
    module = wasmtime.Module(engine, data)
    _store(module, cached)
    return module


def _store(module: wasmtime.Module, cached: Path) -> None:
    """Write the compiled module whole (a temporary file renamed), then keep the bound."""
    try:
        limit = cache.max_bytes()
    except cache.CacheSizeError as exc:
        log.warning("%s; using %s", exc, cache.human(cache.DEFAULT_MAX))
        limit = cache.DEFAULT_MAX
    if limit == 0:
        return
    import tempfile  # only when there is something to cache: ~5 ms to import

    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cached.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(bytes(module.serialize()))
            os.replace(tmp, cached)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        log.warning("cannot cache compiled module: %s", exc)
        return
    cache.evict(limit, cached.parent)


# -- epoch interruption ------------------------------------------------------------


class EpochGuard:
    """Traps one store's guest at the next epoch tick once it has been cancelled.

    Every store's deadline is one tick away; a tick from ``interrupt`` makes each
    running guest check in: the cancelled one traps, the others carry on.
    """

    def __init__(self, store: wasmtime.Store) -> None:
        self.cancelled = False

        # Defined here, not in wasmtime_private: wassh.host_signals knows this file's
        # frames as unsafe to raise in, and the callback must not raise.
        def on_deadline(_ctx: int, _data: int, delta: object, kind: object) -> int:
            if self.cancelled:
                msg = b"wassh: guest cancelled"
                err = error_new(ctypes.create_string_buffer(msg))
                return ctypes.cast(err, ctypes.c_void_p).value or 0
            delta[0] = 1  # type: ignore[index]
            kind[0] = DEADLINE_CONTINUE  # type: ignore[index]
            return 0

        self._cb = EpochDeadlineCallback(on_deadline)
        store.set_epoch_deadline(1)
        set_epoch_deadline_callback(store, self._cb)

    def interrupt(self) -> None:
        self.cancelled = True
        get_engine().increment_epoch()
