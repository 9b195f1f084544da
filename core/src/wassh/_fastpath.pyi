"""Types of the compiled host calls (``_fastpath.c``); see ``wassh.fastpath``."""

from collections.abc import Callable

OP_PLAIN: int
OP_FD_READ: int
OP_FD_WRITE: int
OP_SOCK_RECV: int
OP_SOCK_SEND: int
OP_RECVFROM: int
OP_SENDTO: int
OP_POLL: int
OP_ACCEPT: int
OP_ACCEPT_P1: int
K_SOCKET: int
K_STREAM: int
K_FILE: int
K_LISTENER: int
F_READ: int
F_WRITE: int
F_NONBLOCK: int
F_REGULAR: int
F_ACCEPT: int
FD_LIMIT: int

class Runtime:
    def __init__(
        self,
        trap_new: int,
        stride: int,
        wake_fd: int,
        query_size: Callable[[], int],
        fail: Callable[[int, int, int], int],
        on_wake: Callable[[], bool],
        offer: Callable[[int], bool],
        adopt: Callable[[int, int, int], int],
        unwind: object,
    ) -> None: ...
    def define(
        self, op: int, params: str, returns: bool, entry: Callable[..., int | None]
    ) -> tuple[int, int]: ...
    def set_memory(self, base: int, size: int) -> None: ...
    def attach(
        self,
        fd: int,
        kind: int,
        flags: int,
        osfd: int,
        wire_family: int,
        wire_addr: bytes,
        wire_port: int,
    ) -> None: ...
    def detach(self, fd: int) -> tuple[int, int]: ...
    def new_epoch(self) -> None: ...
    def add_signals(self, delta: int) -> None: ...
    def stats(self) -> tuple[tuple[int, ...], tuple[int, ...]]: ...
