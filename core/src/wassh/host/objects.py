"""The base of everything a descriptor can refer to.

Like browser_wasi_shim's ``Fd``: every operation answers a sensible errno by
default and subclasses override what they support. Objects see plain values
(memoryviews into guest buffers at most), never guest pointers.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..abi.errno import Errno, WasiError
from .wasi_defs import ALL_RIGHTS, Filetype


@dataclass(slots=True)
class Filestat:
    dev: int = 0
    ino: int = 0
    filetype: int = Filetype.UNKNOWN
    nlink: int = 0
    size: int = 0
    atim: int = 0
    mtim: int = 0
    ctim: int = 0


ALWAYS_READY = (-1, 0)  # a wait handle meaning "ready without waiting"


class OpenObject:
    """An open file description shared by every fd that refers to it."""

    filetype: int = Filetype.UNKNOWN
    rights_base: int = ALL_RIGHTS
    rights_inheriting: int = ALL_RIGHTS

    def __init__(self) -> None:
        self.refs = 0
        self.nonblocking = False
        self.append = False

    # -- flags ---------------------------------------------------------------
    @property
    def fdflags(self) -> int:
        return (4 if self.nonblocking else 0) | (1 if self.append else 0)

    def set_fdflags(self, flags: int) -> None:
        self.nonblocking = bool(flags & 4)

    # -- data ----------------------------------------------------------------
    def read(self, bufs: list[memoryview]) -> int:
        raise WasiError(Errno.EBADF, "not readable")

    def write(self, bufs: list[memoryview]) -> int:
        raise WasiError(Errno.EBADF, "not writable")

    def pread(self, bufs: list[memoryview], offset: int) -> int:
        raise WasiError(Errno.ESPIPE)

    def pwrite(self, bufs: list[memoryview], offset: int) -> int:
        raise WasiError(Errno.ESPIPE)

    def seek(self, offset: int, whence: int) -> int:
        raise WasiError(Errno.ESPIPE)

    def sync(self) -> None:
        raise WasiError(Errno.EINVAL)

    def filestat(self) -> Filestat:
        return Filestat(filetype=self.filetype)

    def set_size(self, size: int) -> None:
        raise WasiError(Errno.EINVAL)

    def set_times(self, atim: int | None, mtim: int | None) -> None:
        raise WasiError(Errno.EINVAL)

    def advise(self, offset: int, length: int, advice: int) -> None:
        return None

    def allocate(self, offset: int, length: int) -> None:
        raise WasiError(Errno.EINVAL)

    # -- poll ----------------------------------------------------------------
    def poll_handle(self, write: bool) -> tuple[int, int]:
        """The OS handle ``(fd, events)`` whose readiness means this object's readiness.

        ``ALWAYS_READY`` means the object never blocks (regular files, /dev/null).
        """
        return ALWAYS_READY

    def poll_event(self, write: bool, revents: int) -> tuple[int, int, int] | None:
        """Turn OS readiness into a WASI event: ``(error, nbytes, flags)``, or None
        when the handle woke but the object is not ready yet (poll waits on)."""
        return 0, 0, 0

    def close(self) -> None:
        return None
