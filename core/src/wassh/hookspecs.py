"""The hooks a transport plugin implements (plugin API 1.0; see docs/plugins.md).

Lifecycle, per runtime: ``wassh_addoption`` (command line only, before
parsing), ``wassh_transport_offer`` (is the transport usable, what kinds of
socket it serves, its rank; the core ranks the offers), then the per-socket
hooks of the one transport that owns each socket, then ``wassh_transport_stop``
when the guest has finished.

Names: each per-socket hook is named after the socket call it serves, and the
core calls it by that same name on the socket's owner (``owner.wassh_sock_send``
in ``host/sockets.py``), so one grep follows an operation from the guest's
import (``sock_send``) to every implementation.

Threading: every per-socket hook runs on the **guest thread** and must not
block. Work that lives on the trio loop (a WebSocket relay) is started with
``sock.portal.start_soon(...)`` and serves data from the transport's own
buffers, signalling readiness through the OS handle ``wassh_sock_poll_handle``
names (an eventfd, say).

Which hooks a transport must implement depends on the kinds it offers
(``wassh.plugins.REQUIRED_HOOKS``); a plugin missing one is refused at start-up.
The others have defaults that answer as Linux would (``EOPNOTSUPP``...).

Errors: raise ``OSError`` with a host errno (``errno.ECONNREFUSED``), or
``wassh.WasiError``; ``BlockingIOError`` means "would block". The core turns
them into the guest's errno in one place. Never touch guest memory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .handle import SocketHandle
    from .names import NameAnswer
    from .options import PluginOptions
    from .plugins import Offer, TransportConfig

hookspec = pluggy.HookspecMarker("wassh")
hookimpl = pluggy.HookimplMarker("wassh")

# ---------------------------------------------------------------------------
# Start-up, shut-down and name resolution
# ---------------------------------------------------------------------------


@hookspec
def wassh_addoption(options: PluginOptions) -> None:
    """Add this plugin's own options to ``wassh run`` and ``wassh transports``.

    Called once when the command line is built, for every installed plugin
    (blocked ones too, so their options are known). The values the user gave
    reach ``wassh_transport_offer`` as ``settings``, under each option's
    ``dest``; options the user did not give are absent, so defaults live in
    one place, the plugin's own settings parser.
    """


@hookspec
def wassh_transport_offer(
    config: TransportConfig, settings: Mapping[str, object]
) -> Offer | Sequence[Offer] | None:
    """Say whether this transport can work here, what it serves and its rank.

    Called once per runtime, on the thread that builds it; a class-based
    plugin has a fresh instance per runtime, so it keeps its state on ``self``.

    :param config: the core's settings (connect timeout, names, the policy's
        patterns). The network policy is fixed before this is called: changing
        ``config`` cannot widen it.
    :param settings: this plugin's own settings, by option ``dest``: what the
        user gave on the command line, or what an embedder passed under the
        plugin's name (``TransportConfig(settings={"name": {...}})``). Parse
        them into typed settings here; raise ``ValueError`` for a bad value.
    :returns: an ``Offer`` (``available=False`` with a ``reason`` to explain why
        not), a list of them when one plugin serves several kinds under their
        own names and ranks, or None when the plugin has nothing to offer.
    :raises Exception: the plugin is broken or misconfigured: the runtime does
        not start (``PluginError``, one line naming the plugin and the message),
        rather than carrying on without a transport the user configured.
    """


@hookspec
def wassh_transport_stop() -> None:
    """The guest has finished and its sockets are closed: release runtime state.

    Called once per runtime on the guest thread; may wait briefly (a relay
    flushing what the guest wrote before it exited), never indefinitely.
    """


@hookspec
async def wassh_getaddrinfo(host: str, family: int, config: TransportConfig) -> NameAnswer:
    """Look a guest's name up for real; the hook of an offer of kind ``NAMES``.

    Called on the owner of the best-ranked available ``NAMES`` offer whose
    ``accepts`` (if any) takes ``ConnectRequest(kind=NAMES, host=host, ...)``.
    It is a coroutine run as a task on the runtime's **trio loop**; the guest
    thread waits for it, and the core cancels it when its deadline passes (the
    connect timeout) or the guest is stopped, so it never needs a timeout of
    its own for the core's sake. Without an available ``NAMES`` offer, names get
    reserved fake addresses that the transport resolves at connect time.

    :param host: a host name as a resolver would look it up (ASCII letters,
        digits, hyphens, underscores, dots; at most 253 bytes). Never an IP
        literal, ``localhost`` or an ``--add-host`` name: the core answers those.
    :param family: ``socket.AF_INET``, ``socket.AF_INET6`` or ``socket.AF_UNSPEC``.
    :returns: a ``NameAnswer``: the addresses in the order the guest should try
        them, never empty, and the canonical name when the answer named one.
    :raises socket.gaierror: with ``socket.EAI_NONAME`` (no such name),
        ``EAI_NODATA`` (the name exists, without an address of that family),
        ``EAI_AGAIN`` (a temporary failure: a timeout, SERVFAIL, no server
        reachable) or ``EAI_FAIL`` (a permanent one: the server refused, a
        malformed answer). Anything else is a plugin bug: logged, and
        ``EAI_FAIL`` to the guest.
    """


# ---------------------------------------------------------------------------
# Per-socket hooks (owner only). ``sock`` is the socket's ``SocketHandle``; the
# transport keeps its per-socket object in ``sock.state``.
# ---------------------------------------------------------------------------


@hookspec
def wassh_sock_connect(sock: SocketHandle[Any], host: str, port: int) -> bool:
    """Start connecting ``sock`` to ``host`` (a name or a literal) and ``port``.

    The core has checked ``host`` against the network policy already. A
    transport that dials addresses resolves ``host`` with
    ``wassh.resolve(sock, host, port)``, which checks each address too, and
    says so with ``Offer(checks_addresses=True)``. For a datagram socket this
    sets the default peer (no packet is sent) and returns True.

    :returns: True when connected already, False when in progress (the core then
        waits on the write handle and calls ``wassh_sock_connect_check``).
    :raises OSError: ``ECONNREFUSED``, ``EHOSTUNREACH``, ``ENETUNREACH``...
    """


@hookspec
def wassh_sock_connect_check(sock: SocketHandle[Any]) -> bool:
    """Advance a connect in progress: True when done, False while pending.

    :raises OSError: the connect failed (the errno lands in ``SO_ERROR``).
    """


@hookspec
def wassh_sock_recv(sock: SocketHandle[Any], buf: memoryview, peek: bool) -> int:
    """Copy received stream bytes into ``buf`` without blocking.

    :returns: the byte count; 0 means end of stream.
    :raises BlockingIOError: nothing buffered yet.
    :raises ConnectionResetError: the peer reset the connection.
    """


@hookspec
def wassh_sock_recvfrom(
    sock: SocketHandle[Any], buf: memoryview, peek: bool
) -> tuple[int, tuple[str, int] | None]:
    """Receive one whole datagram into ``buf`` without blocking.

    :returns: ``(length, (literal, port))``: the datagram's full length (longer
        than ``buf`` when it did not fit: the core reports the truncation and
        the rest is lost) and its source as an IP literal and port (None for
        an AF_UNIX peer).
    :raises BlockingIOError: nothing pending.
    """


@hookspec
def wassh_sock_send(sock: SocketHandle[Any], data: memoryview) -> int:
    """Queue or send ``data`` without blocking; returns the bytes accepted.

    For a datagram socket, one datagram to the connected peer.

    :raises BlockingIOError: no room at all right now.
    :raises BrokenPipeError: the peer is gone.
    """


@hookspec
def wassh_sock_sendto(sock: SocketHandle[Any], data: memoryview, host: str, port: int) -> int:
    """Send one datagram to ``host`` (a name or a literal) and ``port`` without blocking.

    Called for datagram sockets only, possibly before any bind or connect (the
    transport then creates its socket, bound to an ephemeral port, and sets
    ``sock.state``). The core has checked the destination against the policy.

    :returns: the bytes sent (the whole datagram).
    :raises BlockingIOError: no room right now.
    """


@hookspec
def wassh_sock_poll_handle(sock: SocketHandle[Any], write: bool) -> tuple[int, int]:
    """The OS handle and poll(2) mask that become ready with the socket.

    For reading: ready when bytes, end of stream or an error are pending. For
    writing: when there is room to send, or a connect has finished. The core
    polls it for ``poll_oneoff`` and for its own blocking calls.
    """


@hookspec
def wassh_sock_setsockopt(sock: SocketHandle[Any], level: int, name: int, value: int) -> None:
    """Apply an option (host ``socket`` constants) to a live transport.

    The core validates level, name and socket kind first, and keeps the value.
    Options set before ``sock.state`` exists are in ``sock.options``; they are
    passed here again right after ``connect``/``bind``. Default: accept and
    apply nothing (the core's copy answers ``getsockopt``).

    :raises OSError: the option cannot be set now (``EINVAL``...).
    """


@hookspec
def wassh_sock_getsockopt(sock: SocketHandle[Any], level: int, name: int) -> int | None:
    """Read an option from the live transport; None (the default) means "use the core's copy"."""


@hookspec
def wassh_sock_shutdown(sock: SocketHandle[Any], how: int) -> None:
    """Half-close: ``how`` is ``socket.SHUT_RD``, ``SHUT_WR`` or ``SHUT_RDWR``.

    Default: ``EOPNOTSUPP``. The core refuses writes after ``SHUT_WR`` itself.
    """


@hookspec
def wassh_sock_close(sock: SocketHandle[Any]) -> None:
    """Release ``sock.state``; called once, when the last descriptor goes."""


@hookspec
def wassh_sock_getname(sock: SocketHandle[Any], remote: bool) -> tuple[str, int] | None:
    """The local (or, with ``remote``, the peer's) address as ``(IP literal, port)``.

    Only IP literals: a name (or anything ``ipaddress`` does not parse) is a
    plugin bug, logged and treated as None. None (the default) means unknown:
    the core reports the unspecified address locally, and for the peer the
    address the guest dialled.
    """


@hookspec
def wassh_sock_bind(sock: SocketHandle[Any], host: str, port: int) -> None:
    """Bind ``sock`` to ``host`` (a literal, or a name to resolve with
    ``wassh.resolve(..., listening=True)``) and set ``sock.state``.

    The core has checked a literal against the listen policy. Default: ``EOPNOTSUPP``.
    """


@hookspec
def wassh_sock_listen(sock: SocketHandle[Any], backlog: int) -> None:
    """Start listening on a bound stream socket. Default: ``EOPNOTSUPP``."""


@hookspec
def wassh_sock_accept(sock: SocketHandle[Any]) -> object:
    """Take one pending connection without blocking.

    :returns: the new connection's ``state`` (served by the same transport).
    :raises BlockingIOError: nothing pending.
    """
