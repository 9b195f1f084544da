"""Nothing a guest sends can hurt the host: a fuzz of every import, and one test per cause.

The fuzz machinery is in ``fuzzguest.py`` (``scripts/fuzz.py`` runs it for
longer). The regression tests call the same generated guest, one trampoline
per host import, with the arguments that once broke the host.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import wasmtime
import wassh
from fuzzguest import (
    ALIASES,
    IOV_ALIAS,
    MEM_SIZE,
    STRING_ADDRESSES,
    STRING_TABLE,
    Fuzzer,
    guest_wat,
    host_imports,
    memory_image,
    quiet_stdin,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from suitekit import EchoServer
from wassh import Errno
from wassh.abi.errno import UNEXPECTED, to_errno
from wassh.abi.hostcall import HostImport
from wassh.abi.wassh_calls import max_backlog
from wassh.engine import get_engine
from wassh.host.fakedns import MAX_NAME, MAX_NAMES

P1 = "wasi_snapshot_preview1"
EXP = "wassh_experimental"
EAI_NONAME = -6
EAI_MEMORY = -5  # the SDK's netdb.h, as the original library numbers it
TWO63 = 1 << 63
TOP64 = (1 << 64) - 1
ALL_RIGHTS = (1 << 30) - 1
OUT, BUF, NAME = 0x100, 0x8000, 0x9000  # scratch addresses in the guest
_IOVEC = struct.Struct("<II")
_SUB = struct.Struct("<QB7xI4xQQH6x")
_WASSH = Path(sys.executable).parent / "wassh"


# -- the fuzz ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def fuzzer(tmp_path_factory: pytest.TempPathFactory, echo: EchoServer) -> Fuzzer:
    return Fuzzer(tmp_path_factory.mktemp("fuzz"), echo.port)


def test_every_import_survives_the_sweep(fuzzer: Fuzzer) -> None:
    """Fixed hostile vectors for every import the runtime defines, new ones included."""
    failures = fuzzer.sweep()
    assert not failures, "\n\n".join(failures)
    defined = {f"{imp.module}.{imp.name}" for imp in host_imports()}
    assert len(defined) > 80
    assert set(fuzzer.per_import) == defined  # nothing defined goes unfuzzed


@settings(
    max_examples=600,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI is repeatable
    database=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_hostile_guest_fuzz(fuzzer: Fuzzer, data: st.DataObject) -> None:
    """Random call sequences with wild arguments: no host error, no hang, nothing printed."""
    fuzzer.run_example(data.draw(fuzzer.strategy(), label="example"))


class _BrokenResolver:
    """A resolver plugin with a bug: its name lookup raises."""

    @wassh.hookimpl
    def wassh_transport_offer(
        self, config: wassh.TransportConfig, settings: Mapping[str, object]
    ) -> wassh.Offer:
        return wassh.Offer(name="broken", kinds=frozenset({wassh.NAMES}), rank=100)

    @wassh.hookimpl
    async def wassh_getaddrinfo(
        self, host: str, family: int, config: wassh.TransportConfig
    ) -> wassh.NameAnswer:
        raise ZeroDivisionError("a plugin bug")


def test_the_fuzz_notices_a_host_bug(tmp_path: Path, echo: EchoServer) -> None:
    """The machinery can fail: an error the fuzz provokes in the host is reported."""
    fuzzer = Fuzzer(tmp_path, echo.port, plugins=[_BrokenResolver()])
    gai = fuzzer.names.index("wassh.sock_getaddrinfo")
    name = STRING_ADDRESSES[STRING_TABLE.index(b"a.example")]
    call = (gai, (name, 9, 0, 1, 0, 0, BUF, 4, OUT))
    with pytest.raises(AssertionError, match="ZeroDivisionError"), fuzzer.world() as world:
        fuzzer.check_calls(world, memory_image(b""), [call])


def test_unexpected_host_errors_are_counted() -> None:
    before = UNEXPECTED.count
    assert to_errno(ValueError("a host bug")) == Errno.ENOTRECOVERABLE
    assert UNEXPECTED.count == before + 1
    assert "a host bug" in UNEXPECTED.recent[-1]
    assert to_errno(OSError(123456, "an errno WASI has no name for")) == Errno.EIO
    assert UNEXPECTED.count == before + 1  # the kernel's answer is not a host bug


# -- one guest, one trampoline per import ------------------------------------------------------


@pytest.fixture(scope="module")
def imports() -> list[HostImport]:
    return host_imports()


class Guest:
    """The generated guest: ``guest("fd_allocate", fd, offset, length)`` calls that import."""

    def __init__(
        self, imports: list[HostImport], *, pages: int = 2, extra: str = "", **options: Any
    ) -> None:
        self.index: dict[str, int] = {}
        for i, imp in enumerate(imports):
            self.index[f"{imp.module}.{imp.name}"] = i
            self.index.setdefault(imp.name, i)  # a bare name: preview1's, when both have it
        self.module = wasmtime.Module(get_engine(), guest_wat(imports, pages, extra))
        options.setdefault("stdin", b"")
        options.setdefault("stdout", wassh.Capture())
        self.proc = wassh.prepare(self.module, ["guest"], **options)
        self.proc.instantiate()
        self.mem = self.proc.memory

    def __call__(self, name: str, *args: int) -> int:
        return int(self.proc.call(f"t{self.index[name]}", *args))

    def put(self, addr: int, data: bytes) -> tuple[int, int]:
        self.mem.write(addr, data)
        return addr, len(data)

    def close(self) -> None:
        self.proc.close()


@contextlib.contextmanager
def guest(imports: list[HostImport], **options: Any) -> Iterator[Guest]:
    g = Guest(imports, **options)
    # A call that hangs fails the test (GuestCancelled) instead of stopping the suite.
    timer = threading.Timer(20, g.proc.cancel)
    timer.start()
    before = UNEXPECTED.count
    try:
        yield g
    finally:
        timer.cancel()
        g.close()
    assert UNEXPECTED.count == before, UNEXPECTED.recent[-1]  # no host traceback either


def native(op: Callable[[], object]) -> Errno:
    """What the host kernel answers to the same operation, as a WASI errno."""
    try:
        op()
    except OSError as exc:
        return Errno[errno.errorcode[exc.errno or 0]]
    return Errno.SUCCESS


# -- 64-bit arguments ---------------------------------------------------------------------------


def test_offsets_at_or_above_2_63_answer_as_linux(
    imports: list[HostImport], tmp_path: Path
) -> None:
    with guest(imports, dirs=[(str(tmp_path), "/tmp")]) as g:
        path, n = g.put(NAME, b"data.bin")
        assert g("path_open", 3, 0, path, n, 1, ALL_RIGHTS, ALL_RIGHTS, 0, OUT) == 0
        fd = g.mem.u32(OUT)
        g.put(BUF, _IOVEC.pack(BUF + 64, 4))
        assert g("fd_allocate", fd, TWO63, 1) == Errno.EINVAL  # a negative offset
        assert g("fd_allocate", fd, 0, TWO63) == Errno.EINVAL
        assert g("fd_allocate", fd, TOP64, TOP64) == Errno.EINVAL
        assert g("fd_allocate", fd, TWO63 - 1, 1) == Errno.EFBIG
        assert g("fd_filestat_set_size", fd, TWO63) == Errno.EINVAL
        assert g("fd_filestat_set_size", fd, TWO63 - 1) == Errno.EFBIG
        assert g("fd_pread", fd, BUF, 1, TWO63, OUT) == Errno.EINVAL
        assert g("fd_pwrite", fd, BUF, 1, TWO63, OUT) == Errno.EINVAL
        assert g("fd_pread", fd, BUF, 1, TOP64, OUT) == Errno.EINVAL  # not "where it is"
        assert g("fd_pwrite", fd, BUF, 1, TOP64, OUT) == Errno.EINVAL
        assert g("fd_seek", fd, TWO63, 0, OUT) == Errno.EINVAL
        assert g("fd_advise", fd, 0, TWO63, 0) == Errno.EINVAL  # a negative length
        host = os.open(tmp_path / "data.bin", os.O_RDWR)
        try:  # the kernel decides the rest: the guest sees what a native program would
            assert g("fd_advise", fd, TWO63, 0, 0) == native(
                lambda: os.posix_fadvise(host, -TWO63, 0, os.POSIX_FADV_NORMAL)
            )
            assert g("fd_pwrite", fd, BUF, 1, TWO63 - 1, OUT) == native(
                lambda: os.pwrite(host, b"abcd", TWO63 - 1)
            )
        finally:
            os.close(host)
        # The other 64-bit arguments: times, cookies, rights, clock precision.
        assert g("fd_filestat_set_times", fd, TOP64, TOP64, 1 | 4) == 0
        assert g("path_filestat_set_times", 3, 0, path, n, TWO63, TOP64, 1 | 4) == 0
        assert g("fd_readdir", 3, BUF, 256, TOP64, OUT) == 0
        assert g.mem.u32(OUT) == 0  # past the end of any directory
        assert g("fd_readdir", 3, BUF, 256, TWO63, OUT) == 0
        assert g("fd_fdstat_set_rights", fd, TOP64, TOP64) == Errno.ENOTCAPABLE
        assert g("clock_time_get", 1, TOP64, OUT) == 0


def test_a_poll_deadline_centuries_away_waits_until_woken(imports: list[HostImport]) -> None:
    """2**64-1 ns fits no poll(2) timeout: the host waits in steps, and a signal ends it."""
    with guest(imports) as g:
        for flags, clock in ((0, 1), (1, 0), (1, 1)):  # relative; absolute realtime, monotonic
            g.put(BUF, _SUB.pack(7, 0, clock, TOP64, 0, flags))
            threading.Timer(0.3, g.proc.queue_signal, (signal.SIGALRM,)).start()
            start = time.monotonic()
            assert g("poll_oneoff", BUF, BUF + 64, 1, OUT) == Errno.EINTR
            assert time.monotonic() - start >= 0.25
            assert g("signal_take", OUT) == 0 and g.mem.u32(OUT) == signal.SIGALRM


def test_poll_subscriptions_are_bounded(imports: list[HostImport]) -> None:
    with guest(imports, pages=8) as g:
        subs, events = 0x1000, 0x40000
        g.put(subs, _SUB.pack(1, 0, 1, 0, 0, 0))  # the first: a clock due now
        assert g("poll_oneoff", subs, events, 4096, OUT) == 0
        assert g("poll_oneoff", subs, events, 4097, OUT) == Errno.EINVAL


# -- sockets and names ------------------------------------------------------------------------


def _listen_backlog(port: int) -> int | None:
    """The kernel's backlog of the listener on ``port`` (``ss``: Send-Q), if ``ss`` exists."""
    if shutil.which("ss") is None:
        return None
    out = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(out[2])


