"""Preopened directories, the files opened beneath them, and sandboxed path lookup.

Every path a guest names is resolved here, component by component, beneath the
directory descriptor it is relative to: each step is an ``openat`` with
``O_NOFOLLOW``, ``..`` pops a stack of directories opened so far (popping past
the starting directory is ``ENOTCAPABLE``), and symbolic links are read and
expanded by hand under the same rules. The kernel is never handed a path with
more than one component, so neither ``..`` nor a symlink can lead outside.

The CLI also preopens a virtual ``/dev`` (:func:`dev_preopen`) holding ``null``
and ``tty``, so that ``/dev/null`` works for guests even though wasi-libc only
ever opens paths relative to a preopen.
"""

from __future__ import annotations

import errno as _errno
import os
import posixpath
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..abi.errno import Errno, WasiError
from .objects import Filestat, OpenObject
from .wasi_defs import Filetype

if TYPE_CHECKING:
    from .waiter import Waiter

MAX_SYMLINKS = 40
PATH_MAX = 4096  # as Linux: a path of this many bytes or more is ENAMETOOLONG
# Resolution holds one host descriptor per directory it descends into (".." pops
# back to it), so nesting is bounded where the host's descriptors are.
MAX_DEPTH = 128
_O_PATH = getattr(os, "O_PATH", os.O_RDONLY)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)

# WASI oflags
OFLAG_CREAT = 1
OFLAG_DIRECTORY = 2
OFLAG_EXCL = 4
OFLAG_TRUNC = 8

# WASI fdflags
FDFLAG_APPEND = 1
FDFLAG_DSYNC = 2
FDFLAG_NONBLOCK = 4
FDFLAG_RSYNC = 8
FDFLAG_SYNC = 16

_ADVICE = {
    0: getattr(os, "POSIX_FADV_NORMAL", None),
    1: getattr(os, "POSIX_FADV_SEQUENTIAL", None),
    2: getattr(os, "POSIX_FADV_RANDOM", None),
    3: getattr(os, "POSIX_FADV_WILLNEED", None),
    4: getattr(os, "POSIX_FADV_DONTNEED", None),
    5: getattr(os, "POSIX_FADV_NOREUSE", None),
}


def filetype_of_mode(mode: int) -> int:
    """The WASI filetype for an ``st_mode``."""
    if stat.S_ISREG(mode):
        return Filetype.REGULAR_FILE
    if stat.S_ISDIR(mode):
        return Filetype.DIRECTORY
    if stat.S_ISCHR(mode):
        return Filetype.CHARACTER_DEVICE
    if stat.S_ISBLK(mode):
        return Filetype.BLOCK_DEVICE
    if stat.S_ISLNK(mode):
        return Filetype.SYMBOLIC_LINK
    if stat.S_ISSOCK(mode):
        return Filetype.SOCKET_STREAM
    return Filetype.UNKNOWN


def filestat_of(st: os.stat_result) -> Filestat:
    return Filestat(
        dev=st.st_dev,
        ino=st.st_ino,
        filetype=filetype_of_mode(st.st_mode),
        nlink=st.st_nlink,
        size=st.st_size,
        atim=st.st_atime_ns,
        mtim=st.st_mtime_ns,
        ctim=st.st_ctime_ns,
    )


def _utime_ns(atim: int | None, mtim: int | None, current: os.stat_result) -> tuple[int, int]:
    return (
        current.st_atime_ns if atim is None else atim,
        current.st_mtime_ns if mtim is None else mtim,
    )


def _check_offset(offset: int) -> None:
    """EINVAL for a negative offset, as pread(2) gives: Python's preadv goes through
    preadv2, which reads at the current position when the offset is -1."""
    if offset < 0:
        raise WasiError(Errno.EINVAL, "negative offset")


def _set_append(fd: int, on: bool) -> None:
    import fcntl

    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    flags = flags | os.O_APPEND if on else flags & ~os.O_APPEND
    fcntl.fcntl(fd, fcntl.F_SETFL, flags)


# -- regular files -----------------------------------------------------------------------


