"""A guest's request to start a program (the SDK's ``proc_spawn``), and the
descriptors it hands over.

``struct __wassh_spawn_request`` (spawn.c), 48 bytes of little-endian words:
``path, path_len, args, args_len, argc, env, env_len, envc, fds[3], flags``.
Strings are NUL-terminated texts laid end to end; ``fds[i]`` is the caller's
descriptor that becomes the child's ``i``, or -1 for closed.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .abi.errno import Errno, WasiError
from .host.objects import OpenObject
from .host.stdio import HostStream

if TYPE_CHECKING:
    from .abi.memory import GuestMemory
    from .host.waiter import Waiter
    from .runtime import Process

REQUEST = struct.Struct("<8I3iI")
SPAWN_SEARCH = 1  # a name without '/' is looked up (execvp, posix_spawnp)
SPAWN_FORKED = 2  # after fork(): a program that cannot start is a child exiting 127
WNOHANG = 1
# Linux's ARG_MAX: what argv and the environment may add up to.
MAX_ARGS_BYTES = 2 * 1024 * 1024
MAX_STRINGS = 1 << 16


@dataclass
class SpawnRequest:
    path: str
    argv: list[str]
    env: dict[str, str]
    fds: tuple[int, int, int]
    flags: int


def _strings(mem: GuestMemory, ptr: int, length: int, count: int) -> list[str]:
    if count > MAX_STRINGS:
        raise WasiError(Errno.E2BIG)
    raw = mem.read(ptr, length)
    parts = raw.split(b"\0")
    # count terminated strings, then nothing after the last NUL
    if len(parts) != count + 1 or parts[-1]:
        raise WasiError(Errno.EINVAL, "malformed string list")
    return [p.decode("utf-8", "surrogateescape") for p in parts[:-1]]


def decode_spawn_request(mem: GuestMemory, ptr: int) -> SpawnRequest:
    mem.check(ptr, REQUEST.size)
    (path, path_len, args, args_len, argc, env, env_len, envc, fd0, fd1, fd2, flags) = (
        REQUEST.unpack(mem.read(ptr, REQUEST.size))
    )
    if path_len > 4096:
        raise WasiError(Errno.ENAMETOOLONG)
    if args_len + env_len > MAX_ARGS_BYTES:
        raise WasiError(Errno.E2BIG)
    if flags & ~(SPAWN_SEARCH | SPAWN_FORKED):
        raise WasiError(Errno.EINVAL)
    name = mem.read(path, path_len).decode("utf-8", "surrogateescape")
    if not name or "\0" in name:
        raise WasiError(Errno.ENOENT)
    argv = _strings(mem, args, args_len, argc)
    environ: dict[str, str] = {}
    for item in _strings(mem, env, env_len, envc):
        key, sep, value = item.partition("=")
        if sep and key:
            environ[key] = value
    return SpawnRequest(name, argv or [name], environ, (fd0, fd1, fd2), flags)


@dataclass
class Handover:
    """What one of the child's descriptors 0-2 starts as: a host descriptor of its
    own (a dup, for a stream), an object shared with the parent, or closed."""

    host_fd: int | None = None
    nonblocking: bool = False
    shared: OpenObject | None = None

    def make(self, waiter: Waiter) -> OpenObject | None:
        if self.host_fd is not None:
            stream = HostStream(self.host_fd, waiter, owned=True)
            self.host_fd = None  # the stream owns it now
            stream.nonblocking = self.nonblocking
            return stream
        return self.shared

    def release(self) -> None:
        """Drop what was taken, for a child that never took it."""
        if self.host_fd is not None:
            os.close(self.host_fd)
            self.host_fd = None
        if self.shared is not None:
            self.shared.refs -= 1
            if self.shared.refs == 0:
                self.shared.close()
            self.shared = None


def hand_over(proc: Process, fds: tuple[int, int, int]) -> list[Handover]:
    """The child's descriptors 0-2 from the parent's ``fds`` (-1: closed).

    A stream (pipe, terminal, the host's stdio) is duplicated at the OS level,
    so the child blocks on its own thread; other objects are shared, as a
    forked descriptor shares its open file description. Sockets belong to
    their owner's thread and transports: handing one over is ENOTSUP.
    """
    from .host.sockets import Socket

    objects: list[OpenObject | None] = []
    for fd in fds:
        if fd < 0:
            objects.append(None)
            continue
        obj = proc.fds.lookup(fd)
        if isinstance(obj, Socket):
            raise WasiError(Errno.ENOTSUP, f"fd {fd} is a socket: it cannot go to a child")
        objects.append(obj)  # a number not open leaves the child's closed, as on Linux
    out: list[Handover] = []
    try:
        for obj in objects:
            if obj is None:
                out.append(Handover())
            elif isinstance(obj, HostStream):
                out.append(Handover(host_fd=os.dup(obj.fd), nonblocking=obj.nonblocking))
            else:
                obj.refs += 1  # held until the child's table takes it
                out.append(Handover(shared=obj))
    except OSError as exc:
        for given in out:
            given.release()
        raise WasiError(Errno.EMFILE, "no host descriptor for the child") from exc
    return out