@pytest.mark.parametrize(("backlog", "expected"), [(0x80000000, None), (0xFFFFFFFF, None), (5, 5)])
def test_listen_backlog_is_a_clamped_int(
    imports: list[HostImport], backlog: int, expected: int | None
) -> None:
    """2**31 and up arrive as negative ints: Linux clamps those to somaxconn, so do we."""
    with guest(imports) as g:
        assert g(f"{EXP}.sock_create", OUT, 1, 6, 0) == 0
        fd = g.mem.u32(OUT)
        addr, _ = g.put(NAME, bytes([127, 0, 0, 1]))
        assert g(f"{EXP}.sock_bind", fd, 1, addr, 0) == 0
        assert g(f"{EXP}.sock_listen", fd, backlog) == 0
        assert g(f"{EXP}.sock_get_name", fd, OUT, OUT + 4, OUT + 8, 0) == 0
        port = int.from_bytes(g.mem.read(OUT + 4, 2), "little")
        assert _listen_backlog(port) in (None, expected or max_backlog())
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            assert g(f"{EXP}.sock_accept", fd, OUT) == 0  # a working listener


BAD_NAMES = [
    b"\xff\xfe",
    b"has space.example",
    b"a..b",
    b".leading",
    b"x" * 64 + b".example",  # a label longer than 63
    b"nul\x00inside",
    b"caf\xc3\xa9.example",  # IDN names arrive punycoded (xn--) or not at all
    b"a" * 250 + b".com",  # 254 bytes
    b"",
]
GOOD_NAMES = [b"a.example", b"db_1.internal", (b"a" * 63 + b".") * 3 + b"a" * 61, b"abs.name."]