class RegularFile(OpenObject):
    """A host file (or other non-directory) opened beneath a preopen; never blocks."""

    filetype: int = Filetype.REGULAR_FILE

    def __init__(self, fd: int, *, append: bool = False, filetype: int | None = None) -> None:
        super().__init__()
        self.fd = fd
        self.append = append
        if filetype is None:
            filetype = filetype_of_mode(os.fstat(fd).st_mode)
        self.filetype = filetype

    def set_fdflags(self, flags: int) -> None:
        append = bool(flags & FDFLAG_APPEND)
        if append != self.append:
            _set_append(self.fd, append)
            self.append = append
        self.nonblocking = bool(flags & FDFLAG_NONBLOCK)

    def read(self, bufs: list[memoryview]) -> int:
        if not bufs:
            return 0
        return os.readv(self.fd, bufs)

    def write(self, bufs: list[memoryview]) -> int:
        if not bufs:
            return 0
        return os.writev(self.fd, bufs)

    def pread(self, bufs: list[memoryview], offset: int) -> int:
        _check_offset(offset)
        if not bufs:
            return 0
        return os.preadv(self.fd, bufs, offset)

    def pwrite(self, bufs: list[memoryview], offset: int) -> int:
        _check_offset(offset)
        if not bufs:
            return 0
        return os.pwritev(self.fd, bufs, offset)

    def seek(self, offset: int, whence: int) -> int:
        return os.lseek(self.fd, offset, whence)

    def sync(self) -> None:
        os.fsync(self.fd)

    def filestat(self) -> Filestat:
        return filestat_of(os.fstat(self.fd))

    def set_size(self, size: int) -> None:
        os.ftruncate(self.fd, size)

    def set_times(self, atim: int | None, mtim: int | None) -> None:
        os.utime(self.fd, ns=_utime_ns(atim, mtim, os.fstat(self.fd)))

    def advise(self, offset: int, length: int, advice: int) -> None:
        native = _ADVICE.get(advice)
        if native is not None and hasattr(os, "posix_fadvise"):
            os.posix_fadvise(self.fd, offset, length, native)

    def allocate(self, offset: int, length: int) -> None:
        if not hasattr(os, "posix_fallocate"):
            raise WasiError(Errno.ENOTSUP)
        os.posix_fallocate(self.fd, offset, length)

    def close(self) -> None:
        os.close(self.fd)


# -- directories -------------------------------------------------------------------------

Dirent = tuple[bytes, int, int]  # (name, inode, WASI filetype)


class DirectoryBase(OpenObject):
    """Anything that paths can be looked up under; ``guest_path`` is set for preopens."""

    filetype = Filetype.DIRECTORY
    guest_path: str | None = None

    def readdir(self, cookie: int) -> Iterable[Dirent]:
        """Every entry (``.`` and ``..`` first), read lazily; the caller skips to ``cookie``."""
        raise WasiError(Errno.ENOTDIR)

    def stat(self, path: str, follow: bool) -> Filestat:
        """``path_filestat_get`` beneath this directory."""
        raise WasiError(Errno.ENOTSUP)


@dataclass(slots=True)
class Resolved:
    """The directory holding a path's last component, and that component."""

    dirfd: int
    name: str


def _split(path: str) -> tuple[list[str], bool]:
    """Components of a relative path, and whether it ended in a slash."""
    if not path:
        raise WasiError(Errno.ENOENT)
    if "\0" in path:
        raise WasiError(Errno.EINVAL)
    if path.startswith("/"):
        raise WasiError(Errno.ENOTCAPABLE, "absolute path")
    trailing = path.endswith("/")
    return [c for c in path.split("/") if c and c != "."], trailing


