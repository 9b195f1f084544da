"""wasi_snapshot_preview1 path and directory calls."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from ..host.files import Directory
from .errno import Errno, WasiError
from .preview1 import MODULE

if TYPE_CHECKING:
    from ..runtime import Process
    from .hostcall import HostCallTable

_PRESTAT = struct.Struct("<BxxxI")


def decode_times(atim: int, mtim: int, flags: int) -> tuple[int | None, int | None]:
    """fstflags -> (atime ns or None to keep, mtime ns or None); NOW uses the clock."""
    import time

    if flags & ~0xF or (flags & 1 and flags & 2) or (flags & 4 and flags & 8):
        raise WasiError(Errno.EINVAL)
    now = time.time_ns()
    a = atim if flags & 1 else now if flags & 2 else None
    m = mtim if flags & 4 else now if flags & 8 else None
    return a, m


class Preview1Fs:
    def __init__(self, proc: Process) -> None:
        self.proc = proc

    def register(self, table: HostCallTable) -> None:
        d = table.define
        d(MODULE, "fd_prestat_get", "ii", self.fd_prestat_get)
        d(MODULE, "fd_prestat_dir_name", "iii", self.fd_prestat_dir_name)

    def _preopen(self, fd: int) -> Directory:
        obj = self.proc.fds.get(fd)
        if not isinstance(obj, Directory) or obj.guest_path is None:
            raise WasiError(Errno.EBADF)
        return obj

    def fd_prestat_get(self, fd: int, out: int) -> int:
        d = self._preopen(fd)
        self.proc.memory.pack(_PRESTAT, out, 0, len(d.guest_path.encode()))  # type: ignore[union-attr]
        return 0

    def fd_prestat_dir_name(self, fd: int, buf: int, length: int) -> int:
        name = self._preopen(fd).guest_path.encode()  # type: ignore[union-attr]
        if length < len(name):
            raise WasiError(Errno.ENAMETOOLONG)
        self.proc.memory.write(buf, name)
        return 0