def test_names_no_resolver_would_look_up_are_refused(imports: list[HostImport]) -> None:
    with guest(imports) as g:
        gai, register = "wassh.sock_getaddrinfo", f"{EXP}.sock_register_fake_addr"
        for name in BAD_NAMES:
            ptr, n = g.put(NAME, name)
            assert g(gai, ptr, n, 0, 1, 0, 0, BUF, 4, OUT) == EAI_NONAME, name
            assert g(register, 0x305, ptr, n) == Errno.EINVAL, name
        assert len(GOOD_NAMES[2]) == MAX_NAME
        for name in GOOD_NAMES:
            ptr, n = g.put(NAME, name)
            assert g(gai, ptr, n, 0, 1, 0, 0, BUF, 4, OUT) == 0, name
            assert g.mem.u32(OUT) == 2  # a fake IPv6 and IPv4 address
            assert g(register, 0x305, ptr, n) == 0, name


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_long_names_cost_the_host_nothing(imports: list[HostImport]) -> None:
    """40 names of 16 MiB once took the host to 721 MB: now refused before they are read."""
    huge = 16 << 20
    with guest(imports, pages=(huge >> 16) + 2) as g:
        g.put(0x10000, b"a" * huge)  # the guest's own memory, touched before measuring
        before = _rss_mib()
        for index in range(40):
            assert g(f"{EXP}.sock_register_fake_addr", index, 0x10000, huge) == Errno.EINVAL
            assert g("wassh.sock_getaddrinfo", 0x10000, huge, 0, 1, 0, 0, BUF, 4, OUT) == (
                EAI_NONAME
            )
        assert _rss_mib() - before < 100


