"""A hostile guest: every host import, driven with wild arguments through a real module.

The module is generated from the runtime's own ``HostCallTable``: it imports
every function the host defines (so a new import is fuzzed without touching
this file) and exports one trampoline per import. Each fuzzed example gets a
fresh guest process ("world") holding a descriptor of every kind: stdio on
pipes, a preopened temporary directory, the virtual /dev, an open file, a
socket connected to a loopback echo server, a listening socket, a UDP socket,
both ends of a pipe, a bound socket, new sockets and a terminal (a pty).

A call fails the fuzz when the host logs an unexpected error (``to_errno``
counts them), an exception escapes the host call, a thread or an unraisable
hook reports one, the host prints anything, or the call hangs. Every
descriptor but stdio is made non-blocking before each call, and stdio cannot
block either (stdin is at end of input, stdout and stderr are drained), so
only ``poll_oneoff`` may wait legitimately (a clock far away, descriptors that
never become ready): it is woken with a signal, which ends it with EINTR, as a
real signal would. Any other call still running after the grace period is a
hang.

Network traffic is held to loopback by an audit hook (``loopback_only``):
a guest that names any other address or a name to resolve gets the errors a
machine without a network gives. Files are only ever created inside the
world's temporary directory, which is its only preopen besides /dev.
"""

from __future__ import annotations

import contextlib
import errno
import io
import ipaddress
import itertools
import logging
import os
import resource
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import wasmtime
import wassh
from hypothesis import strategies as st
from wassh.abi.errno import UNEXPECTED
from wassh.abi.hostcall import HostImport
from wassh.abi.preview1 import GuestExit
from wassh.engine import get_engine
from wassh.host.pipe import make_pipe
from wassh.host.stdio import HostStream
from wassh.runtime import GuestCancelled
from wassh.signals import STATE, STATE_VERSION

PAGE = 65536
PAGES = 2
MEM_SIZE = PAGES * PAGE

# Where the interesting data lies in guest memory (the pointer strategy favours these).
BLOB = 0x0000  # fuzzed bytes
IOV_OK = 0x1000  # iovecs over BUF
IOV_WILD = 0x1100  # iovecs with wild buffers and lengths
IOV_ALIAS = 0x1200  # many iovecs that all name the whole memory
SUBS = 0x1800  # poll subscriptions: an immediate clock first, then every fd
SUBS_FAR = 0x2600  # one clock, 2**64-1 ns away
STRINGS = 0x2800  # names and paths
ADDRS = 0x3000  # packed addresses
BUF = 0x8000  # a plain buffer
ALIASES = 128

# The descriptors of every world (see World): stdio 0-2, /tmp 3, /dev 4, a file 5,
# a connected socket 6, a listener 7, UDP 8, a pipe's ends 9 and 10, a bound
# socket 11, new sockets for fake addresses (protocol -1), IPv6 12 and IPv4 13, and
# a terminal 14 (a pty of the world's own, so the terminal calls meet a real one).
FDS = 15
MARKED_V6, MARKED_V4 = 12, 13

_SUB = struct.Struct("<QB7xI4xQQH6x")
_IOVEC = struct.Struct("<II")

STRING_TABLE: list[bytes] = [
    b"localhost",
    b"echo.test",
    b"a.example",
    b"file.txt",
    b"dir/sub",
    b"../escape",
    b"null",
    b"\xff\xfe bad\x00name",
    b"-bad-.example",
    b"a" * 300,
    b"sym",
    b"/abs",
    b"127.0.0.1",
    b"::1",
    b"dir",
    b"x" * 70 + b".example",
]
STRING_ADDRESSES: list[int] = []
_pos = STRINGS
for _s in STRING_TABLE:
    STRING_ADDRESSES.append(_pos)
    _pos += len(_s) + 1
