"""Standard streams: the host's own descriptors, in-memory bytes, or callbacks."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable

from ..abi.errno import Errno, WasiError
from .files import filetype_of_mode
from .objects import ALWAYS_READY, Filestat, OpenObject
from .waiter import POLLERR, POLLHUP, POLLIN, POLLOUT, Waiter
from .wasi_defs import STDIO_RIGHTS, Filetype


def _filetype_of(fd: int) -> int:
    try:
        return filetype_of_mode(os.fstat(fd).st_mode)
    except OSError:
        return Filetype.UNKNOWN


def _access_of(fd: int) -> int:
    """``O_RDONLY``, ``O_WRONLY`` or ``O_RDWR``: how the host descriptor was opened."""
    try:
        return fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
    except OSError:
        return os.O_RDWR  # let the OS answer each call


class HostStream(OpenObject):
    """A host descriptor (a terminal, pipe or file) passed through as a stream.

    The host descriptor keeps its blocking mode (it may be the user's terminal);
    blocking is done with poll(2) on the guest thread so cancellation still works.
    Its access mode is the host's: reading a write-only end (stdout on a pipe)
    is EBADF as on Linux, where waiting for it to become readable would be forever.
    """

    rights_base = STDIO_RIGHTS
    rights_inheriting = 0

    def __init__(self, fd: int, waiter: Waiter, *, owned: bool = False) -> None:
        super().__init__()
        self.fd = fd
        self.waiter = waiter
        self.owned = owned
        self.filetype = _filetype_of(fd)
        access = _access_of(fd)
        self.readable = access != os.O_WRONLY
        self.writable = access != os.O_RDONLY

    def read(self, bufs: list[memoryview]) -> int:
        if not self.readable:
            raise WasiError(Errno.EBADF, "opened write-only")
        if not bufs:
            return 0
        if self.filetype != Filetype.REGULAR_FILE:
            if self.nonblocking:
                if not self.waiter.wait({self.fd: POLLIN}, 0)[0]:
                    raise WasiError(Errno.EAGAIN)
            else:
                while not self.waiter.wait({self.fd: POLLIN}, None)[0]:
                    pass
        return os.readv(self.fd, bufs)

    def write(self, bufs: list[memoryview]) -> int:
        if not self.writable:
            raise WasiError(Errno.EBADF, "opened read-only")
        total = 0
        for buf in bufs:
            data = buf
            while data:
                try:
                    n = os.write(self.fd, data)
                except BlockingIOError:
                    # Only non-blocking host descriptors (pipes the guest made) get here.
                    if total:
                        return total
                    if self.nonblocking:
                        raise WasiError(Errno.EAGAIN) from None
                    self.waiter.wait_one(self.fd, POLLOUT)
                    continue
                except BrokenPipeError as exc:
                    if total:
                        return total
                    raise WasiError(Errno.EPIPE) from exc
                total += n
                data = data[n:]
        return total

    def poll_handle(self, write: bool) -> tuple[int, int]:
        if self.filetype == Filetype.REGULAR_FILE:
            return ALWAYS_READY
        return (self.fd, POLLOUT if write else POLLIN)

    def poll_event(self, write: bool, revents: int) -> tuple[int, int, int] | None:
        if write and revents & (POLLERR | POLLHUP):
            return Errno.EPIPE, 0, 0  # nobody reads any more: the guest sees POLLHUP
        return 0, 0, 1 if revents & POLLHUP else 0

    def filestat(self) -> Filestat:
        return Filestat(filetype=self.filetype)

    def close(self) -> None:
        if self.owned:
            os.close(self.fd)


class BytesInput(OpenObject):
    """Standard input served from bytes given by the embedder; EOF afterwards."""

    filetype = Filetype.CHARACTER_DEVICE
    rights_base = STDIO_RIGHTS
    rights_inheriting = 0

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._data = memoryview(bytes(data))
        self._pos = 0

    def read(self, bufs: list[memoryview]) -> int:
        total = 0
        for buf in bufs:
            chunk = self._data[self._pos : self._pos + len(buf)]
            buf[: len(chunk)] = chunk
            self._pos += len(chunk)
            total += len(chunk)
            if len(chunk) < len(buf):
                break
        return total


class CallbackOutput(OpenObject):
    """Standard output or error handed to a Python callable, chunk by chunk."""

    filetype = Filetype.CHARACTER_DEVICE
    rights_base = STDIO_RIGHTS
    rights_inheriting = 0

    def __init__(self, sink: Callable[[bytes], object]) -> None:
        super().__init__()
        self._sink = sink

    def write(self, bufs: list[memoryview]) -> int:
        data = b"".join(bufs)
        if data:
            self._sink(data)
        return len(data)


class DevNull(OpenObject):
    """/dev/null: reads hit EOF, writes vanish, always ready."""

    filetype = Filetype.CHARACTER_DEVICE

    def read(self, bufs: list[memoryview]) -> int:
        return 0

    def write(self, bufs: list[memoryview]) -> int:
        return sum(len(b) for b in bufs)