# Registers names "n00000000".. by the thousand from inside the guest (a host call
# each, without a Python round trip): returns how many went in, and leaves the
# errno of the first refusal at OUT.
_FILL = """
  (func $hex (param $at i32) (param $v i32)
    (local $k i32) (local $d i32)
    (loop $digits
      (local.set $d (i32.and (i32.shr_u (local.get $v) (i32.sub (i32.const 28)
        (i32.shl (local.get $k) (i32.const 2)))) (i32.const 15)))
      (i32.store8 (i32.add (local.get $at) (local.get $k))
        (i32.add (local.get $d) (select (i32.const 48) (i32.const 87)
          (i32.lt_u (local.get $d) (i32.const 10)))))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br_if $digits (i32.lt_u (local.get $k) (i32.const 8)))))
  (func (export "fill") (param $original i32) (param $count i32) (result i32)
    (local $i i32) (local $r i32)
    (i32.store8 (i32.const 0x9000) (i32.const 110))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (call $hex (i32.const 0x9001) (local.get $i))
        (if (local.get $original)
          (then (local.set $r (call $f{register} (i32.add (local.get $i) (i32.const 1))
            (i32.const 0x9000) (i32.const 9))))
          (else (local.set $r (call $f{gai} (i32.const 0x9000) (i32.const 9) (i32.const 0)
            (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0x8000) (i32.const 4)
            (i32.const 0x100)))))
        (i32.store (i32.const 0x100) (local.get $r))
        (br_if $done (local.get $r))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $i))
"""


def test_fake_name_tables_are_bounded(imports: list[HostImport]) -> None:
    names = [f"{imp.module}.{imp.name}" for imp in imports]
    extra = _FILL.replace("{register}", str(names.index(f"{EXP}.sock_register_fake_addr")))
    extra = extra.replace("{gai}", str(names.index("wassh.sock_getaddrinfo")))
    with guest(imports, extra=extra) as g:
        for original, full in ((0, EAI_MEMORY), (1, Errno.ENOMEM)):
            assert g.proc.call("fill", original, MAX_NAMES + 10) == MAX_NAMES
            assert g.mem.unpack(struct.Struct("<i"), OUT)[0] == full
            assert g.proc.call("fill", original, 5) == 5  # names already held keep working


# -- the terminal and standard streams ------------------------------------------------------


def test_readpassphrase_without_a_terminal_is_enotty(
    imports: list[HostImport], capfd: pytest.CaptureFixture[str]
) -> None:
    with quiet_stdin(), guest(imports) as g:
        prompt, n = g.put(NAME, b"Password: ")
        for echo in (0, 1):
            assert g(f"{EXP}.readpassphrase", prompt, n, BUF, 64, echo) == Errno.ENOTTY
            assert g("wassh.readpassphrase", prompt, n, BUF, 64, echo) == Errno.ENOTTY
    out, err = capfd.readouterr()
    assert "Password" not in out + err  # no prompt went anywhere


def _exit_with(call: str) -> bytes:
    """A guest whose ``_start`` exits with the errno of one host call."""
    return wasmtime.wat2wasm(
        f"""(module
  (import "{P1}" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "{P1}" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "{EXP}" "readpassphrase" (func $rpp (param i32 i32 i32 i32 i32) (result i32)))
  (import "{P1}" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "\\00\\01\\00\\00\\10\\00\\00\\00")  ;; an iovec: 16 bytes at 256
  (data (i32.const 64) "Password: ")
  (func (export "_start") (call $exit {call})))"""
    )


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ("(call $fd_read (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 32))", Errno.EBADF),
        ("(call $fd_read (i32.const 2) (i32.const 16) (i32.const 1) (i32.const 32))", Errno.EBADF),
        ("(call $fd_write (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 32))", Errno.EBADF),
        (
            "(call $rpp (i32.const 64) (i32.const 10)"
            " (i32.const 256) (i32.const 16) (i32.const 0))",
            Errno.ENOTTY,
        ),
    ],
    ids=["read-stdout", "read-stderr", "write-stdin", "readpassphrase"],
)
def test_wassh_run_with_pipes_answers_at_once(tmp_path: Path, call: str, expected: Errno) -> None:
    """``wassh run`` with pipes for stdio, in a session with no terminal: errno, no hang."""
    wasm = tmp_path / "guest.wasm"
    wasm.write_bytes(_exit_with(call))
    result = subprocess.run(
        [str(_WASSH), "run", "--no-cache", str(wasm)],
        stdin=subprocess.PIPE,
        capture_output=True,
        timeout=60,
        start_new_session=True,
    )
    assert result.returncode == expected, result.stderr
    assert b"Password" not in result.stdout + result.stderr
    assert b"Traceback" not in result.stderr