ADDRESS_TABLE: list[bytes] = [
    bytes([127, 0, 0, 1]),
    bytes(15) + b"\x01",
    bytes([0, 0, 0, 1]),  # this project's first fake address
    bytes([5, 3, 0, 0]),  # the original library's x.y.z.0 form
    b"\x01" + bytes(14) + b"\x05",  # 100::5
    b"\x01" + bytes(14) + b"\x01",  # 100::1, this project's first fake address
    bytes([10, 1, 2, 3]),  # not loopback: the audit hook refuses it
]
ADDRESS_ADDRESSES = [ADDRS + 16 * i for i in range(len(ADDRESS_TABLE))]

POINTERS = [
    BLOB,
    4,
    IOV_OK,
    IOV_WILD,
    IOV_ALIAS,
    SUBS,
    SUBS_FAR,
    BUF,
    BUF + 1,
    MEM_SIZE - 1,
    MEM_SIZE - 4,
    MEM_SIZE - 8,
    MEM_SIZE,
    *STRING_ADDRESSES,
    *ADDRESS_ADDRESSES,
]
SPECIAL_32 = [
    0,
    1,
    2,
    3,
    9,
    253,
    254,
    4096,
    4097,
    0x7FFFFFFF,
    0x80000000,
    0xFFFFFFFE,
    0xFFFFFFFF,
    0xFFFFFFF0,
    0xFFFF0000,
    0x10000000,
    1024,
    ALIASES,
    0x0305,  # the original library's index behind ADDRESS_TABLE[3]
]
SPECIAL_64 = [
    0,
    1,
    1 << 31,
    1 << 32,
    1 << 62,
    (1 << 63) - 1,
    1 << 63,
    (1 << 63) + 1,
    (1 << 64) - 1,
    (1 << 64) - 2,
    10**9,
    10**18,
]


# -- the guest -------------------------------------------------------------------------


def host_imports() -> list[HostImport]:
    """Every import the runtime defines, read from the table of a real process."""
    probe = wasmtime.Module(get_engine(), '(module (memory (export "memory") 1))')
    proc = wassh.prepare(probe, ["probe"], stdin=b"", stdout=wassh.Capture())
    try:
        proc.instantiate()
        table = proc._table  # the runtime's own table: whatever it defines gets fuzzed
        return table.imports()
    finally:
        proc.close()


def _wasm_types(params: str) -> str:
    return " ".join("i64" if p in "IS" else "i32" for p in params)


# The SDK's signal table (wassh.signals.STATE), as a guest that catches SIGALRM
# keeps it: a signal ends a blocked host call only for a guest whose handler
# would run. Rewritten before every call, since a fuzzed call may write anywhere.
SIGNAL_TABLE = 0x7F00
SIGNAL_TABLE_IMAGE = STATE.pack(STATE_VERSION, STATE.size, 1 << (signal.SIGALRM - 1), 0, 0, 0, 0)


def guest_wat(imports: list[HostImport], pages: int = PAGES, extra: str = "") -> str:
    """A module importing every host function, with an export ``t<N>`` calling import N.

    It exports a signal table that says SIGALRM is caught (``SIGNAL_TABLE``).
    ``extra`` is more WAT for the module's body; it may call import N as ``$f<N>``.
    """
    lines = ["(module"]
    for i, imp in enumerate(imports):
        params = f" (param {_wasm_types(imp.params)})" if imp.params else ""
        result = " (result i32)" if imp.returns else ""
        lines.append(f'  (import "{imp.module}" "{imp.name}" (func $f{i}{params}{result}))')
    lines.append(f'  (memory (export "memory") {pages})')
    for i, imp in enumerate(imports):
        params = f" (param {_wasm_types(imp.params)})" if imp.params else ""
        result = " (result i32)" if imp.returns else ""
        gets = " ".join(f"(local.get {k})" for k in range(len(imp.params)))
        lines.append(f'  (func (export "t{i}"){params}{result} (call $f{i} {gets}))')
    lines.append('  (func (export "_start"))')
    table = "".join(f"\\{b:02x}" for b in SIGNAL_TABLE_IMAGE)
    lines.append(f'  (data (i32.const {SIGNAL_TABLE}) "{table}")')
    lines.append(
        f'  (func (export "__wassh_signal_state") (result i32) (i32.const {SIGNAL_TABLE}))'
    )
    lines.append(extra)
    lines.append(")")
    return "\n".join(lines)


