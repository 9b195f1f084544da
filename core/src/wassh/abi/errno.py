"""WASI errno numbers and the one place where host errors become them."""

from __future__ import annotations

import collections
import enum
import errno as _host_errno
import logging
import socket
import threading
import traceback

log = logging.getLogger("wassh.errno")


class Errno(enum.IntEnum):
    """WASI preview1 errno values (what wasi-libc also uses for C ``errno``)."""

    SUCCESS = 0
    E2BIG = 1
    EACCES = 2
    EADDRINUSE = 3
    EADDRNOTAVAIL = 4
    EAFNOSUPPORT = 5
    EAGAIN = 6
    EALREADY = 7
    EBADF = 8
    EBADMSG = 9
    EBUSY = 10
    ECANCELED = 11
    ECHILD = 12
    ECONNABORTED = 13
    ECONNREFUSED = 14
    ECONNRESET = 15
    EDEADLK = 16
    EDESTADDRREQ = 17
    EDOM = 18
    EDQUOT = 19
    EEXIST = 20
    EFAULT = 21
    EFBIG = 22
    EHOSTUNREACH = 23
    EIDRM = 24
    EILSEQ = 25
    EINPROGRESS = 26
    EINTR = 27
    EINVAL = 28
    EIO = 29
    EISCONN = 30
    EISDIR = 31
    ELOOP = 32
    EMFILE = 33
    EMLINK = 34
    EMSGSIZE = 35
    EMULTIHOP = 36
    ENAMETOOLONG = 37
    ENETDOWN = 38
    ENETRESET = 39
    ENETUNREACH = 40
    ENFILE = 41
    ENOBUFS = 42
    ENODEV = 43
    ENOENT = 44
    ENOEXEC = 45
    ENOLCK = 46
    ENOLINK = 47
    ENOMEM = 48
    ENOMSG = 49
    ENOPROTOOPT = 50
    ENOSPC = 51
    ENOSYS = 52
    ENOTCONN = 53
    ENOTDIR = 54
    ENOTEMPTY = 55
    ENOTRECOVERABLE = 56
    ENOTSOCK = 57
    ENOTSUP = 58
    ENOTTY = 59
    ENXIO = 60
    EOVERFLOW = 61
    EOWNERDEAD = 62
    EPERM = 63
    EPIPE = 64
    EPROTO = 65
    EPROTONOSUPPORT = 66
    EPROTOTYPE = 67
    ERANGE = 68
    EROFS = 69
    ESPIPE = 70
    ESRCH = 71
    ESTALE = 72
    ETIMEDOUT = 73
    ETXTBSY = 74
    EXDEV = 75
    ENOTCAPABLE = 76


class WasiError(Exception):
    """Raised by host code to answer a syscall with a specific WASI errno."""

    def __init__(self, code: Errno, message: str = "") -> None:
        super().__init__(message or code.name)
        self.code = code


# Host errno numbers map to WASI ones by name: Linux ECONNREFUSED 111 is WASI 14.
_BY_HOST_NUMBER: dict[int, Errno] = {}
for _num, _name in _host_errno.errorcode.items():
    if _name in Errno.__members__:
        _BY_HOST_NUMBER[_num] = Errno[_name]
_BY_HOST_NUMBER[_host_errno.EWOULDBLOCK] = Errno.EAGAIN
_BY_HOST_NUMBER[_host_errno.EOPNOTSUPP] = Errno.ENOTSUP


class UnexpectedErrors:
    """Host errors that no errno was chosen for. Each one is a host bug.

    They are counted (and the last few kept as text, not as live tracebacks that
    would pin guest frames) so a test or a fuzzer can assert that none happened.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0
        self.recent: collections.deque[str] = collections.deque(maxlen=8)

    def record(self, exc: BaseException) -> None:
        text = "".join(traceback.format_exception(exc))
        with self._lock:
            self.count += 1
            self.recent.append(text)


UNEXPECTED = UnexpectedErrors()


def to_errno(exc: BaseException) -> Errno:
    """Translate any host-side exception into the errno the guest sees."""
    if isinstance(exc, WasiError):
        return exc.code
    if isinstance(exc, socket.gaierror):
        # The name does not resolve: the original maps NAME_NOT_RESOLVED this way.
        return Errno.EHOSTUNREACH
    if isinstance(exc, TimeoutError) and exc.errno is None:
        return Errno.ETIMEDOUT
    if isinstance(exc, OSError) and exc.errno is not None:
        mapped = _BY_HOST_NUMBER.get(exc.errno)
        if mapped is not None:
            return mapped
        # The OS refused with an errno WASI has no name for (ENOMEDIUM, EUCLEAN...):
        # an answer from the kernel, not a host bug.
        log.debug("host errno %s has no WASI number, reported as EIO", exc.errno)
        return Errno.EIO
    try:
        import trio
    except ImportError:  # pragma: no cover - trio is a hard dependency
        trio = None  # type: ignore[assignment]
    if trio is not None:
        if isinstance(exc, trio.ClosedResourceError):
            return Errno.EBADF
        if isinstance(exc, trio.BrokenResourceError):
            return Errno.ECONNRESET
        if isinstance(exc, trio.TooSlowError):
            return Errno.ETIMEDOUT
    if isinstance(exc, MemoryError):
        return Errno.ENOMEM
    if isinstance(exc, EOFError):  # an interactive read met end of input
        return Errno.EIO
    UNEXPECTED.record(exc)
    log.error("unexpected host error, reported as ENOTRECOVERABLE", exc_info=exc)
    return Errno.ENOTRECOVERABLE