def test_stdio_follows_the_host_descriptors_access_mode(imports: list[HostImport]) -> None:
    """Linux opens 1 and 2 write-only: reading a stdout pipe is EBADF, not a wait forever."""
    stdin_r, stdin_w = os.pipe()
    out_r, out_w = os.pipe()
    try:
        os.write(stdin_w, b"typed")
        with guest(imports, stdin=stdin_r, stdout=out_w, stderr=out_w) as g:
            g.put(BUF, _IOVEC.pack(BUF + 64, 16))
            assert g("fd_read", 1, BUF, 1, OUT) == Errno.EBADF
            assert g("fd_read", 2, BUF, 1, OUT) == Errno.EBADF
            assert g("fd_read", 1, BUF, 0, OUT) == Errno.EBADF  # even for no bytes
            assert g("fd_write", 0, BUF, 1, OUT) == Errno.EBADF
            assert g("fd_read", 0, BUF, 1, OUT) == 0  # the right directions still work
            assert g.mem.read(BUF + 64, g.mem.u32(OUT)) == b"typed"
            assert g("fd_write", 1, BUF, 1, OUT) == 0
            assert os.read(out_r, 100) == b"typed" + bytes(11)
    finally:
        for fd in (stdin_r, stdin_w, out_r, out_w):
            os.close(fd)


# -- what a guest can make the host hold --------------------------------------------------------


def test_overlapping_iovecs_move_at_most_guest_memory(imports: list[HostImport]) -> None:
    """128 iovecs that each name all of memory: one memory's worth, not 128."""
    out = wassh.Capture()
    with guest(imports, stdout=out) as g:
        g.mem.write(0, memory_image(b""))
        assert g("fd_write", 1, IOV_ALIAS, ALIASES, OUT) == 0
        assert g.mem.u32(OUT) == MEM_SIZE
        assert len(out.data) == MEM_SIZE
        assert g("fd_write", 1, IOV_ALIAS, 1025, OUT) == Errno.EINVAL  # IOV_MAX


def test_paths_and_nesting_are_bounded(imports: list[HostImport], tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*["d"] * 130)
    deep.mkdir(parents=True)
    with guest(imports, dirs=[(str(tmp_path), "/tmp")]) as g:

        def open_dir(path: bytes) -> int:
            ptr, n = g.put(NAME, path)
            return g("path_open", 3, 0, ptr, n, 2, 0, 0, 0, OUT)  # O_DIRECTORY, read only

        assert open_dir(b"d/" * 100 + b"d") == 0
        assert open_dir(b"d/" * 129 + b"d") == Errno.ENAMETOOLONG
        assert open_dir(b"a/" * 2047 + b"a") == Errno.ENOENT  # 4095 bytes: a path
        assert open_dir(b"a/" * 2048) == Errno.ENAMETOOLONG  # 4096: PATH_MAX
        assert g("path_open", 3, 0, 0, 0xFFFF, 0, 0, 0, 0, OUT) == Errno.ENAMETOOLONG


def test_a_large_directory_is_read_in_pieces(imports: list[HostImport], tmp_path: Path) -> None:
    """Nothing is kept between fd_readdir calls, and cookies still list every entry once."""
    names = {f"file-{i:04}" for i in range(600)}
    for name in names:
        (tmp_path / name).touch()
    seen: list[str] = []
    with guest(imports, dirs=[(str(tmp_path), "/tmp")]) as g:
        cookie, size = 0, 512
        while True:
            assert g("fd_readdir", 3, BUF, size, cookie, OUT) == 0
            data = g.mem.read(BUF, g.mem.u32(OUT))
            pos = 0
            while pos + 24 <= len(data):
                next_cookie, _ino, namelen, _type = struct.unpack_from("<QQIB", data, pos)
                if pos + 24 + namelen > len(data):
                    break  # cut off at the end of the buffer: read again from its cookie
                seen.append(data[pos + 24 : pos + 24 + namelen].decode())
                cookie = next_cookie
                pos += 24 + namelen
            if len(data) < size:
                break
    assert sorted(seen) == sorted({".", "..", *names})