def memory_image(blob: bytes) -> bytes:
    """The whole guest memory an example starts from: fixed structures plus fuzzed bytes."""
    mem = bytearray(MEM_SIZE)
    mem[BLOB : BLOB + len(blob)] = blob
    for i, (buf, length) in enumerate([(BUF, 16), (BUF + 16, 0), (BUF + 32, 64), (BUF + 100, 1)]):
        _IOVEC.pack_into(mem, IOV_OK + 8 * i, buf, length)
    wild = [(0xFFFF0000, 0x7FFFFFFF), (MEM_SIZE - 1, 2), (BUF, 0xFFFFFFFF), (0, MEM_SIZE)]
    for i, (buf, length) in enumerate(wild):
        _IOVEC.pack_into(mem, IOV_WILD + 8 * i, buf, length)
    for i in range(ALIASES):
        _IOVEC.pack_into(mem, IOV_ALIAS + 8 * i, 0, MEM_SIZE)
    subs = [(0, 0, 0, 0, 0)]  # clock REALTIME, relative, now: the poll never waits
    for fd in range(16):
        subs.append((fd, 1, fd, 0, 0))
        subs.append((fd, 2, fd, 0, 0))
    subs.append((99, 0, 1, (1 << 64) - 1, 1))  # monotonic, absolute, never
    subs.append((98, 0, 0, 1 << 63, 1))  # realtime, absolute, far away
    for i, (userdata, tag, what, timeout, flags) in enumerate(subs):
        _SUB.pack_into(mem, SUBS + 48 * i, userdata, tag, what, timeout, 0, flags)
    _SUB.pack_into(mem, SUBS_FAR, 7, 0, 1, (1 << 64) - 1, 0, 0)
    for addr, text in zip(STRING_ADDRESSES, STRING_TABLE, strict=True):
        mem[addr : addr + len(text)] = text
    for addr, packed in zip(ADDRESS_ADDRESSES, ADDRESS_TABLE, strict=True):
        mem[addr : addr + len(packed)] = packed
    return bytes(mem)


# -- hostile arguments ---------------------------------------------------------------------


def i32_args(ports: list[int]) -> st.SearchStrategy[int]:
    return st.one_of(
        st.integers(0, 15),  # descriptors, small lengths, flags
        st.sampled_from(POINTERS),
        st.sampled_from(SPECIAL_32 + ports),
        st.integers(0, 64),
        st.integers(0, (1 << 32) - 1),
    )


def i64_args() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(SPECIAL_64), st.integers(0, (1 << 64) - 1))


Call = tuple[int, tuple[int, ...]]
_LENGTH_OF = dict(zip(STRING_ADDRESSES, (len(t) for t in STRING_TABLE), strict=True))


def calls(imports: list[HostImport], ports: list[int]) -> st.SearchStrategy[Call]:
    small, wide = i32_args(ports), i64_args()

    @st.composite
    def call(draw: st.DrawFn) -> Call:
        index = draw(st.integers(0, len(imports) - 1))
        args: list[int] = []
        for p in imports[index].params:
            if p in "IS":
                args.append(draw(wide))
            elif args and args[-1] in _LENGTH_OF and draw(st.booleans()):
                # (pointer, length) is how every string crosses the ABI: often
                # pass a string's own length, so names and paths arrive whole.
                args.append(_LENGTH_OF[args[-1]])
            else:
                args.append(draw(small))
        return index, tuple(args)

    return call()


@dataclass
class Example:
    blob: bytes
    calls: list[Call]


def examples(
    imports: list[HostImport], ports: list[int], max_calls: int = 8
) -> st.SearchStrategy[Example]:
    return st.builds(
        Example,
        st.binary(max_size=1024),
        st.lists(calls(imports, ports), min_size=1, max_size=max_calls),
    )


