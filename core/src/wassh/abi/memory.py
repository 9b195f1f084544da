"""Bounds-checked access to a guest's linear memory.

The engine is configured with ``memory_may_move = False``, so the base address of
the linear memory never changes: one memoryview over the whole reservation is
built once, and every access is checked against the current size, which is only
re-read from the engine when a check fails (memory never shrinks).
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Callable

from .errno import Errno, WasiError

_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_U64 = struct.Struct("<Q")
_IOVEC = struct.Struct("<II")

# wasm32 linear memories are at most 4 GiB.
_MAX_MEMORY = 1 << 32
IOV_MAX = 1024


class GuestMemory:
    """A view of guest memory; all offsets are unsigned 32-bit guest pointers."""

    __slots__ = ("_query_size", "size", "view")

    def __init__(self, base_address: int, query_size: Callable[[], int]) -> None:
        raw = (ctypes.c_ubyte * _MAX_MEMORY).from_address(base_address)
        self.view = memoryview(raw).cast("B")
        self._query_size = query_size
        self.size = query_size()

    def check(self, ptr: int, length: int) -> None:
        """Raise EFAULT unless ``[ptr, ptr+length)`` lies inside guest memory."""
        end = ptr + length
        if ptr < 0 or length < 0 or end > self.size:
            self.size = self._query_size()
            if ptr < 0 or length < 0 or end > self.size:
                raise WasiError(Errno.EFAULT, f"guest pointer {ptr:#x}+{length} out of bounds")

    def current_size(self) -> int:
        """The size now, read from the engine (memory may have grown)."""
        self.size = self._query_size()
        return self.size

    def slice(self, ptr: int, length: int) -> memoryview:
        """A zero-copy view of guest bytes (valid until the guest runs again)."""
        self.check(ptr, length)
        return self.view[ptr : ptr + length]

    def read(self, ptr: int, length: int) -> bytes:
        self.check(ptr, length)
        return bytes(self.view[ptr : ptr + length])

    def write(self, ptr: int, data: bytes | bytearray | memoryview) -> None:
        n = len(data)
        self.check(ptr, n)
        self.view[ptr : ptr + n] = data

    def read_str(self, ptr: int, length: int) -> str:
        return self.read(ptr, length).decode("utf-8", "replace")

    def u8(self, ptr: int) -> int:
        self.check(ptr, 1)
        return self.view[ptr]

    def u16(self, ptr: int) -> int:
        self.check(ptr, 2)
        return int(_U16.unpack_from(self.view, ptr)[0])

    def u32(self, ptr: int) -> int:
        self.check(ptr, 4)
        return int(_U32.unpack_from(self.view, ptr)[0])

    def u64(self, ptr: int) -> int:
        self.check(ptr, 8)
        return int(_U64.unpack_from(self.view, ptr)[0])

    def set_u8(self, ptr: int, value: int) -> None:
        self.check(ptr, 1)
        self.view[ptr] = value & 0xFF

    def set_u16(self, ptr: int, value: int) -> None:
        self.check(ptr, 2)
        _U16.pack_into(self.view, ptr, value & 0xFFFF)

    def set_u32(self, ptr: int, value: int) -> None:
        self.check(ptr, 4)
        _U32.pack_into(self.view, ptr, value & 0xFFFFFFFF)

    def set_i32(self, ptr: int, value: int) -> None:
        self.check(ptr, 4)
        _I32.pack_into(self.view, ptr, value)

    def set_u64(self, ptr: int, value: int) -> None:
        self.check(ptr, 8)
        _U64.pack_into(self.view, ptr, value & 0xFFFFFFFFFFFFFFFF)

    def pack(self, fmt: struct.Struct, ptr: int, *values: object) -> None:
        self.check(ptr, fmt.size)
        fmt.pack_into(self.view, ptr, *values)

    def unpack(self, fmt: struct.Struct, ptr: int) -> tuple[object, ...]:
        self.check(ptr, fmt.size)
        return fmt.unpack_from(self.view, ptr)

    def iovecs(self, ptr: int, count: int) -> list[memoryview]:
        """Decode an iovec array into views of the buffers it names (all checked first).

        At most ``IOV_MAX`` buffers (EINVAL beyond, as Linux). Their total is cut
        to the size of guest memory, which only buffers that overlap can exceed:
        a short transfer, as Linux cuts one at ``MAX_RW_COUNT``. Without the cut,
        1024 buffers each naming all of memory would make a host that copies them
        (a datagram, a callback's chunk) allocate 1024 times the guest's memory.
        """
        if count > IOV_MAX:
            raise WasiError(Errno.EINVAL, "too many iovecs")
        self.check(ptr, 8 * count)
        view = self.view
        if count == 1:  # the common case: one buffer never exceeds memory
            buf, length = _IOVEC.unpack_from(view, ptr)
            self.check(buf, length)
            return [view[buf : buf + length]]
        spans = []
        for i in range(count):
            buf, length = _IOVEC.unpack_from(view, ptr + 8 * i)
            self.check(buf, length)  # may learn that memory grew: budget from it after
            spans.append((buf, length))
        out = []
        budget = self.size
        for buf, length in spans:
            length = min(length, budget)
            budget -= length
            out.append(view[buf : buf + length])
        return out
