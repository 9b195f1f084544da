"""The guest's descriptor table: one namespace for stdio, files and sockets."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ..abi.errno import Errno, WasiError
from .objects import OpenObject

FD_LIMIT = 1024  # matches FD_SETSIZE: select() cannot handle more


class FdTable:
    """Maps descriptor numbers to shared, reference-counted open objects."""

    __slots__ = ("_slots", "on_change")

    def __init__(self) -> None:
        self._slots: dict[int, OpenObject] = {}
        # Told each number whose object changes (the compiled fast path detaches it),
        # before the object it named is released.
        self.on_change: Callable[[int], None] | None = None

    @property
    def table(self) -> dict[int, OpenObject]:
        """The descriptor -> object dict itself, for lookups on hot paths (read only)."""
        return self._slots

    def get(self, fd: int) -> OpenObject:
        obj = self._slots.get(fd)
        if obj is None:
            raise WasiError(Errno.EBADF, f"fd {fd} is not open")
        return obj

    def lookup(self, fd: int) -> OpenObject | None:
        return self._slots.get(fd)

    def _lowest_free(self, lowest: int = 0) -> int:
        for fd in range(lowest, FD_LIMIT):
            if fd not in self._slots:
                return fd
        raise WasiError(Errno.EMFILE, "descriptor table full")

    def add(self, obj: OpenObject, lowest: int = 0) -> int:
        """Install ``obj`` at the lowest free number (from ``lowest``)."""
        fd = self._lowest_free(lowest)
        if self.on_change is not None:
            self.on_change(fd)
        self._slots[fd] = obj
        obj.refs += 1
        return fd

    def close(self, fd: int) -> None:
        if fd not in self._slots:
            raise WasiError(Errno.EBADF, f"fd {fd} is not open")
        if self.on_change is not None:
            self.on_change(fd)
        self._release(self._slots.pop(fd))

    def _release(self, obj: OpenObject) -> None:
        obj.refs -= 1
        if obj.refs == 0:
            obj.close()

    def place(self, fd: int, obj: OpenObject) -> None:
        """Install ``obj`` at a free ``fd`` (a child's handed-over descriptors)."""
        if fd in self._slots or not 0 <= fd < FD_LIMIT:
            raise WasiError(Errno.EBADF, f"fd {fd} is taken or out of range")
        if self.on_change is not None:
            self.on_change(fd)
        self._slots[fd] = obj
        obj.refs += 1

    def dup(self, fd: int) -> int:
        return self.add(self.get(fd))

    def dup2(self, old: int, new: int) -> None:
        obj = self.get(old)
        if new < 0 or new >= FD_LIMIT:
            raise WasiError(Errno.EBADF, f"fd {new} out of range")
        if old == new:
            return
        previous = self._slots.get(new)
        if self.on_change is not None:
            self.on_change(new)
        self._slots[new] = obj
        obj.refs += 1
        if previous is not None:
            self._release(previous)

    def renumber(self, src: int, dst: int) -> None:
        self.get(src)
        self.get(dst)
        if src == dst:
            return
        self.dup2(src, dst)
        self.close(src)

    def items(self) -> Iterator[tuple[int, OpenObject]]:
        return iter(list(self._slots.items()))

    def close_all(self) -> None:
        for fd in list(self._slots):
            try:
                self.close(fd)
            except Exception:  # closing at exit must not mask the exit status
                continue

    def __len__(self) -> int:
        return len(self._slots)
