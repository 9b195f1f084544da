"""The compiled fast path: which descriptors ``wassh._fastpath`` may serve in C.

``wassh._fastpath`` (built from ``_fastpath.c`` when a compiler is at hand)
registers every host import as a C callback. It serves the hot calls itself for
the descriptors this module attaches, and calls the Python implementation for
everything else. The Python host stays the reference: this module tells the C
side what it may do and takes back what it must know (byte counts, a reset, a
wake-up), so both paths answer every call alike. docs/fastpath.md has the
contract; ``WASSH_PURE_PYTHON=1`` turns the fast path off.

A descriptor is attached lazily, the first time C meets it (``offer``), and
detached whenever what made it eligible may have changed: the descriptor
table changed at that number, or the object shut down, was reset or changed
its flags (``forget_fd``, ``forget_object``). A descriptor the host declined is
not offered again until something connects (``new_epoch``).
"""

from __future__ import annotations

import ctypes
import os
import socket
from typing import TYPE_CHECKING, Any, Final

from . import os_socket
from .abi.errno import Errno, WasiError, to_errno
from .abi.wasmtime_private import RAW_VALUE_SLOTS, trap_new
from .host.files import RegularFile
from .host.objects import OpenObject
from .host.pipe import PipeEnd
from .host.sockets import CONNECTED, LISTENING, Socket
from .host.stdio import HostStream
from .host.wasi_defs import Filetype
from .plugins import STREAM

if TYPE_CHECKING:
    from .abi.hostcall import Unwind
    from .runtime import Process

try:
    from . import _fastpath
except ImportError:  # built without a compiler: the pure-Python host serves everything
    _fastpath = None  # type: ignore[assignment]

ENV_DISABLE: Final = "WASSH_PURE_PYTHON"

# Which imports have a fast handler in C; every other import is a plain C
# trampoline into its Python implementation.
FAST_OPS: Final[dict[tuple[str, str], str]] = {
    ("wasi_snapshot_preview1", "fd_read"): "OP_FD_READ",
    ("wasi_snapshot_preview1", "fd_write"): "OP_FD_WRITE",
    ("wasi_snapshot_preview1", "sock_recv"): "OP_SOCK_RECV",
    ("wasi_snapshot_preview1", "sock_send"): "OP_SOCK_SEND",
    ("wasi_snapshot_preview1", "poll_oneoff"): "OP_POLL",
    ("wassh", "sock_recvfrom"): "OP_RECVFROM",
    ("wassh", "sock_sendto"): "OP_SENDTO",
    ("wassh_experimental", "sock_recvfrom"): "OP_RECVFROM",
    ("wassh_experimental", "sock_sendto"): "OP_SENDTO",
    ("wasi_snapshot_preview1", "sock_accept"): "OP_ACCEPT_P1",
    ("wassh", "sock_accept"): "OP_ACCEPT",
    ("wassh_experimental", "sock_accept"): "OP_ACCEPT",
}
# What C's ``fail`` says failed.
_FAILED_SEND, _FAILED_ACCEPT = 1, 2


def built() -> bool:
    """Whether the extension was compiled and imports."""
    return _fastpath is not None


def enabled() -> bool:
    """Whether new processes use the extension (built, and not turned off)."""
    return _fastpath is not None and os.environ.get(ENV_DISABLE, "") in ("", "0")


def op_number(module: str, name: str) -> int:
    """The C handler number for an import (0: none, a plain trampoline)."""
    assert _fastpath is not None
    op = FAST_OPS.get((module, name))
    return int(getattr(_fastpath, op)) if op is not None else int(_fastpath.OP_PLAIN)


