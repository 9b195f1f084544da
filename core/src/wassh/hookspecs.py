"""The hooks a transport plugin implements.

Two phases. At start-up every plugin is asked for an ``Offer`` (is it usable
here, what kinds of socket it serves, its rank); the core ranks the offers, as
wassh's sockets.js picks the best Web API. Afterwards, the per-socket hooks of
the one plugin that owns a socket are called for that socket only.

Threading: every hook is called on the **guest thread** and must not block. A
plugin whose work lives on the trio loop (a WebSocket relay) reaches it with
``trio.from_thread.run(..., trio_token=sock.trio_token)`` in ``wassh_sock_connect``
and serves data from its own buffers, signalling readiness through the OS
handle it returns from ``wassh_sock_wait_handle`` (an eventfd, say).

Why the data hooks are called directly: an owner's implementations are looked
up once per plugin and called as plain functions (pluggy's multicall would
add microseconds to every ``send``/``recv``, which the data path cannot afford).

Errors: raise ``OSError`` with a host errno (``errno.ECONNREFUSED``), or
``wassh.WasiError``; ``BlockingIOError`` means "would block". The ABI layer
turns them into WASI errno in one place. Never touch guest memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .host.sockets import Socket as SocketHandle
    from .plugins import Offer, TransportConfig

hookspec = pluggy.HookspecMarker("wassh")
hookimpl = pluggy.HookimplMarker("wassh")

# ---------------------------------------------------------------------------
# Start-up and name resolution
# ---------------------------------------------------------------------------


@hookspec
def wassh_transport_offer(config: TransportConfig) -> Offer | Sequence[Offer] | None:
    """Say whether this transport can work here, what it serves and its rank.

    Called once per runtime, on the thread that builds it. The network policy
    is already fixed by then: changing ``config`` cannot widen it.

    :param config: the runtime's transport settings (relay URL, policies, extras).
    :returns: an ``Offer`` (``available=False`` with a ``reason`` to explain why
        not), a list of them when one plugin serves several kinds under their
        own names and ranks, or None when the plugin has nothing to offer.
    :raises Exception: the plugin is broken or misconfigured: the runtime does
        not start (``PluginError``, one line naming the plugin and the message),
        rather than carrying on without a transport the user installed.
    """


@hookspec(firstresult=True)
def wassh_getaddrinfo(
    host: str, family: int, config: TransportConfig
) -> list[tuple[int, bytes]] | None:
    """Answer a guest's name lookup for real. Stops at the first non-None result.

    Called on the guest thread for names that are neither numeric nor
    ``localhost``. The default plugin (``trylast``) answers with reserved
    "fake" addresses so the name itself reaches the transport at connect time.

    :param host: the name the guest asked for.
    :param family: ``socket.AF_INET``, ``socket.AF_INET6`` or ``socket.AF_UNSPEC``.
    :returns: ``[(family, packed address bytes), ...]`` or None to pass.
    """


# ---------------------------------------------------------------------------
# Per-socket hooks (owner only). ``sock`` is the core's SocketHandle; the
# plugin keeps its own state in ``sock.transport_state``.
# ---------------------------------------------------------------------------


@hookspec
def wassh_sock_connect(sock: SocketHandle, host: str, port: int) -> bool:
    """Start connecting ``sock`` to ``host`` (a name or a literal) and ``port``.

    The core has checked ``host`` against the network policy already. A
    transport that dials addresses resolves ``host`` with
    ``wassh.resolve(sock, host, port)``, which checks each address too, and
    says so with ``Offer(checks_addresses=True)``.

    :returns: True when connected already, False when in progress (the core then
        waits on the write handle and calls ``wassh_sock_connect_check``).
    :raises OSError: ``ECONNREFUSED``, ``EHOSTUNREACH``, ``ENETUNREACH``...
    """


@hookspec
def wassh_sock_connect_check(sock: SocketHandle) -> bool:
    """Poll a connect in progress: True when done, False while pending.

    :raises OSError: the connect failed (the errno lands in ``SO_ERROR``).
    """


@hookspec
def wassh_sock_recv_into(sock: SocketHandle, buf: memoryview, peek: bool) -> int:
    """Copy received bytes into ``buf`` without blocking.

    Datagram sockets receive one whole datagram per call: store its source as
    ``sock.last_source = (literal, port)``, and return its full length when it
    was longer than ``buf`` (the core reports the truncation; the rest is lost).

    :returns: the byte count; 0 means end of stream (for a stream socket).
    :raises BlockingIOError: nothing buffered yet.
    """


@hookspec
def wassh_sock_send(sock: SocketHandle, data: memoryview) -> int:
    """Queue or send ``data`` without blocking; returns the bytes accepted.

    :raises BlockingIOError: no room at all right now.
    """


@hookspec
def wassh_sock_sendto(sock: SocketHandle, data: memoryview, host: str, port: int) -> int:
    """Send one datagram to ``host`` (a name or a literal) and ``port`` without blocking.

    Called for datagram sockets only, possibly before any bind or connect (the
    transport then creates its socket, bound to an ephemeral port).

    :returns: the bytes sent (the whole datagram).
    :raises BlockingIOError: no room right now.
    """


@hookspec
def wassh_sock_wait_handle(sock: SocketHandle, write: bool) -> tuple[int, int]:
    """The OS handle and poll(2) mask that become ready with the socket.

    For reading: ready when bytes, end of stream or an error are pending. For
    writing: when there is room to send, or a connect has finished.
    """


@hookspec
def wassh_sock_setsockopt(sock: SocketHandle, level: int, name: int, value: int) -> None:
    """Apply an option (host ``socket`` constants) to a live transport.

    Options set before the transport exists are stored by the core and passed
    here right after ``wassh_sock_connect``/``wassh_sock_bind``.
    """


@hookspec
def wassh_sock_getsockopt(sock: SocketHandle, level: int, name: int) -> int | None:
    """Read an option from the live transport; None means "use the core's copy"."""


@hookspec
def wassh_sock_shutdown(sock: SocketHandle, how: int) -> None:
    """Half-close: ``how`` is ``socket.SHUT_RD``, ``SHUT_WR`` or ``SHUT_RDWR``."""


@hookspec
def wassh_sock_close(sock: SocketHandle) -> None:
    """Release the transport; called once, when the last descriptor goes."""


@hookspec
def wassh_sock_name(sock: SocketHandle, remote: bool) -> tuple[str, int] | None:
    """The local (or, with ``remote``, the peer's) address as ``(literal, port)``."""


@hookspec
def wassh_sock_bind(sock: SocketHandle, host: str, port: int) -> None:
    """Bind ``sock`` to a literal address (listening transports)."""


@hookspec
def wassh_sock_listen(sock: SocketHandle, backlog: int) -> None:
    """Start listening on a bound socket."""


@hookspec
def wassh_sock_accept(sock: SocketHandle) -> Any:
    """Take one pending connection without blocking.

    :returns: the new connection's ``transport_state`` (owned by the same plugin).
    :raises BlockingIOError: nothing pending.
    """
