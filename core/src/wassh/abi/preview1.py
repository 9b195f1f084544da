"""wasi_snapshot_preview1: decoding of pointers and structs for the core calls.

Path and directory calls live in ``preview1_fs``; socket semantics in
``host.sockets``. Functions here only decode arguments, call host objects and
encode results.
"""

from __future__ import annotations

import os
import struct
import time
from typing import TYPE_CHECKING

from ..host.poll import poll_oneoff
from ..host.wasi_defs import (
    CLOCK_MONOTONIC,
    CLOCK_PROCESS_CPUTIME,
    CLOCK_REALTIME,
    CLOCK_THREAD_CPUTIME,
    Filetype,
)
from .errno import Errno, WasiError

if TYPE_CHECKING:
    from ..host.objects import Filestat
    from ..runtime import Process
    from .hostcall import HostCallTable
    from .memory import GuestMemory

MODULE = "wasi_snapshot_preview1"

_FDSTAT = struct.Struct("<BxHxxxxQQ")
_FILESTAT = struct.Struct("<QQBxxxxxxxQQQQQ")
_RANDOM_STEP = 1 << 16


def put_filestat(mem: GuestMemory, out: int, st: Filestat) -> None:
    """Write a preview1 ``filestat`` (64 bytes) at ``out``."""
    mem.pack(
        _FILESTAT, out, st.dev, st.ino, st.filetype, st.nlink, st.size, st.atim, st.mtim, st.ctim
    )