class Directory(DirectoryBase):
    """A host directory: a preopen, or one opened beneath a preopen."""

    def __init__(self, dirfd: int, guest_path: str | None = None) -> None:
        super().__init__()
        self.dirfd = dirfd
        self.guest_path = guest_path

    # -- the directory itself ----------------------------------------------------------
    def filestat(self) -> Filestat:
        return filestat_of(os.fstat(self.dirfd))

    def set_times(self, atim: int | None, mtim: int | None) -> None:
        os.utime(self.dirfd, ns=_utime_ns(atim, mtim, os.fstat(self.dirfd)))

    def sync(self) -> None:
        os.fsync(self.dirfd)

    def readdir(self, cookie: int) -> Iterator[Dirent]:
        # Listed afresh on every call and skipped to the cookie, as wasmtime does:
        # nothing is kept between calls, so a guest with a thousand descriptors
        # on a huge directory makes the host hold one buffer's worth, not a
        # thousand listings.
        own = os.fstat(self.dirfd)
        try:
            parent_ino = os.stat("..", dir_fd=self.dirfd).st_ino
        except OSError:
            parent_ino = own.st_ino
        yield (b".", own.st_ino, Filetype.DIRECTORY)
        yield (b"..", parent_ino, Filetype.DIRECTORY)
        with os.scandir(self.dirfd) as it:
            for entry in it:
                try:
                    if entry.is_symlink():
                        ftype: int = Filetype.SYMBOLIC_LINK
                    elif entry.is_dir(follow_symlinks=False):
                        ftype = Filetype.DIRECTORY
                    elif entry.is_file(follow_symlinks=False):
                        ftype = Filetype.REGULAR_FILE
                    else:
                        ftype = filetype_of_mode(entry.stat(follow_symlinks=False).st_mode)
                    ino = entry.inode()
                except OSError:  # vanished meanwhile
                    continue
                yield (os.fsencode(entry.name), ino, ftype)

    def close(self) -> None:
        os.close(self.dirfd)

    # -- sandboxed lookup ----------------------------------------------------------------
    @contextmanager
    def resolve(self, path: str, follow: bool = False) -> Iterator[Resolved]:
        """Resolve ``path`` beneath this directory without ever leaving it.

        Yields the directory holding the last component (an fd valid inside the
        ``with``) and the component itself (``"."`` for the directory itself).
        With ``follow``, a symlink in last place is expanded too. A path ending in
        ``/`` names a directory: its last component is followed and keeps the
        slash, so the kernel checks that it is a directory.
        """
        parts, trailing = _split(path)
        if trailing:
            follow = True
        pending = list(reversed(parts))  # a stack: next component last
        stack = [self.dirfd]
        links = 0
        name = "."
        try:
            while pending:
                comp = pending.pop()
                if comp == "..":
                    if len(stack) == 1:
                        raise WasiError(Errno.ENOTCAPABLE, "path leaves its directory")
                    os.close(stack.pop())
                    continue
                last = not pending
                if last and not follow:
                    name = comp
                    break
                try:
                    fd = os.open(comp, _O_PATH | _O_NOFOLLOW | _O_CLOEXEC, dir_fd=stack[-1])
                except OSError as exc:
                    if last and exc.errno == _errno.ENOENT:
                        name = comp
                        break
                    if exc.errno != _errno.ELOOP:  # ELOOP: a symlink, without O_PATH
                        raise
                    fd = -1
                try:
                    mode = (
                        os.fstat(fd).st_mode
                        if fd >= 0
                        else os.stat(comp, dir_fd=stack[-1], follow_symlinks=False).st_mode
                    )
                except BaseException:
                    if fd >= 0:
                        os.close(fd)
                    raise
                if stat.S_ISLNK(mode):
                    if fd >= 0:
                        os.close(fd)
                    links += 1
                    if links > MAX_SYMLINKS:
                        raise WasiError(Errno.ELOOP)
                    target = os.readlink(comp, dir_fd=stack[-1])
                    if not target:
                        raise WasiError(Errno.ENOENT)
                    if target.startswith("/"):
                        raise WasiError(Errno.ENOTCAPABLE, "absolute symlink")
                    more = [c for c in target.split("/") if c and c != "."]
                    pending.extend(reversed(more))
                    if last and not more:
                        name = "."
                    continue
                if stat.S_ISDIR(mode) and not last:
                    if len(stack) > MAX_DEPTH:
                        if fd >= 0:
                            os.close(fd)
                        raise WasiError(Errno.ENAMETOOLONG, "directories nested too deep")
                    if fd < 0:
                        fd = os.open(
                            comp,
                            os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC,
                            dir_fd=stack[-1],
                        )
                    stack.append(fd)
                    continue
                if fd >= 0:
                    os.close(fd)
                if not last:
                    raise WasiError(Errno.ENOTDIR)
                name = comp
            if trailing and name != ".":
                name += "/"
            yield Resolved(stack[-1], name)
        finally:
            for fd in stack[1:]:
                os.close(fd)

    # -- path operations -----------------------------------------------------------------
    def open_at(
        self,
        path: str,
        *,
        follow: bool,
        oflags: int,
        read: bool,
        write: bool,
        fdflags: int,
    ) -> OpenObject:
        flags = _O_CLOEXEC | _O_NOFOLLOW
        if read and write:
            flags |= os.O_RDWR
        elif write:
            flags |= os.O_WRONLY
        else:
            flags |= os.O_RDONLY
        if oflags & OFLAG_CREAT:
            flags |= os.O_CREAT
        if oflags & OFLAG_DIRECTORY:
            flags |= _O_DIRECTORY
        if oflags & OFLAG_EXCL:
            flags |= os.O_EXCL
        if oflags & OFLAG_TRUNC:
            flags |= os.O_TRUNC
        if fdflags & FDFLAG_APPEND:
            flags |= os.O_APPEND
        if fdflags & FDFLAG_DSYNC:
            flags |= getattr(os, "O_DSYNC", 0)
        if fdflags & FDFLAG_RSYNC:
            flags |= getattr(os, "O_RSYNC", 0)
        if fdflags & FDFLAG_SYNC:
            flags |= getattr(os, "O_SYNC", 0)
        if oflags & OFLAG_CREAT and oflags & OFLAG_DIRECTORY:
            raise WasiError(Errno.EINVAL)
        with self.resolve(path, follow) as r:
            fd = os.open(r.name, flags | os.O_NONBLOCK, 0o666, dir_fd=r.dirfd)
        try:
            mode = os.fstat(fd).st_mode
            # O_NONBLOCK only kept opening a FIFO from hanging; files never block.
            os.set_blocking(fd, True)
            if stat.S_ISDIR(mode):
                obj: OpenObject = Directory(fd)
            elif oflags & OFLAG_DIRECTORY:
                raise WasiError(Errno.ENOTDIR)
            else:
                obj = RegularFile(
                    fd, append=bool(fdflags & FDFLAG_APPEND), filetype=filetype_of_mode(mode)
                )
        except BaseException:
            os.close(fd)
            raise
        obj.nonblocking = bool(fdflags & FDFLAG_NONBLOCK)
        return obj

    def mkdir(self, path: str) -> None:
        with self.resolve(path) as r:
            os.mkdir(r.name, 0o777, dir_fd=r.dirfd)

    def rmdir(self, path: str) -> None:
        with self.resolve(path) as r:
            if r.name.rstrip("/") == ".":
                raise WasiError(Errno.EINVAL)
            os.rmdir(r.name, dir_fd=r.dirfd)

    def unlink(self, path: str) -> None:
        with self.resolve(path) as r:
            if r.name.endswith("/"):
                st = os.stat(r.name, dir_fd=r.dirfd)
                raise WasiError(Errno.EISDIR if stat.S_ISDIR(st.st_mode) else Errno.ENOTDIR)
            os.unlink(r.name, dir_fd=r.dirfd)

    def stat(self, path: str, follow: bool) -> Filestat:
        with self.resolve(path, follow) as r:
            return filestat_of(os.stat(r.name, dir_fd=r.dirfd, follow_symlinks=False))

    def set_times_at(self, path: str, follow: bool, atim: int | None, mtim: int | None) -> None:
        with self.resolve(path, follow) as r:
            current = os.stat(r.name, dir_fd=r.dirfd, follow_symlinks=False)
            os.utime(
                r.name,
                ns=_utime_ns(atim, mtim, current),
                dir_fd=r.dirfd,
                follow_symlinks=False,
            )

    def readlink(self, path: str) -> bytes:
        with self.resolve(path) as r:
            return os.fsencode(os.readlink(r.name, dir_fd=r.dirfd))

    def symlink(self, target: str, path: str) -> None:
        if "\0" in target:
            raise WasiError(Errno.EINVAL)
        if target.startswith("/"):
            # As wasmtime: a link that could only ever resolve outside the sandbox.
            raise WasiError(Errno.EPERM, "absolute symlink target")
        with self.resolve(path) as r:
            os.symlink(target, r.name, dir_fd=r.dirfd)

    def link(self, path: str, follow: bool, other: Directory, other_path: str) -> None:
        with self.resolve(path, follow) as src, other.resolve(other_path) as dst:
            os.link(
                src.name,
                dst.name,
                src_dir_fd=src.dirfd,
                dst_dir_fd=dst.dirfd,
                follow_symlinks=False,
            )

    def rename(self, path: str, other: Directory, other_path: str) -> None:
        with self.resolve(path) as src, other.resolve(other_path) as dst:
            os.rename(src.name, dst.name, src_dir_fd=src.dirfd, dst_dir_fd=dst.dirfd)


