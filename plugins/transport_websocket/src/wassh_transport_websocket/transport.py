"""The hook implementations of the relay transport, and the relay claim rule."""

from __future__ import annotations

import atexit
import errno
import logging
import select
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from wassh import LISTEN, STREAM, ConnectRequest, Offer, SocketHandle, TransportConfig, hookimpl

from .settings import RelaySettings

if TYPE_CHECKING:
    from .relay import RelaySocket

log = logging.getLogger("wassh.relay")

RANK = 1000  # above every direct transport (tcp is 100): a configured relay comes first

_STORED_OPTIONS = {
    (socket.SOL_SOCKET, socket.SO_KEEPALIVE),
    (socket.IPPROTO_TCP, socket.TCP_NODELAY),
}


class RelayClaim:
    """``Offer.accepts`` of one runtime: which connects the relay takes.

    * ``first-connect``: every AF_INET/AF_INET6 stream connect until one relay
      connect succeeds (a failed relay connect never falls back to a direct one);
    * ``all``: every such connect;
    * ``first-socket``: the original's rule, approximated at the first stream
      socket that connects or binds; consumed even if that fails.
    """

    def __init__(self, settings: RelaySettings) -> None:
        self.settings = settings
        self.mode = settings.claim
        self.succeeded = False
        self.used = False
        self.lock = threading.Lock()

    def __call__(self, request: ConnectRequest) -> bool:
        if request.family not in (socket.AF_INET, socket.AF_INET6):
            return False
        if request.unresolved:
            return request.kind == STREAM  # only the relay can resolve it: always ours
        if self.mode == "all":
            return request.kind == STREAM
        if self.mode == "first-connect":
            return request.kind == STREAM and not self.succeeded
        with self.lock:
            if self.used or request.kind not in (STREAM, LISTEN):
                return False
            self.used = True
            return True


# -- tasks still flushing when the host process exits (CLI: background loop) -----------
_active: set[Any] = set()
_active_lock = threading.Lock()


def _wait_for_closing_streams(timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    with _active_lock:
        pending = [c for c in _active if c.guest_closed]
    for conn in pending:
        conn.done.wait(max(0.0, deadline - time.monotonic()))


atexit.register(_wait_for_closing_streams)


# ---------------------------------------------------------------------------------------
# hooks
# ---------------------------------------------------------------------------------------


@hookimpl
def wassh_transport_offer(config: TransportConfig) -> Offer:
    if not config.relay_url:
        return Offer(
            name="websocket",
            kinds=frozenset({STREAM}),
            rank=RANK,
            available=False,
            reason="no relay configured (--relay URL)",
        )
    # A bad setting raises: the core stops the run before the guest starts,
    # rather than letting connects fall through to a direct transport.
    claim = RelayClaim(RelaySettings.from_config(config))
    kinds = {STREAM, LISTEN} if claim.mode == "first-socket" else {STREAM}
    return Offer(name="websocket", kinds=frozenset(kinds), rank=RANK, accepts=claim)


def _claim_of(sock: SocketHandle) -> RelayClaim:
    owner = sock.owner
    claim = owner.offer.accepts if owner is not None else None
    if not isinstance(claim, RelayClaim):
        raise OSError(errno.ENETUNREACH, "relay transport used without its offer")
    return claim


@hookimpl
def wassh_sock_connect(sock: SocketHandle, host: str, port: int) -> bool:
    claim = _claim_of(sock)
    settings = claim.settings
    try:
        portal = sock.process.portal
    except Exception as exc:
        raise OSError(errno.ENETUNREACH, f"no trio loop for the relay: {exc}") from exc
    from .relay import start_connection

    try:
        state = start_connection(portal, settings, claim, host, port, _active, _active_lock)
    except Exception as exc:
        raise OSError(errno.ENETUNREACH, f"cannot start the relay task: {exc}") from exc
    sock.transport_state = state
    return False


@hookimpl
def wassh_sock_connect_check(sock: SocketHandle) -> bool:
    state: RelaySocket = sock.transport_state
    return state.conn.connect_result()


@hookimpl
def wassh_sock_recv_into(sock: SocketHandle, buf: memoryview, peek: bool) -> int:
    state: RelaySocket = sock.transport_state
    return state.conn.recv_into(buf, peek)


@hookimpl
def wassh_sock_send(sock: SocketHandle, data: memoryview) -> int:
    state: RelaySocket = sock.transport_state
    return state.conn.send(data)


@hookimpl
def wassh_sock_wait_handle(sock: SocketHandle, write: bool) -> tuple[int, int]:
    state: RelaySocket = sock.transport_state
    conn = state.conn
    return (conn.write_fd if write else conn.read_fd), select.POLLIN


@hookimpl
def wassh_sock_setsockopt(sock: SocketHandle, level: int, name: int, value: int) -> None:
    return None  # stored by the core; nothing to apply on a relay


@hookimpl
def wassh_sock_getsockopt(sock: SocketHandle, level: int, name: int) -> int | None:
    if (level, name) in _STORED_OPTIONS:
        return None  # the core's stored value
    return 0


@hookimpl
def wassh_sock_shutdown(sock: SocketHandle, how: int) -> None:
    # No relay protocol can half-close: the core refuses further writes; the
    # WebSocket stays open for the other direction.
    state: RelaySocket = sock.transport_state
    if how in (socket.SHUT_WR, socket.SHUT_RDWR):
        state.conn.shutdown_write()


@hookimpl
def wassh_sock_close(sock: SocketHandle) -> None:
    state: RelaySocket | None = sock.transport_state
    if state is None:
        return
    state.close()


@hookimpl
def wassh_sock_name(sock: SocketHandle, remote: bool) -> tuple[str, int] | None:
    # The core reports the address the guest dialled as the peer; the local end
    # lives on the relay, so the socket has no local address of its own.
    state: RelaySocket | None = sock.transport_state
    unspecified = "::" if sock.family == socket.AF_INET6 else "0.0.0.0"
    return (unspecified, state.port if remote and state is not None else 0)


@hookimpl
def wassh_sock_bind(sock: SocketHandle, host: str, port: int) -> None:
    raise OSError(errno.EINVAL, "a relay socket cannot bind")


@hookimpl
def wassh_sock_listen(sock: SocketHandle, backlog: int) -> None:
    raise OSError(errno.EINVAL, "a relay socket cannot listen")