class GuestExit(BaseException):
    """``proc_exit``: unwinds the guest with its exit status."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _strings_sizes(items: list[bytes]) -> tuple[int, int]:
    return len(items), sum(len(s) + 1 for s in items)


class Preview1:
    """The core preview1 calls of one guest process."""

    def __init__(self, proc: Process) -> None:
        self.proc = proc
        self.mem = proc.memory
        self.fds = proc.fds
        self._args = [a.encode() for a in proc.config.argv]
        self._env = [f"{k}={v}".encode() for k, v in proc.config.env.items()]

    def register(self, table: HostCallTable) -> None:
        d = table.define
        m = MODULE
        d(m, "args_get", "ii", self.args_get)
        d(m, "args_sizes_get", "ii", self.args_sizes_get)
        d(m, "environ_get", "ii", self.environ_get)
        d(m, "environ_sizes_get", "ii", self.environ_sizes_get)
        d(m, "clock_res_get", "ii", self.clock_res_get)
        d(m, "clock_time_get", "iIi", self.clock_time_get)
        d(m, "fd_advise", "iSSi", self.fd_advise)
        d(m, "fd_allocate", "iSS", self.fd_allocate)
        d(m, "fd_close", "i", self.fd_close)
        d(m, "fd_datasync", "i", self.fd_sync)
        d(m, "fd_fdstat_get", "ii", self.fd_fdstat_get)
        d(m, "fd_fdstat_set_flags", "ii", self.fd_fdstat_set_flags)
        d(m, "fd_fdstat_set_rights", "iII", self.fd_fdstat_set_rights)
        d(m, "fd_filestat_get", "ii", self.fd_filestat_get)
        d(m, "fd_filestat_set_size", "iS", self.fd_filestat_set_size)
        d(m, "fd_filestat_set_times", "iIIi", self.fd_filestat_set_times)
        d(m, "fd_pread", "iiiSi", self.fd_pread)
        d(m, "fd_pwrite", "iiiSi", self.fd_pwrite)
        d(m, "fd_read", "iiii", self.fd_read)
        d(m, "fd_renumber", "ii", self.fd_renumber)
        d(m, "fd_seek", "iSii", self.fd_seek)
        d(m, "fd_sync", "i", self.fd_sync)
        d(m, "fd_tell", "ii", self.fd_tell)
        d(m, "fd_write", "iiii", self.fd_write)
        d(m, "poll_oneoff", "iiii", self.poll_oneoff)
        d(m, "proc_exit", "i", self.proc_exit, returns=False)
        d(m, "proc_raise", "i", self.proc_raise)
        d(m, "sched_yield", "", self.sched_yield)
        d(m, "random_get", "ii", self.random_get)
        d(m, "sock_accept", "iii", self.sock_accept)
        d(m, "sock_recv", "iiiiii", self.sock_recv)
        d(m, "sock_send", "iiiii", self.sock_send)
        d(m, "sock_shutdown", "ii", self.sock_shutdown)

    # -- args / environ --------------------------------------------------------
    def _put_strings(self, items: list[bytes], argv_ptr: int, buf_ptr: int) -> int:
        total = sum(len(s) + 1 for s in items)
        self.mem.check(argv_ptr, 4 * len(items))
        self.mem.check(buf_ptr, total)
        for i, s in enumerate(items):
            self.mem.set_u32(argv_ptr + 4 * i, buf_ptr)
            self.mem.write(buf_ptr, s + b"\0")
            buf_ptr += len(s) + 1
        return 0

    def args_get(self, argv: int, buf: int) -> int:
        return self._put_strings(self._args, argv, buf)

    def args_sizes_get(self, count_ptr: int, size_ptr: int) -> int:
        count, size = _strings_sizes(self._args)
        self.mem.check(count_ptr, 4)
        self.mem.check(size_ptr, 4)
        self.mem.set_u32(count_ptr, count)
        self.mem.set_u32(size_ptr, size)
        return 0

    def environ_get(self, env: int, buf: int) -> int:
        return self._put_strings(self._env, env, buf)

    def environ_sizes_get(self, count_ptr: int, size_ptr: int) -> int:
        count, size = _strings_sizes(self._env)
        self.mem.check(count_ptr, 4)
        self.mem.check(size_ptr, 4)
        self.mem.set_u32(count_ptr, count)
        self.mem.set_u32(size_ptr, size)
        return 0

    # -- clocks / random ---------------------------------------------------------
    def clock_res_get(self, clock: int, out: int) -> int:
        if clock not in (
            CLOCK_REALTIME,
            CLOCK_MONOTONIC,
            CLOCK_PROCESS_CPUTIME,
            CLOCK_THREAD_CPUTIME,
        ):
            raise WasiError(Errno.EINVAL)
        self.mem.set_u64(out, 1000)
        return 0

    def clock_time_get(self, clock: int, _precision: int, out: int) -> int:
        if clock == CLOCK_REALTIME:
            now = time.time_ns()
        elif clock == CLOCK_MONOTONIC:
            now = time.monotonic_ns()
        elif clock == CLOCK_PROCESS_CPUTIME:
            now = time.process_time_ns()
        elif clock == CLOCK_THREAD_CPUTIME:
            now = time.thread_time_ns()
        else:
            raise WasiError(Errno.EINVAL)
        self.mem.set_u64(out, now)
        return 0

    def random_get(self, buf: int, length: int) -> int:
        self.mem.check(buf, length)  # before generating: a wild length must cost nothing
        # In steps: the host never holds more than one step of random bytes.
        for start in range(buf, buf + length, _RANDOM_STEP):
            self.mem.write(start, os.urandom(min(_RANDOM_STEP, buf + length - start)))
        return 0

    # -- descriptors -------------------------------------------------------------
    def fd_close(self, fd: int) -> int:
        obj = self.fds.lookup(fd)
        if obj is None:
            # closefrom() probes every number up to 1,024 (ssh -V: 1,021 calls): no exception each.
            return Errno.EBADF
        if fd in self.proc.preopen_fds:
            # closefrom(3) in OpenSSH would otherwise cut the guest off its own files.
            del obj
            return 0
        self.fds.close(fd)
        return 0

    def fd_fdstat_get(self, fd: int, out: int) -> int:
        obj = self.fds.get(fd)
        self.mem.pack(
            _FDSTAT, out, obj.filetype, obj.fdflags, obj.rights_base, obj.rights_inheriting
        )
        return 0

    def fd_fdstat_set_flags(self, fd: int, flags: int) -> int:
        obj = self.fds.get(fd)
        flags &= 0xFFFF
        if flags & ~0x1F:
            raise WasiError(Errno.EINVAL)
        obj.set_fdflags(flags)
        if self.proc.fast is not None:
            self.proc.fast.forget_object(obj)  # C keeps its own copy of O_NONBLOCK
        return 0

    def fd_fdstat_set_rights(self, fd: int, base: int, inheriting: int) -> int:
        obj = self.fds.get(fd)
        if base & ~obj.rights_base or inheriting & ~obj.rights_inheriting:
            raise WasiError(Errno.ENOTCAPABLE)
        return 0

    def fd_filestat_get(self, fd: int, out: int) -> int:
        put_filestat(self.mem, out, self.fds.get(fd).filestat())
        return 0

    def fd_filestat_set_size(self, fd: int, size: int) -> int:
        self.fds.get(fd).set_size(size)
        return 0

    def fd_filestat_set_times(self, fd: int, atim: int, mtim: int, flags: int) -> int:
        from .preview1_fs import decode_times

        self.fds.get(fd).set_times(*decode_times(atim, mtim, flags))
        return 0

    def fd_advise(self, fd: int, offset: int, length: int, advice: int) -> int:
        if advice > 5:
            raise WasiError(Errno.EINVAL)
        self.fds.get(fd).advise(offset, length, advice)
        return 0

    def fd_allocate(self, fd: int, offset: int, length: int) -> int:
        self.fds.get(fd).allocate(offset, length)
        return 0

    def fd_read(self, fd: int, iovs: int, iovs_len: int, out: int) -> int:
        obj = self.fds.get(fd)
        self.mem.check(out, 4)
        n = obj.read(self.mem.iovecs(iovs, iovs_len))
        self.mem.set_u32(out, n)
        return 0

    def fd_write(self, fd: int, iovs: int, iovs_len: int, out: int) -> int:
        obj = self.fds.get(fd)
        self.mem.check(out, 4)
        n = obj.write(self.mem.iovecs(iovs, iovs_len))
        self.mem.set_u32(out, n)
        return 0

    def fd_pread(self, fd: int, iovs: int, iovs_len: int, offset: int, out: int) -> int:
        obj = self.fds.get(fd)
        self.mem.check(out, 4)
        self.mem.set_u32(out, obj.pread(self.mem.iovecs(iovs, iovs_len), offset))
        return 0

    def fd_pwrite(self, fd: int, iovs: int, iovs_len: int, offset: int, out: int) -> int:
        obj = self.fds.get(fd)
        self.mem.check(out, 4)
        self.mem.set_u32(out, obj.pwrite(self.mem.iovecs(iovs, iovs_len), offset))
        return 0

    def fd_seek(self, fd: int, offset: int, whence: int, out: int) -> int:
        obj = self.fds.get(fd)
        self.mem.check(out, 8)
        if whence > 2:
            raise WasiError(Errno.EINVAL)
        self.mem.set_u64(out, obj.seek(offset, whence))
        return 0

    def fd_tell(self, fd: int, out: int) -> int:
        obj = self.fds.get(fd)
        self.mem.check(out, 8)
        self.mem.set_u64(out, obj.seek(0, 1))
        return 0

    def fd_sync(self, fd: int) -> int:
        self.fds.get(fd).sync()
        return 0

    def fd_renumber(self, src: int, dst: int) -> int:
        self.fds.renumber(src, dst)
        self.proc.preopen_fds.discard(src)
        return 0

    # -- poll / process ------------------------------------------------------------
    def poll_oneoff(self, subs: int, events: int, nsubs: int, nevents_out: int) -> int:
        return poll_oneoff(self.proc, subs, events, nsubs, nevents_out)

    def proc_exit(self, code: int) -> int:
        raise GuestExit(code)

    def proc_raise(self, sig: int) -> int:
        raise WasiError(Errno.ENOSYS, "proc_raise")

    def sched_yield(self) -> int:
        os.sched_yield()
        return 0

    # -- preview1 sockets ------------------------------------------------------------
    def sock_accept(self, fd: int, flags: int, out: int) -> int:
        if flags & ~4:
            raise WasiError(Errno.EINVAL)
        self.mem.check(out, 4)
        sock = self.proc.sockets.get(fd)
        new = sock.accept()
        if flags & 4:
            new.nonblocking = True
        self.mem.set_u32(out, self.proc.sockets.install(new))
        return 0

    def sock_recv(
        self, fd: int, iovs: int, iovs_len: int, flags: int, out: int, oflags_out: int
    ) -> int:
        if flags & ~3:
            raise WasiError(Errno.ENOTSUP)
        sock = self.proc.sockets.get(fd)
        self.mem.check(out, 4)
        self.mem.check(oflags_out, 2)
        n, truncated = sock.recv_into(
            self.mem.iovecs(iovs, iovs_len), peek=bool(flags & 1), waitall=bool(flags & 2)
        )
        self.mem.set_u32(out, n)
        self.mem.set_u16(oflags_out, 1 if truncated else 0)
        return 0

    def sock_send(self, fd: int, iovs: int, iovs_len: int, flags: int, out: int) -> int:
        if flags:
            raise WasiError(Errno.ENOTSUP)
        sock = self.proc.sockets.get(fd)
        self.mem.check(out, 4)
        self.mem.set_u32(out, sock.write(self.mem.iovecs(iovs, iovs_len)))
        return 0

    def sock_shutdown(self, fd: int, how: int) -> int:
        sock = self.proc.sockets.get(fd)
        sock.shutdown(how)
        return 0


__all__ = ["MODULE", "Filetype", "GuestExit", "Preview1"]