def sweep_args(imp: HostImport, ports: list[int]) -> list[tuple[int, ...]]:
    """Fixed hostile argument vectors every import gets, whatever hypothesis draws."""
    rows: list[tuple[int, ...]] = []

    def row(small: int, wide: int) -> tuple[int, ...]:
        return tuple(wide if p in "IS" else small for p in imp.params)

    for small, wide in [
        (0, 0),
        (0xFFFFFFFF, (1 << 64) - 1),
        (0x80000000, 1 << 63),
        (0x7FFFFFFF, (1 << 63) - 1),
        (MEM_SIZE - 1, 1 << 62),
        (IOV_ALIAS, 1),
    ]:
        rows.append(row(small, wide))
    # Every descriptor of the world first, then sensible pointers and counts, so
    # the call gets as far as its 64-bit arguments (offsets, sizes, times); or
    # then nothing but huge and negative 32-bit values (counts, backlogs, flags).
    # Wild rows come first: a sensible call may change the descriptor for good
    # (listen, connect, close), and later rows should still meet it as it was.
    sensible = [IOV_OK, 2, BUF, BUF + 64, BUF + 128, 0]
    for fd in range(FDS):
        for huge in (0x80000000, 0xFFFFFFFF):
            rows.append(tuple(fd if k == 0 else huge for k in range(len(imp.params))))
        rows.append(
            tuple(
                0 if p in "IS" else fd if k == 0 else POINTERS[(k + fd) % len(POINTERS)]
                for k, p in enumerate(imp.params)
            )
        )
        for wide in ((1 << 63), (1 << 64) - 1):  # 64-bit values with every flag clear
            rows.append(
                tuple(wide if p in "IS" else fd if k == 0 else 0 for k, p in enumerate(imp.params))
            )
        for wide in ((1 << 63), (1 << 64) - 1, (1 << 63) - 1, 1):
            small = itertools.cycle(sensible)
            rows.append(
                tuple(
                    wide if p in "IS" else fd if k == 0 else next(small)
                    for k, p in enumerate(imp.params)
                )
            )
    for port in ports:
        rows.append(row(port, port))
    return rows


def scenarios(imports: list[HostImport], port: int) -> list[list[Call]]:
    """Sequences that reach deep paths: a name resolved or registered, then connected to."""
    where = {(imp.module, imp.name): i for i, imp in enumerate(imports)}
    out: list[list[Call]] = []
    gai = where.get(("wassh", "sock_getaddrinfo"))
    register = where.get(("wassh_experimental", "sock_register_fake_addr"))
    connect = where.get(("wassh_experimental", "sock_connect"))
    poll = where.get(("wasi_snapshot_preview1", "poll_oneoff"))
    if poll is not None:  # a clock 2**64-1 ns away: waits (until woken) and never overflows
        out.append([(poll, (SUBS_FAR, BUF, 1, BUF + 1024))])
    if connect is None:
        return out
    for addr, length in _LENGTH_OF.items():
        # Family 0 asks for both: records of 32 bytes at BUF, IPv6 first, addresses at +16.
        if gai is not None:
            out.append(
                [
                    (gai, (addr, length, 0, 1, 0, 0, BUF, 4, BUF + 256)),
                    (connect, (MARKED_V6, 2, BUF + 16, port)),
                    (connect, (MARKED_V4, 1, BUF + 48, port)),
                ]
            )
        if register is not None:
            out.append(
                [
                    (register, (0x0305, addr, length)),
                    (connect, (MARKED_V4, 1, ADDRESS_ADDRESSES[3], port)),
                    (connect, (MARKED_V6, 2, ADDRESS_ADDRESSES[4], port)),
                ]
            )
    return out


# -- keeping the fuzz on loopback -------------------------------------------------------------