def open_preopen(host_path: str, guest_path: str) -> Directory:
    fd = os.open(host_path, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
    return Directory(fd, guest_path)


# -- virtual devices ---------------------------------------------------------------------


def virtual_device(guest_path: str) -> OpenObject | None:
    """The object for a virtual device path (``/dev/null``), whatever the preopens."""
    from .stdio import DevNull

    if posixpath.normpath("/" + guest_path.lstrip("/")) == "/dev/null":
        return DevNull()
    return None


class VirtualDevDir(DirectoryBase):
    """The CLI's ``/dev`` preopen: ``null``, and ``tty`` (the host's, when there is one)."""

    NAMES = ("null", "tty")

    def __init__(self, guest_path: str = "/dev") -> None:
        super().__init__()
        self.guest_path = guest_path

    def filestat(self) -> Filestat:
        return Filestat(ino=1, filetype=Filetype.DIRECTORY, nlink=2)

    def readdir(self, cookie: int) -> Iterator[Dirent]:
        entries: list[Dirent] = [
            (b".", 1, Filetype.DIRECTORY),
            (b"..", 1, Filetype.DIRECTORY),
        ]
        for i, name in enumerate(self.NAMES):
            entries.append((name.encode(), i + 2, Filetype.CHARACTER_DEVICE))
        return iter(entries)

    def _name(self, path: str) -> str:
        parts, _trailing = _split(path)
        if ".." in parts:
            raise WasiError(Errno.ENOTCAPABLE, "path leaves its directory")
        if not parts:
            return "."
        if len(parts) > 1:
            raise WasiError(Errno.ENOTDIR if parts[0] in self.NAMES else Errno.ENOENT)
        return parts[0]

    def stat(self, path: str, follow: bool) -> Filestat:
        name = self._name(path)
        if name == ".":
            return self.filestat()
        if name not in self.NAMES:
            raise WasiError(Errno.ENOENT)
        return Filestat(ino=self.NAMES.index(name) + 2, filetype=Filetype.CHARACTER_DEVICE, nlink=1)

    def open_at(self, path: str, oflags: int, waiter: Waiter) -> OpenObject:
        name = self._name(path)
        if name == ".":
            if oflags & (OFLAG_CREAT | OFLAG_TRUNC):
                raise WasiError(Errno.EISDIR)
            return VirtualDevDir(self.guest_path or "/dev")
        if name not in self.NAMES:
            raise WasiError(Errno.EACCES if oflags & OFLAG_CREAT else Errno.ENOENT)
        if oflags & OFLAG_EXCL:
            raise WasiError(Errno.EEXIST)
        if oflags & OFLAG_DIRECTORY:
            raise WasiError(Errno.ENOTDIR)
        if name == "null":
            from .stdio import DevNull

            return DevNull()
        from .stdio import HostStream

        try:
            fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | _O_CLOEXEC)
        except OSError as exc:
            raise WasiError(Errno.ENXIO, "no controlling terminal") from exc
        return HostStream(fd, waiter, owned=True)


def dev_preopen() -> VirtualDevDir:
    """The virtual ``/dev`` directory the CLI preopens after the user's directories."""
    return VirtualDevDir("/dev")
