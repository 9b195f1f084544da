"""One guest process: its store, memory, descriptor table and host calls.

A ``Process`` runs on the thread that calls ``run()`` (the guest thread). Its
socket data path also runs there; only work that needs the trio loop (relay
transports, name resolution) crosses threads, through the plugins.
"""

from __future__ import annotations

import ctypes
import logging
import os
import struct
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import wasmtime

from . import fastpath
from .abi.errno import Errno, WasiError
from .abi.hostcall import HostCallTable, Unwind
from .abi.memory import GuestMemory
from .abi.preview1 import MODULE as PREVIEW1
from .abi.preview1 import GuestExit, Preview1
from .abi.preview1_fs import Preview1Fs
from .abi.trace import Tracer
from .abi.wassh_calls import WasshCalls
from .command_module import StartError, first_line, why_not_runnable
from .engine import EpochGuard, get_engine
from .fastpath import FastPath
from .host.children import Children
from .host.fdtable import FdTable
from .host.files import dev_preopen, open_preopen
from .host.objects import OpenObject
from .host.sockets import SocketLayer
from .host.stdio import BytesInput, CallbackOutput, HostStream
from .host.timers import RealTimer
from .host.tty import Terminals
from .host.waiter import GuestTerminated, Waiter
from .loop import LoopPortal, background_portal
from .names import Names
from .plugins import Transports
from .signals import (
    QUEUED_OFFSET,
    SIGALRM,
    STATE,
    STATE_VERSION,
    SignalAction,
    decide,
    exit_status,
    interrupts,
)
from .traps import GuestTrap

if TYPE_CHECKING:
    from .events import EventSink

log = logging.getLogger("wassh.runtime")

Stdin = None | bytes | int
Stdout = None | int | Callable[[bytes], object]


@dataclass
class GuestConfig:
    """Everything a guest process is started with."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    stdin: Stdin = None  # None: the host's fd 0; bytes; or a host fd
    stdout: Stdout = None  # None: the host's fd 1; a host fd; or a callable taking bytes
    stderr: Stdout = None
    preopens: list[tuple[str, str]] = field(default_factory=list)  # (host path, guest path)
    trace: bool = False
    trace_file: Any = None
    dev: bool = True  # preopen a virtual /dev (null, tty) after the user's directories
    # The most linear memory the guest may have, in bytes (None: wasm32's 4 GiB).
    # Past it memory.grow fails and malloc returns NULL, as under a Linux rlimit.
    max_memory: int | None = None


class GuestCancelled(Exception):
    """The guest was stopped by its embedder before it exited."""


class GuestKilled(GuestCancelled):
    """The guest was stopped by the default action of a signal (``Process.send_signal``).

    ``Process.run`` turns it into the exit status a shell shows, 128 + signal.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"guest killed by signal {signum}")
        self.signum = signum
        self.status = exit_status(signum)


_QUEUED_WORD = struct.Struct("<I")


def _stdin_object(spec: Stdin, waiter: Waiter) -> OpenObject:
    if spec is None:
        return HostStream(0, waiter)
    if isinstance(spec, bytes | bytearray):
        return BytesInput(bytes(spec))
    return HostStream(spec, waiter)


def _stdout_object(spec: Stdout, default_fd: int, waiter: Waiter) -> OpenObject:
    if spec is None:
        return HostStream(default_fd, waiter)
    if isinstance(spec, int):
        return HostStream(spec, waiter)
    return CallbackOutput(spec)