class _NetworkGuard:
    """An audit hook that refuses every destination but loopback while ``active``."""

    def __init__(self) -> None:
        self.active = False
        self.refused = 0
        self.allowed_paths: tuple[str, ...] = ()
        sys.addaudithook(self._hook)

    def _loopback(self, host: object) -> bool:
        if not isinstance(host, str):
            return False
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
        except ValueError:
            return False

    def _address_ok(self, address: object) -> bool:
        if isinstance(address, tuple) and address:
            return self._loopback(address[0])
        if isinstance(address, str | bytes):
            path = os.fsdecode(address)
            return bool(self.allowed_paths) and path.startswith(self.allowed_paths)
        return False

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active or not event.startswith("socket."):
            return
        if event in ("socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"):
            address = args[1]
            if event == "socket.sendmsg" and address is None:
                return
            if not self._address_ok(address):
                self.refused += 1
                raise OSError(errno.ENETUNREACH, f"fuzz: {address!r} is not loopback")
        elif event == "socket.getaddrinfo":
            host = args[0]
            if isinstance(host, bytes):
                host = host.decode("ascii", "replace")
            if host is not None and not self._loopback(host):
                self.refused += 1
                if isinstance(host, str):
                    host.encode("idna")  # a name the real call refuses fails as it would
                raise socket.gaierror(socket.EAI_NONAME, "fuzz: no names beyond loopback")
        elif event in ("socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo"):
            self.refused += 1
            raise OSError(errno.ENETUNREACH, "fuzz: no name service")


_GUARD: _NetworkGuard | None = None


@contextlib.contextmanager
def loopback_only(*allowed_paths: str) -> Iterator[_NetworkGuard]:
    global _GUARD
    if _GUARD is None:
        _GUARD = _NetworkGuard()  # audit hooks cannot be removed: one, switched on and off
    _GUARD.allowed_paths = allowed_paths
    _GUARD.active = True
    try:
        yield _GUARD
    finally:
        _GUARD.active = False


# -- noticing failures -------------------------------------------------------------------------


class _ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(self.format(record))


@contextlib.contextmanager
def failure_hooks() -> Iterator[list[str]]:
    """Collect what a host bug would leave behind: error logs, thread and unraisable errors."""
    found: list[str] = []
    handler = _ErrorLog()
    logger = logging.getLogger("wassh")
    logger.addHandler(handler)
    old_thread, old_unraisable = threading.excepthook, sys.unraisablehook

    def on_thread(args: threading.ExceptHookArgs) -> None:
        found.append(f"thread {args.thread}: {args.exc_type.__name__}: {args.exc_value}")

    def on_unraisable(args: Any) -> None:
        found.append(f"unraisable: {args.exc_type.__name__}: {args.exc_value} in {args.object}")

    threading.excepthook, sys.unraisablehook = on_thread, on_unraisable
    printed = io.StringIO()  # the host prints nothing of its own, least of all guest bytes
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            yield found
    finally:
        threading.excepthook, sys.unraisablehook = old_thread, old_unraisable
        logger.removeHandler(handler)
        found.extend(handler.records)
        if printed.getvalue():
            found.append(f"printed by the host: {printed.getvalue()[:300]!r}")


class _Watchdog:
    """Wakes a guest blocked in a host call, then gives up on it.

    ``nudge`` seconds into a call it queues a signal (a blocked ``poll_oneoff``
    answers EINTR); ``give_up`` seconds in it cancels the process: a hang.
    """

    def __init__(self, nudge: float, give_up: float) -> None:
        self.nudge, self.give_up = nudge, give_up
        self._cond = threading.Condition()
        self._proc: wassh.Process | None = None
        self._started = 0.0
        self.nudged = False
        self.hung = False
        threading.Thread(target=self._run, daemon=True, name="fuzz-watchdog").start()

    @contextlib.contextmanager
    def watch(self, proc: wassh.Process) -> Iterator[None]:
        with self._cond:
            self._proc, self._started = proc, time.monotonic()
            self.nudged = self.hung = False
            self._cond.notify()
        try:
            yield
        finally:
            with self._cond:
                self._proc = None

    def _run(self) -> None:
        with self._cond:
            while True:
                if self._proc is None:
                    self._cond.wait()
                    continue
                elapsed = time.monotonic() - self._started
                if not self.nudged and elapsed >= self.nudge:
                    self.nudged = True
                    self._proc.queue_signal(signal.SIGALRM)
                if elapsed >= self.give_up and not self.hung:
                    self.hung = True
                    self._proc.cancel()
                self._cond.wait(0.02)


