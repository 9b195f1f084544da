"""What a transport plugin sees of a guest socket: ``SocketHandle``.

One handle per guest socket, made by the core and passed to every per-socket
hook. It carries what a transport may read (the socket's family, kind,
protocol and the options the guest set) and one slot of its own, ``state``,
typed by the transport (``SocketHandle[MyConnection]``). The core's state
machine (connecting, bound, shut down, the peer it reports) stays behind it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from .loop import LoopPortal
    from .runtime import Process

S = TypeVar("S")


class SocketHandle(Generic[S]):
    """A guest socket, as its transport sees it.

    Read: ``family`` (host ``socket.AF_*``), ``kind`` (``wassh.STREAM``,
    ``DGRAM``; an AF_UNIX socket is ``STREAM`` or ``DGRAM`` with
    ``family == AF_UNIX``), ``protocol``, ``options`` (host
    ``(level, name) -> value`` the guest set, applied or not) and
    ``connect_timeout``. Set: ``state``, the transport's own per-socket object
    (``None`` until the transport's ``connect``, ``bind``, ``sendto`` or
    ``accept`` sets it; the core calls data hooks only once it is set and
    calls ``wassh_sock_close`` once for it).
    """

    __slots__ = ("_connect_deadline", "_options", "_process", "family", "kind", "protocol", "state")

    def __init__(
        self,
        process: Process,
        family: int,
        kind: str,
        protocol: int,
        options: dict[tuple[int, int], int],
    ) -> None:
        self._process = process
        self._options = options
        self.family = family
        self.kind = kind
        self.protocol = protocol
        # None until the transport sets it: typed as the transport's own object
        # so hooks read it without a cast on every call.
        self.state: S = None  # type: ignore[assignment]
        # While the core connects: when the connect fails with ETIMEDOUT. Name
        # lookups the transport makes for it (``wassh.resolve``) end by then too.
        self._connect_deadline = math.inf

    @property
    def options(self) -> Mapping[tuple[int, int], int]:
        """Options the guest set (host constants), to apply when the OS socket exists."""
        return MappingProxyType(self._options)

    @property
    def connect_timeout(self) -> float:
        """Seconds a blocking connect may take (``--connect-timeout``)."""
        return self._process.transports.config.connect_timeout

    @property
    def connect_deadline(self) -> float:
        """While the core connects this socket (inside ``wassh_sock_connect``): the
        ``time.monotonic()`` at which the connect fails with ETIMEDOUT, counted
        from the guest's call; ``math.inf`` otherwise. A transport with a
        handshake of its own ends it by then."""
        return self._connect_deadline

    @property
    def portal(self) -> LoopPortal:
        """The trio loop plugins run tasks on (the embedder's, or a background one)."""
        return self._process.portal

    @property
    def trio_token(self) -> Any:
        """The token of that loop, for ``trio.from_thread.run(..., trio_token=)``."""
        return self._process.portal.token

    def __repr__(self) -> str:
        return f"<SocketHandle {self.kind} family={self.family} state={self.state!r}>"


AnyHandle = SocketHandle[Any]