class Process:
    """A guest instance. Build it anywhere; call ``run`` on the guest thread."""

    def __init__(
        self,
        module: wasmtime.Module,
        config: GuestConfig,
        transports: Transports,
        trio_token: Any = None,
        events: EventSink | None = None,
    ) -> None:
        self.module = module
        self.config = config
        self.transports = transports
        # Read on every socket event: None costs one test where nobody listens.
        self.events: EventSink | None = None
        if events is not None:
            from .events import guarded  # only with a sink: importing events costs ~5 ms

            self.events = guarded(events)
        self._portal: LoopPortal | None = None
        if trio_token is not None:
            self._portal = LoopPortal(trio_token, None)
        self.waiter = Waiter()
        self.waiter.interrupting = self._signal_interrupts
        # ITIMER_REAL (alarm, setitimer): SIGALRM as the kernel would send it.
        self.timer = RealTimer(lambda: self.send_signal(SIGALRM))
        self.fds = FdTable()
        self.preopen_fds: set[int] = set()
        self.memory: GuestMemory = None  # type: ignore[assignment]  # set in _instantiate
        self.sockets = SocketLayer(self)
        self.names = Names(self)
        self.terminals = Terminals()
        self._guard: EpochGuard | None = None
        # Re-entrant: a Python signal handler may send a signal from inside cancel().
        self._lock = threading.RLock()
        self._signal_state: int | None = None  # guest address of the SDK's signal table
        self._no_signal_table = False  # instantiated, and the guest has none
        self.killed_by: int | None = None  # the signal whose default action stopped the guest
        # Set once the guest runs no more code (returned, exited, trapped or killed),
        # before descriptors are closed: a signal now has no guest to act on.
        self.stopped = threading.Event()
        self._store: wasmtime.Store | None = None
        self._instance: wasmtime.Instance | None = None
        self._functions: wasmtime.Table | None = None  # __indirect_function_table
        self._unwind = Unwind()
        # The compiled host calls (wassh.fastpath), when built and allowed; set up
        # with the linker, as they replace the ctypes callbacks.
        self.fast: FastPath | None = None
        self.exit_code: int | None = None
        self._transports_stopped = False
        # Programs this guest started (posix_spawn, fork + exec); none may start
        # unless the embedder configured a program map (prepare does).
        self.children = Children(self)

    # -- the trio loop, for plugins ---------------------------------------------------
    @property
    def portal(self) -> LoopPortal:
        """Where plugins run trio code: the embedder's loop, or a background one."""
        if self._portal is None:
            self._portal = background_portal()
        return self._portal

    @property
    def trio_token(self) -> Any:
        return self.portal.token

    def share_loop(self, parent: Process) -> None:
        """A child's plugins use its parent's trio loop."""
        self._portal = parent._portal

    def attach_loop(self, token: Any, nursery: Any) -> None:
        """Called by ``run_process``: plugins' tasks go to the embedder's nursery."""
        self._portal = LoopPortal(token, nursery)

    # -- thread-safe controls --------------------------------------------------------
    def cancel(self) -> None:
        """Stop the guest promptly, whether blocked in a host call or computing."""
        with self._lock:
            self.waiter.cancel()
            if self._guard is not None:
                self._guard.interrupt()

    def queue_signal(self, signum: int) -> None:
        """Hand a signal to the guest's SDK, whatever its disposition (it decides)."""
        if self._no_signal_table:
            return  # a guest without the SDK's table has no handler to run
        self.waiter.queue_signal(signum)
        self._mark_queued(1)

    def send_signal(self, signum: int) -> SignalAction:
        """Send a signal as the kernel would to a native process; callable from any thread.

        A signal the guest catches (or blocks) is queued for its handler, which runs
        at its next poll; one it ignores is dropped; otherwise the default action
        applies: the guest stops wherever it is (computing, or blocked in any host
        call) and ``run`` returns 128 + ``signum``. A guest whose SDK publishes no
        signal table gets the default action of every signal.
        """
        if self.stopped.is_set():
            return SignalAction.IGNORED
        action = decide(signum, self._read_signal_state())
        if action is SignalAction.QUEUED:
            self.queue_signal(signum)
        elif action is SignalAction.TERMINATED:
            with self._lock:
                if self.killed_by is None:
                    self.killed_by = signum
            self.cancel()
        return action

    def _read_signal_state(self) -> bytes | None:
        # Read from another thread while the guest runs: the table is static data,
        # checked to lie inside memory at instantiation, and memory never moves.
        addr = self._signal_state
        if addr is None:
            return None
        return bytes(self.memory.view[addr : addr + STATE.size])

    def _mark_queued(self, value: int) -> None:
        # The word the SDK checks after each call it wraps (then it takes the
        # signals); any thread. Set after queueing, cleared before taking: never
        # left clear while a signal waits.
        addr = self._signal_state
        if addr is not None:
            _QUEUED_WORD.pack_into(self.memory.view, addr + QUEUED_OFFSET, value)

    def _signal_interrupts(self) -> bool:
        return interrupts(tuple(self.waiter.signals), self._read_signal_state())

    def take_signal(self) -> int:
        """The next queued signal for the SDK to deliver (guest thread), or 0."""
        self._mark_queued(0)
        signum = self.waiter.take_signal()
        if self.waiter.signals:
            self._mark_queued(1)
        return signum

    # -- guest thread ------------------------------------------------------------------
    def _setup_fds(self) -> None:
        cfg = self.config
        self.fds.add(_stdin_object(cfg.stdin, self.waiter))
        self.fds.add(_stdout_object(cfg.stdout, 1, self.waiter))
        self.fds.add(_stdout_object(cfg.stderr, 2, self.waiter))
        for host_path, guest_path in cfg.preopens:
            self.preopen_fds.add(self.fds.add(open_preopen(host_path, guest_path)))
        if cfg.dev and not any(g in ("/", "/dev") for _h, g in cfg.preopens):
            # /dev/null and /dev/tty: OpenSSH opens /dev/null before anything else.
            self.preopen_fds.add(self.fds.add(dev_preopen()))

    def _instantiate(self) -> wasmtime.Instance:
        engine = get_engine()
        store = wasmtime.Store(engine)
        if self.config.max_memory is not None:
            store.set_limits(memory_size=self.config.max_memory)
        self._store = store
        with self._lock:
            self._guard = EpochGuard(store)
            if self.waiter.cancelled:
                self._guard.interrupt()
        linker = wasmtime.Linker(engine)
        tracer = Tracer(self.config.trace_file or sys.stderr) if self.config.trace else None
        if tracer is None and fastpath.enabled():
            self.fast = fastpath.FastPath(self, self._unwind)
            self.fds.on_change = self.fast.forget_fd
            self.waiter.on_signals = self.fast.signals_queued
            if self.waiter.signals:
                self.fast.signals_queued(len(self.waiter.signals))
        # The table owns the callbacks: it must live as long as the store.
        table = self._table = HostCallTable(linker, self._unwind, tracer, self.fast)
        self._preview1 = Preview1(self)
        self._preview1.register(table)
        Preview1Fs(self).register(table)
        WasshCalls(self).register(table)
        for imp in self.module.imports:
            if (
                imp.module in (PREVIEW1, "wassh_experimental", "wassh")
                and isinstance(imp.type, wasmtime.FuncType)
                and not table.has(imp.module, imp.name or "")
            ):
                table.define_enosys(imp.module, imp.name or "", imp.type)
        try:
            instance = linker.instantiate(store, self.module)
        except wasmtime.Trap as trap:  # the module's start function trapped
            raise GuestTrap.from_wasmtime(trap) from None
        except wasmtime.WasmtimeError as exc:
            why = why_not_runnable(self.module) or first_line(exc, "cannot instantiate")
            raise StartError("the module cannot start", why) from None
        exports = instance.exports(store)
        mem = exports.get("memory")
        if not isinstance(mem, wasmtime.Memory):
            raise StartError("the module cannot start", "it exports no memory named 'memory'")
        base = ctypes.addressof(mem.data_ptr(store).contents)
        self.memory = GuestMemory(base, lambda: mem.data_len(store))
        if self.fast is not None:
            self.fast.runtime.set_memory(base, self.memory.size)
        self._preview1.mem = self.memory
        functions = exports.get("__indirect_function_table")
        self._functions = functions if isinstance(functions, wasmtime.Table) else None
        self._signal_state = self._find_signal_state(store, exports.get("__wassh_signal_state"))
        if self._signal_state is None:
            self._no_signal_table = True
            self.waiter.take_signals()  # nobody would take them
        return instance

    def function_params(self, index: int) -> int:
        """How many parameters the guest's function ``index`` (a C function pointer)
        takes, or -1 when the module does not say (no exported table, no function
        there). The SDK asks before it calls a signal handler: wasm checks the
        type of an indirect call, and a K&R ``void h()`` handler takes none."""
        functions, store = self._functions, self._store
        if functions is None or store is None or not 0 < index < functions.size(store):
            return -1
        func = functions.get(store, index)
        if not isinstance(func, wasmtime.Func):
            return -1
        return len(func.type(store).params)

    def _find_signal_state(self, store: wasmtime.Store, export: Any) -> int | None:
        """Where the SDK keeps its signal table, if it keeps one we understand."""
        if not isinstance(export, wasmtime.Func):
            return None
        ty = export.type(store)
        if ty.params or [str(t) for t in ty.results] != ["i32"]:
            return None
        # It only returns the address of static data: safe to call before _start.
        addr = export(store) & 0xFFFFFFFF
        try:
            version, size, *_masks = STATE.unpack(self.memory.read(addr, STATE.size))
        except WasiError:
            return None
        if version != STATE_VERSION or size < STATE.size:
            return None
        if self.waiter.signals:  # queued before the guest started
            _QUEUED_WORD.pack_into(self.memory.view, addr + QUEUED_OFFSET, 1)
        return int(addr)

    def window_size(self) -> tuple[int, int]:
        try:
            size = os.get_terminal_size(0)
            return size.lines, size.columns
        except OSError:
            return 24, 80

    def read_passphrase(self, prompt: str, echo: bool) -> str:
        """Ask on the controlling terminal (the guest already printed nothing)."""
        import getpass

        if echo:
            return input(prompt)
        return getpass.getpass(prompt)

    def instantiate(self) -> wasmtime.Instance:
        """Set up descriptors and instantiate the module (once); for ``call`` and ``run``."""
        if self._instance is None:
            self._setup_fds()
            self._instance = self._instantiate()
        return self._instance

    def call(self, export: str, *args: Any) -> Any:
        """Call an exported function on this thread, as the guest's host calls expect."""
        instance = self.instantiate()
        store = self._store
        assert store is not None
        func = instance.exports(store).get(export)
        if not isinstance(func, wasmtime.Func):
            raise WasiError(Errno.ENOEXEC, f"guest has no function {export!r}")
        try:
            return func(store, *args)
        except GuestTerminated:
            # Raised by a Python signal handler between host calls (see SignalForwarder).
            raise self._stopped_error() from None
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            pending = self._unwind.pending
            self._unwind.pending = None
            if pending is None and self.waiter.cancelled:
                raise self._stopped_error() from None
            if pending is None:
                raise GuestTrap.from_wasmtime(exc) from None
            if isinstance(pending, GuestTerminated):
                raise self._stopped_error() from None
            raise pending from exc

    def _stopped_error(self) -> GuestCancelled:
        if self.killed_by is not None:
            return GuestKilled(self.killed_by)
        return GuestCancelled("guest cancelled")

    def run(self) -> int:
        """Run ``_start`` to completion on this thread; returns the exit status.

        A guest stopped by a signal's default action returns 128 + signal; one
        that traps raises ``GuestTrap``; one cancelled raises ``GuestCancelled``.
        """
        try:
            unusable = why_not_runnable(self.module)
            if unusable is not None:
                raise StartError("the module cannot run", unusable)
            try:
                self.call("_start")
                code = 0
            except GuestExit as exit_:
                code = self.children.exit_status(exit_.code)
            except GuestKilled as killed:
                code = killed.status
            except GuestTerminated:  # a signal handler's, just outside the guest call
                error = self._stopped_error()
                if not isinstance(error, GuestKilled):
                    raise error from None
                code = error.status
            finally:
                self.stopped.set()
            self.exit_code = code
            return code
        finally:
            self.close()

    def close(self) -> None:
        if self.fast is not None and log.isEnabledFor(logging.DEBUG):
            served = ", ".join(
                f"{name.removeprefix('OP_').lower()} {fast}/{calls}"
                for name, (calls, fast) in self.fast.stats().items()
                if calls
            )
            log.debug("host calls served in C: %s", served or "none")
        self.children.stop()
        self.timer.close()
        self.terminals.restore()
        self.fds.close_all()
        self.sockets.close_all()
        self.names.close()
        self.waiter.close()
        if not self._transports_stopped:
            self._transports_stopped = True
            self.transports.stop()


__all__ = ["GuestCancelled", "GuestConfig", "GuestKilled", "Process"]