# -- one world ---------------------------------------------------------------------------------


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 1 << 16):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


class World:
    """A guest process with a descriptor of every kind, for one example."""

    def __init__(
        self, module: wasmtime.Module, root: Path, echo_port: int, plugins: list[object]
    ) -> None:
        self.tmp = Path(tempfile.mkdtemp(dir=root))
        (self.tmp / "file.txt").write_bytes(b"0123456789" * 10)
        (self.tmp / "dir" / "sub").mkdir(parents=True)
        self._host_fds: list[int] = []
        stdin_r, self._stdin_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        self._host_fds += [stdin_r, self._stdin_w, out_w, err_w]
        for fd in (out_r, err_r):
            threading.Thread(target=_drain, args=(fd,), daemon=True).start()
        # Input, then end of input: stdin may stay blocking, a read never waits.
        os.write(self._stdin_w, b"typed input\n")
        os.close(self._stdin_w)
        self._host_fds.remove(self._stdin_w)
        self.proc = wassh.prepare(
            module,
            ["fuzz"],
            stdin=stdin_r,
            stdout=out_w,
            stderr=err_w,
            dirs=[(str(self.tmp), "/tmp")],
            hosts={"echo.test": "127.0.0.1"},
            plugins=plugins,
        )
        proc = self.proc
        proc.instantiate()  # fds 0-2 stdio, 3 /tmp, 4 /dev
        fds = proc.fds
        preopen = fds.get(3)
        fds.add(
            preopen.open_at(  # type: ignore[attr-defined]
                "file.txt", follow=False, oflags=0, read=True, write=True, fdflags=0
            )
        )  # 5
        sock = proc.sockets.create(1, 6, 0)  # 6: AF_INET stream, connected to the echo server
        proc.sockets.install(sock)
        sock.connect("127.0.0.1", echo_port)
        sock.write([memoryview(b"hello")])
        listener = proc.sockets.create(1, 6, 0)  # 7: listening on loopback
        proc.sockets.install(listener)
        listener.bind("127.0.0.1", 0)
        listener.listen(4)
        udp = proc.sockets.create(1, 5, 0)  # 8: a bound UDP socket
        proc.sockets.install(udp)
        udp.bind("127.0.0.1", 0)
        reader, writer = make_pipe(proc.waiter)  # 9, 10
        fds.add(reader)
        fds.add(writer)
        bound = proc.sockets.create(1, 6, 0)  # 11: bound, not yet listening
        proc.sockets.install(bound)
        bound.bind("127.0.0.1", 0)
        proc.sockets.install(proc.sockets.create(2, 6, -1))  # 12, 13: for fake addresses
        proc.sockets.install(proc.sockets.create(1, 6, -1))
        master, slave = os.openpty()
        threading.Thread(target=_drain, args=(master,), daemon=True).start()
        fds.add(HostStream(slave, proc.waiter, owned=True))
        assert len(fds) == FDS
        # stdio keeps its blocking mode: a read of stdin meets end of input, and
        # one of stdout must fail at once rather than wait.
        self.stdio = {id(fds.get(fd)) for fd in range(3)}
        self.stats: Counter[str] = Counter()

    def write_memory(self, image: bytes) -> None:
        self.proc.memory.write(0, image)

    def call(self, watchdog: _Watchdog, name: str, export: str, args: tuple[int, ...]) -> None:
        """One call through the guest; raises AssertionError for a host failure."""
        for _fd, obj in self.proc.fds.items():
            if id(obj) not in self.stdio:
                obj.nonblocking = True  # nothing the guest calls may block but poll_oneoff
        self.proc.memory.write(SIGNAL_TABLE, SIGNAL_TABLE_IMAGE)
        with watchdog.watch(self.proc):
            try:
                self.proc.call(export, *args)
            except GuestExit:
                self.stats["exit"] += 1
            except GuestCancelled:
                raise AssertionError(f"{name}{args} hung") from None
        if watchdog.nudged:
            self.proc.waiter.take_signals()  # what the SDK does after EINTR
            if not name.endswith("poll_oneoff"):
                raise AssertionError(f"{name}{args} blocked until woken by a signal")
            self.stats["woken"] += 1

    def close(self) -> None:
        self.proc.close()
        for fd in self._host_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self.tmp, ignore_errors=True)


