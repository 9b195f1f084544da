"""wasi_snapshot_preview1 path and directory calls.

Decoding only: every path is resolved by the directory object it is relative
to (``host.files``), which keeps lookups inside that directory.
"""

from __future__ import annotations

import itertools
import os
import struct
import sys
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..host.files import (
    PATH_MAX,
    Directory,
    DirectoryBase,
    Dirent,
    VirtualDevDir,
    virtual_device,
)
from ..host.objects import Filestat, OpenObject
from ..host.wasi_defs import Rights
from .errno import Errno, WasiError
from .preview1 import MODULE, put_filestat

if TYPE_CHECKING:
    from ..runtime import Process
    from .hostcall import HostCallTable
    from .memory import GuestMemory

_PRESTAT = struct.Struct("<BxxxI")
_DIRENT = struct.Struct("<QQIBxxx")

LOOKUP_SYMLINK_FOLLOW = 1
_READ_RIGHTS = Rights.FD_READ | Rights.FD_READDIR
_WRITE_RIGHTS = (
    Rights.FD_DATASYNC | Rights.FD_WRITE | Rights.FD_ALLOCATE | Rights.FD_FILESTAT_SET_SIZE
)


def decode_times(atim: int, mtim: int, flags: int) -> tuple[int | None, int | None]:
    """fstflags -> (atime ns or None to keep, mtime ns or None); NOW uses the clock."""
    if flags & ~0xF or (flags & 1 and flags & 2) or (flags & 4 and flags & 8):
        raise WasiError(Errno.EINVAL)
    now = time.time_ns()
    a = atim if flags & 1 else now if flags & 2 else None
    m = mtim if flags & 4 else now if flags & 8 else None
    return a, m


def encode_dirents(entries: Iterable[Dirent], cookie: int, size: int) -> bytes:
    """Entries from index ``cookie`` on, the last one cut to fill ``size`` exactly.

    ``entries`` may be lazy: no more of it is read than fills ``size``.
    """
    out = bytearray()
    if cookie > sys.maxsize:  # past any directory's end (and past what islice takes)
        return b""
    for index, (name, ino, ftype) in enumerate(itertools.islice(entries, cookie, None), cookie):
        if len(out) >= size:
            break
        out += _DIRENT.pack(index + 1, ino, len(name), ftype) + name
    return bytes(out[:size])