class FastPath:
    """The C side of one process, and the host's answers to its questions."""

    def __init__(self, proc: Process, unwind: Unwind) -> None:
        assert _fastpath is not None
        self._proc = proc
        self._fds = proc.fds.table
        address = ctypes.cast(trap_new, ctypes.c_void_p).value or 0
        self.runtime = _fastpath.Runtime(
            trap_new=address,
            stride=RAW_VALUE_SLOTS * 4,
            wake_fd=proc.waiter.read_fd,
            query_size=self._query_size,
            fail=self._fail,
            on_wake=self._on_wake,
            offer=self._offer,
            adopt=self._adopt,
            unwind=unwind,
        )

    # -- what C asks ------------------------------------------------------------------
    def _query_size(self) -> int:
        mem = self._proc.memory
        return 0 if mem is None else mem.current_size()

    def _offer(self, fd: int) -> bool:
        """Attach ``fd`` if C may serve it as it stands now."""
        obj = self._fds.get(fd)
        if obj is None:
            return False
        spec = _describe(obj)
        if spec is None:
            return False
        kind, flags, osfd, family, address, port = spec
        self.runtime.attach(fd, kind, flags, osfd, family, address, port)
        return True

    def _adopt(self, fd: int, osfd: int, nonblocking: int) -> int:
        """C accepted ``osfd`` on listener ``fd``: the new socket's descriptor, or -errno.

        What ``Socket.accept`` does after the transport's (standard) accept hook.
        """
        listener = self._fds.get(fd)
        try:
            if type(listener) is not Socket or listener.state != LISTENING:
                raise WasiError(Errno.EINVAL, "accept on a socket that is not listening")
            conn = socket.socket(listener.family, socket.SOCK_STREAM, 0, fileno=osfd)
        except BaseException as exc:
            os.close(osfd)
            if isinstance(exc, Exception):
                return -int(to_errno(exc))
            raise
        conn.setblocking(False)
        try:
            new = listener.adopt(conn)
            if nonblocking:
                new.nonblocking = True
            new_fd = self._proc.sockets.install(new, listener=listener)
        except WasiError as exc:  # the descriptor table is full: install closed it
            return -int(exc.code)
        self._offer(new_fd)  # attached now: its first recv needs no question to Python
        return new_fd

    def _fail(self, fd: int, what: int, err: int) -> int:
        """An OS error C met on ``fd`` after starting the call: the WASI errno."""
        exc = OSError(err, os.strerror(err))
        obj = self._fds.get(fd)
        if (
            type(obj) is Socket
            and what < _FAILED_SEND
            and isinstance(exc, ConnectionResetError | ConnectionAbortedError)
        ):
            obj.reset = True  # reported once; reads see EOF from now on
            self.forget_object(obj)
        return int(to_errno(exc))

    def _on_wake(self) -> bool:
        """The wake pipe fired (or signals are queued) while C waited: drained here.
        Raises ``GuestTerminated`` once the guest is being stopped (C unwinds the
        guest with it); False when a queued signal has a guest handler to run (the
        call fails with EINTR)."""
        waiter = self._proc.waiter
        waiter.drain()
        return not waiter.interrupted()

    # -- what the host tells -------------------------------------------------------------
    def forget_fd(self, fd: int) -> None:
        """Descriptor ``fd`` changed: detach it, its byte counts back to its object."""
        sent, received = self.runtime.detach(fd)
        if sent or received:
            obj = self._fds.get(fd)
            if type(obj) is Socket:
                obj.bytes_sent += sent
                obj.bytes_received += received

    def forget_object(self, obj: OpenObject) -> None:
        """``obj`` changed in a way C must see: detach every descriptor naming it."""
        for fd, other in list(self._fds.items()):
            if other is obj:
                self.forget_fd(fd)

    def new_epoch(self) -> None:
        """Something became eligible (a socket connected): offer declined ones again."""
        self.runtime.new_epoch()

    def signals_queued(self, delta: int) -> None:
        self.runtime.add_signals(delta)

    def stats(self) -> dict[str, tuple[int, int]]:
        """Calls per fast operation (``OP_FD_READ``...): ``(all, served in C)``."""
        assert _fastpath is not None
        calls, fast = self.runtime.stats()
        numbers = {name: int(getattr(_fastpath, name)) for name in set(FAST_OPS.values())}
        return {name: (calls[op], fast[op]) for name, op in sorted(numbers.items())}


_Spec = tuple[int, int, int, int, bytes, int]


def _os_fd(sock: Socket) -> int | None:
    """The OS descriptor of the transport's socket, if it has a usable one."""
    conn: Any = sock.handle.state
    try:
        osfd = conn.fileno()
    except (AttributeError, OSError):
        return None
    return osfd if isinstance(osfd, int) and osfd >= 0 else None


def _listener(sock: Socket) -> _Spec | None:
    """A listening OS socket: attached for poll_oneoff, never for a transfer."""
    assert _fastpath is not None
    osfd = _os_fd(sock)
    if osfd is None:
        return None
    flags = _fastpath.F_NONBLOCK if sock.nonblocking else 0
    owner = sock.owner
    if owner is not None and os_socket.is_standard_hook(
        "wassh_sock_accept", owner.wassh_sock_accept
    ):
        flags |= _fastpath.F_ACCEPT  # C may accept itself: the hook is the standard one
    return _fastpath.K_LISTENER, flags, osfd, 0, b"", 0


def _describe(obj: OpenObject) -> _Spec | None:
    """How C may serve ``obj`` now: ``(kind, flags, osfd, wire family, address, port)``."""
    assert _fastpath is not None
    fp = _fastpath
    nonblock = fp.F_NONBLOCK if obj.nonblocking else 0
    cls = type(obj)
    if cls is Socket:
        assert isinstance(obj, Socket)
        if obj.rcvtimeo is not None or obj.sndtimeo is not None:
            return None  # C waits without a limit: SO_RCVTIMEO/SO_SNDTIMEO are Python's
        owner = obj.owner
        if obj.state == LISTENING and owner is not None and owner.os_sockets:
            return _listener(obj)
        if (
            obj.state != CONNECTED
            or obj.kind != STREAM
            or obj.shut_rd
            or obj.shut_wr
            or obj.reset
            or owner is None
            or not owner.os_sockets
        ):
            return None
        wire = obj.peer_wire
        if wire is None:
            return None  # sock_recvfrom reports the peer: Python's, without one
        osfd = _os_fd(obj)
        if osfd is None:
            return None
        family, address, port = wire
        return fp.K_SOCKET, fp.F_READ | fp.F_WRITE | nonblock, osfd, family, address, port
    if cls is HostStream or cls is PipeEnd:
        assert isinstance(obj, HostStream)
        flags = nonblock
        flags |= fp.F_READ if obj.readable else 0
        flags |= fp.F_WRITE if obj.writable else 0
        if obj.filetype == Filetype.REGULAR_FILE:
            flags |= fp.F_REGULAR
        return fp.K_STREAM, flags, obj.fd, 0, b"", 0
    if cls is RegularFile:
        assert isinstance(obj, RegularFile)
        if obj.filetype != Filetype.REGULAR_FILE:
            return None
        return fp.K_FILE, fp.F_READ | fp.F_WRITE | nonblock, obj.fd, 0, b"", 0
    return None


__all__ = ["ENV_DISABLE", "FAST_OPS", "FastPath", "built", "enabled", "op_number"]