# -- the fuzzer --------------------------------------------------------------------------------


@dataclass
class Fuzzer:
    """Everything shared by the examples of one run."""

    root: Path
    echo_port: int
    imports: list[HostImport] = field(default_factory=host_imports)
    plugins: list[object] = field(default_factory=list)  # embedder-registered transports
    nudge: float = 0.5
    give_up: float = 5.0
    calls_made: int = 0
    per_import: Counter[str] = field(default_factory=Counter)
    worlds: int = 0

    def __post_init__(self) -> None:
        self.module = wasmtime.Module(get_engine(), guest_wat(self.imports))
        self.watchdog = _Watchdog(self.nudge, self.give_up)
        self.names = [f"{imp.module}.{imp.name}" for imp in self.imports]

    @property
    def ports(self) -> list[int]:
        return [self.echo_port]

    def strategy(self, max_calls: int = 8) -> st.SearchStrategy[Example]:
        return examples(self.imports, self.ports, max_calls)

    @contextlib.contextmanager
    def world(self) -> Iterator[World]:
        world = World(self.module, self.root, self.echo_port, self.plugins)
        self.worlds += 1
        try:
            yield world
        finally:
            world.close()

    def check_calls(self, world: World, image: bytes, todo: list[Call]) -> None:
        """Make the calls in ``world``; AssertionError describes the first host failure."""
        before = UNEXPECTED.count
        with failure_hooks() as found:
            for index, args in todo:
                world.write_memory(image)  # the previous call may have written anywhere
                name = self.names[index]
                self.calls_made += 1
                self.per_import[name] += 1
                try:
                    world.call(self.watchdog, name, f"t{index}", args)
                except AssertionError:
                    raise
                except BaseException as exc:
                    raise AssertionError(f"{name}{args} let {exc!r} escape") from exc
                if UNEXPECTED.count != before:
                    raise AssertionError(
                        f"{name}{args} raised an unexpected host error:\n{UNEXPECTED.recent[-1]}"
                    )
        if found:
            raise AssertionError("host errors during the example:\n" + "\n".join(found))

    def run_example(self, example: Example) -> None:
        image = memory_image(example.blob)
        with quiet_stdin(), loopback_only(str(self.root)), self.world() as world:
            self.check_calls(world, image, example.calls)

    def sweep(self) -> list[str]:
        """Every import with the fixed hostile vectors, then the scenarios, in fresh worlds.

        Returns the failures: the first of each import and of each scenario.
        """
        image = memory_image(b"")
        batches = [
            [(i, args) for args in sweep_args(imp, self.ports)]
            for i, imp in enumerate(self.imports)
        ]
        batches += scenarios(self.imports, self.echo_port)
        failures = []
        with quiet_stdin(), loopback_only(str(self.root)):
            for todo in batches:
                try:
                    with self.world() as world:
                        self.check_calls(world, image, todo)
                except AssertionError as exc:
                    failures.append(str(exc))
        return failures


@contextlib.contextmanager
def quiet_stdin() -> Iterator[None]:
    """Our stdin is not a terminal while fuzzing (``pytest -s`` in a terminal would be).

    ``readpassphrase`` asks a person only when the host's stdin is a terminal;
    the fuzz must see the no-terminal answer, never wait for someone to type.
    """
    if not os.isatty(0):
        yield
        return
    saved = os.dup(0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    try:
        yield
    finally:
        os.dup2(saved, 0)
        os.close(saved)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