class Preview1Fs:
    def __init__(self, proc: Process) -> None:
        self.proc = proc

    @property
    def mem(self) -> GuestMemory:
        return self.proc.memory

    def register(self, table: HostCallTable) -> None:
        d = table.define
        m = MODULE
        d(m, "fd_prestat_get", "ii", self.fd_prestat_get)
        d(m, "fd_prestat_dir_name", "iii", self.fd_prestat_dir_name)
        d(m, "fd_readdir", "iiiIi", self.fd_readdir)
        d(m, "path_create_directory", "iii", self.path_create_directory)
        d(m, "path_filestat_get", "iiiii", self.path_filestat_get)
        d(m, "path_filestat_set_times", "iiiiIIi", self.path_filestat_set_times)
        d(m, "path_link", "iiiiiii", self.path_link)
        d(m, "path_open", "iiiiiIIii", self.path_open)
        d(m, "path_readlink", "iiiiii", self.path_readlink)
        d(m, "path_remove_directory", "iii", self.path_remove_directory)
        d(m, "path_rename", "iiiiii", self.path_rename)
        d(m, "path_symlink", "iiiii", self.path_symlink)
        d(m, "path_unlink_file", "iii", self.path_unlink_file)

    # -- helpers -------------------------------------------------------------------------
    def _preopen(self, fd: int) -> DirectoryBase:
        obj = self.proc.fds.get(fd)
        if not isinstance(obj, DirectoryBase) or obj.guest_path is None:
            raise WasiError(Errno.EBADF)
        return obj

    def _dir(self, fd: int) -> DirectoryBase:
        obj = self.proc.fds.get(fd)
        if not isinstance(obj, DirectoryBase):
            raise WasiError(Errno.ENOTDIR)
        return obj

    def _host_dir(self, fd: int) -> Directory:
        """A real directory for calls that change the tree; the virtual /dev is read-only."""
        obj = self._dir(fd)
        if not isinstance(obj, Directory):
            raise WasiError(Errno.EPERM, "read-only virtual directory")
        return obj

    def _path(self, ptr: int, length: int) -> str:
        if length >= PATH_MAX:  # before reading: a long path costs the host nothing
            self.mem.check(ptr, length)
            raise WasiError(Errno.ENAMETOOLONG)
        return os.fsdecode(self.mem.read(ptr, length))

    def _put_filestat(self, out: int, st: Filestat) -> None:
        put_filestat(self.mem, out, st)

    # -- preopens ------------------------------------------------------------------------
    def fd_prestat_get(self, fd: int, out: int) -> int:
        if self.proc.fds.lookup(fd) is None:
            return Errno.EBADF  # wasi-libc and closefrom() probe past the last preopen
        d = self._preopen(fd)
        self.mem.pack(_PRESTAT, out, 0, len(os.fsencode(d.guest_path or "")))
        return 0

    def fd_prestat_dir_name(self, fd: int, buf: int, length: int) -> int:
        name = os.fsencode(self._preopen(fd).guest_path or "")
        if length < len(name):
            raise WasiError(Errno.ENAMETOOLONG)
        self.mem.write(buf, name)
        return 0

    # -- directories ---------------------------------------------------------------------
    def fd_readdir(self, fd: int, buf: int, length: int, cookie: int, used_out: int) -> int:
        d = self._dir(fd)
        self.mem.check(buf, length)
        self.mem.check(used_out, 4)
        data = encode_dirents(d.readdir(cookie), cookie, length)
        self.mem.write(buf, data)
        self.mem.set_u32(used_out, len(data))
        return 0

    def path_create_directory(self, fd: int, path: int, path_len: int) -> int:
        self._host_dir(fd).mkdir(self._path(path, path_len))
        return 0

    def path_remove_directory(self, fd: int, path: int, path_len: int) -> int:
        self._host_dir(fd).rmdir(self._path(path, path_len))
        return 0

    def path_unlink_file(self, fd: int, path: int, path_len: int) -> int:
        self._host_dir(fd).unlink(self._path(path, path_len))
        return 0

    # -- metadata ------------------------------------------------------------------------
    def path_filestat_get(self, fd: int, flags: int, path: int, path_len: int, out: int) -> int:
        d = self._dir(fd)
        p = self._path(path, path_len)
        self.mem.check(out, 64)  # a filestat
        follow = bool(flags & LOOKUP_SYMLINK_FOLLOW)
        self._put_filestat(out, d.stat(p, follow))
        return 0

    def path_filestat_set_times(
        self, fd: int, flags: int, path: int, path_len: int, atim: int, mtim: int, fst: int
    ) -> int:
        d = self._host_dir(fd)
        p = self._path(path, path_len)
        a, m = decode_times(atim, mtim, fst)
        d.set_times_at(p, bool(flags & LOOKUP_SYMLINK_FOLLOW), a, m)
        return 0

    # -- links ---------------------------------------------------------------------------
    def path_link(
        self,
        old_fd: int,
        old_flags: int,
        old_path: int,
        old_len: int,
        new_fd: int,
        new_path: int,
        new_len: int,
    ) -> int:
        src = self._host_dir(old_fd)
        dst = self._host_dir(new_fd)
        src.link(
            self._path(old_path, old_len),
            bool(old_flags & LOOKUP_SYMLINK_FOLLOW),
            dst,
            self._path(new_path, new_len),
        )
        return 0

    def path_rename(
        self, fd: int, old_path: int, old_len: int, new_fd: int, new_path: int, new_len: int
    ) -> int:
        src = self._host_dir(fd)
        dst = self._host_dir(new_fd)
        src.rename(self._path(old_path, old_len), dst, self._path(new_path, new_len))
        return 0

    def path_symlink(
        self, old_path: int, old_len: int, fd: int, new_path: int, new_len: int
    ) -> int:
        target = self._path(old_path, old_len)
        self._host_dir(fd).symlink(target, self._path(new_path, new_len))
        return 0

    def path_readlink(
        self, fd: int, path: int, path_len: int, buf: int, buf_len: int, used_out: int
    ) -> int:
        d = self._host_dir(fd)
        p = self._path(path, path_len)
        self.mem.check(buf, buf_len)
        self.mem.check(used_out, 4)
        data = d.readlink(p)[:buf_len]
        self.mem.write(buf, data)
        self.mem.set_u32(used_out, len(data))
        return 0

    # -- open ----------------------------------------------------------------------------
    def path_open(
        self,
        fd: int,
        dirflags: int,
        path: int,
        path_len: int,
        oflags: int,
        rights_base: int,
        rights_inheriting: int,
        fdflags: int,
        out: int,
    ) -> int:
        d = self._dir(fd)
        p = self._path(path, path_len)
        self.mem.check(out, 4)
        if oflags & ~0xF or fdflags & ~0x1F:
            raise WasiError(Errno.EINVAL)
        obj: OpenObject | None = None
        if d.guest_path is not None:
            obj = virtual_device(d.guest_path.rstrip("/") + "/" + p)
        if obj is None:
            if isinstance(d, VirtualDevDir):
                obj = d.open_at(p, oflags, self.proc.waiter)
            elif isinstance(d, Directory):
                obj = d.open_at(
                    p,
                    follow=bool(dirflags & LOOKUP_SYMLINK_FOLLOW),
                    oflags=oflags,
                    read=bool(rights_base & _READ_RIGHTS),
                    write=bool(rights_base & _WRITE_RIGHTS),
                    fdflags=fdflags,
                )
            else:
                raise WasiError(Errno.ENOTSUP)
        try:
            new_fd = self.proc.fds.add(obj)
        except BaseException:
            obj.close()
            raise
        self.mem.set_u32(out, new_fd)
        return 0
