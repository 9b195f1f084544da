"""The relay transport (``RelayTransport``) and its claim rule."""

from __future__ import annotations

import errno
import logging
import select
import socket
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

from wassh import (
    LISTEN,
    STREAM,
    ConnectRequest,
    Offer,
    PluginOptions,
    SocketHandle,
    TransportConfig,
    hookimpl,
)

from .settings import CLAIMS, PROTOCOLS, RelaySettings

if TYPE_CHECKING:
    from .relay import RelaySocket  # imports trio: only when a relay connects

log = logging.getLogger("wassh.relay")

RANK = 1000  # above every direct transport (tcp is 100): a configured relay comes first


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


Handle: TypeAlias = "SocketHandle[RelaySocket]"


class RelayTransport:
    """TCP through a WebSocket relay; one instance per runtime holds its settings,
    its claim rule and the connections still flushing when the guest ends."""

    name = "websocket"

    def __init__(self) -> None:
        self.settings: RelaySettings | None = None
        self.claim: RelayClaim | None = None
        self.active: set[Any] = set()
        self.active_lock = threading.Lock()

    @hookimpl
    def wassh_addoption(self, options: PluginOptions) -> None:
        options.add(
            "--relay", dest="url", metavar="URL", help="reach TCP servers through this relay"
        )
        options.add(
            "--relay-protocol",
            dest="protocol",
            choices=PROTOCOLS,
            help="the relay's protocol (default: websockify)",
        )
        options.add(
            "--relay-claim",
            dest="claim",
            choices=CLAIMS,
            help="which connects the relay takes (default first-connect: until one succeeds)",
        )
        options.add(
            "--relay-header",
            dest="headers",
            action="append",
            metavar="K=V",
            help="extra HTTP header for the relay (authentication, cookies)",
        )
        options.add(
            "--relay-param",
            dest="params",
            action="append",
            metavar="K=V",
            help="extra query parameter for the relay URL",
        )
        options.add(
            "--relay-ca", dest="ca_file", metavar="FILE", help="CA bundle to verify a wss:// relay"
        )

    @hookimpl
    def wassh_transport_offer(
        self, config: TransportConfig, settings: Mapping[str, object]
    ) -> Offer:
        if not settings:
            return Offer(
                name="websocket",
                kinds=frozenset({STREAM}),
                rank=RANK,
                available=False,
                reason="no relay configured (--relay URL)",
            )
        # A bad setting raises: the core stops the run before the guest starts,
        # rather than letting connects fall through to a direct transport.
        self.settings = RelaySettings.from_settings(settings, config.connect_timeout)
        self.claim = RelayClaim(self.settings)
        # A run with a relay connects through it: load trio, websockets and the
        # drivers now, before the guest runs, rather than inside its first connect
        # (about 0.2 s on a cold process). Runs without a relay never load them.
        from . import relay  # noqa: F401

        kinds = {STREAM, LISTEN} if self.claim.mode == "first-socket" else {STREAM}
        return Offer(name="websocket", kinds=frozenset(kinds), rank=RANK, accepts=self.claim)

    @hookimpl
    def wassh_transport_stop(self) -> None:
        """Let streams the guest closed finish flushing (bounded by ``close_timeout``)."""
        if self.settings is None:
            return
        deadline = time.monotonic() + self.settings.close_timeout + 1.0
        with self.active_lock:
            pending = [c for c in self.active if c.guest_closed]
        for conn in pending:
            conn.done.wait(max(0.0, deadline - time.monotonic()))

    @hookimpl
    def wassh_sock_connect(self, sock: Handle, host: str, port: int) -> bool:
        if self.settings is None or self.claim is None:
            raise OSError(errno.ENETUNREACH, "relay transport used without its offer")
        try:
            portal = sock.portal
        except Exception as exc:
            raise OSError(errno.ENETUNREACH, f"no trio loop for the relay: {exc}") from exc
        from .relay import start_connection

        try:
            state = start_connection(
                portal, self.settings, self.claim, host, port, self.active, self.active_lock
            )
        except Exception as exc:
            raise OSError(errno.ENETUNREACH, f"cannot start the relay task: {exc}") from exc
        sock.state = state
        return False

    @hookimpl
    def wassh_sock_connect_check(self, sock: Handle) -> bool:
        return sock.state.conn.connect_result()

    @hookimpl
    def wassh_sock_recv(self, sock: Handle, buf: memoryview, peek: bool) -> int:
        return sock.state.conn.recv_into(buf, peek)

    @hookimpl
    def wassh_sock_send(self, sock: Handle, data: memoryview) -> int:
        return sock.state.conn.send(data)

    @hookimpl
    def wassh_sock_poll_handle(self, sock: Handle, write: bool) -> tuple[int, int]:
        conn = sock.state.conn
        return (conn.write_fd if write else conn.read_fd), select.POLLIN

    # No wassh_sock_setsockopt/getsockopt: a relay socket has no OS socket of its
    # own, so the core's defaults apply (it keeps what the guest set and answers
    # getsockopt from that copy).

    @hookimpl
    def wassh_sock_shutdown(self, sock: Handle, how: int) -> None:
        # No relay protocol can half-close: the core refuses further writes; the
        # WebSocket stays open for the other direction.
        if how in (socket.SHUT_WR, socket.SHUT_RDWR):
            sock.state.conn.shutdown_write()

    @hookimpl
    def wassh_sock_close(self, sock: Handle) -> None:
        sock.state.close()

    @hookimpl
    def wassh_sock_getname(self, sock: Handle, remote: bool) -> tuple[str, int] | None:
        # The core reports the address the guest dialled as the peer; the local end
        # lives on the relay, so the socket has no local address of its own.
        unspecified = "::" if sock.family == socket.AF_INET6 else "0.0.0.0"
        return (unspecified, sock.state.port if remote else 0)

    @hookimpl
    def wassh_sock_bind(self, sock: Handle, host: str, port: int) -> None:
        raise OSError(errno.EINVAL, "a relay socket cannot bind")

    @hookimpl
    def wassh_sock_listen(self, sock: Handle, backlog: int) -> None:
        raise OSError(errno.EINVAL, "a relay socket cannot listen")

    # A LISTEN claim (``first-socket``) never gets this far: bind refuses first.
    @hookimpl
    def wassh_sock_accept(self, sock: Handle) -> object:
        raise OSError(errno.EINVAL, "a relay socket cannot accept")
