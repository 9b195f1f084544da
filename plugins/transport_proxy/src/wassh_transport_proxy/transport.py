"""The proxy transport (``ProxyTransport``): TCP through a SOCKS5 or HTTP CONNECT proxy.

A connect opens a non-blocking OS socket to the proxy and returns at once;
``wassh_sock_connect_check`` then drives the handshake (``protocol``) one
non-blocking step at a time, on the guest thread, until the tunnel is up
(``tunnel.Tunnel``).
While it runs, the guest waits on a ``Waker``: the socket's next event (room
to send, the proxy's reply) or the connect deadline. Once the tunnel is up the
connection is that OS socket, served by ``wassh.os_socket.OSSocketHooks``:
the handshake read exactly its replies, so whatever the destination sent
right behind them (an HTTP proxy may deliver a server's first bytes in the
same segment as its ``200``) is still in the kernel's buffer for the guest.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import re
import select
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from wassh import (
    STREAM,
    ConnectRequest,
    NetworkPolicy,
    Offer,
    PluginOptions,
    SocketHandle,
    TransportConfig,
    hookimpl,
    lookup_host,
    os_socket,
    resolve,
)

if TYPE_CHECKING:
    from .protocol import Target
    from .settings import ProxySettings
    from .tunnel import ProxyConnection

    Handle = SocketHandle[ProxyConnection]


log = logging.getLogger("wassh.proxy")

# Above direct TCP (100), below a relay (1000): a configured relay still comes first.
RANK = 500

# What inet_aton reads as an IPv4 address (127.1, 0x7f.1): the policy reads
# such a host as that address, so the proxy must get the address too.
_INET_ATON = re.compile(r"[0-9a-fA-FxX.]+")


class ProxyClaim:
    """``Offer.accepts``: every TCP connect, except those ``--proxy-bypass`` matches.

    A rule even without bypass patterns: a socket bound first (through another
    transport) still connects through the proxy, as with a relay.
    """

    def __init__(self, bypass: NetworkPolicy | None) -> None:
        self.bypass = bypass

    def __call__(self, request: ConnectRequest) -> bool:
        if request.family not in (socket.AF_INET, socket.AF_INET6):
            return False
        if self.bypass is None:
            return True
        # The bypass patterns are a policy's allow rules: "allowed" means bypassed.
        verdict = self.bypass.destination_verdict(
            request.host, request.port, addresses_checked=False
        )
        return verdict is not None


def _literal(host: str) -> str | None:
    """``host`` as an IP literal if it is one (as a resolver reads numbers), else None."""
    text = host.split("%", 1)[0]
    if text.endswith(".") and not text.endswith(".."):
        text = text[:-1]
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(text)
    except ValueError:
        if not _INET_ATON.fullmatch(text):
            return None
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


def _foreign(conn: socket.socket, level: int) -> bool:
    """An IPv6 option on the socket to an IPv4 proxy: nothing to apply it to."""
    return level == socket.IPPROTO_IPV6 and conn.family == socket.AF_INET


class ProxyTransport(os_socket.OSSocketHooks["ProxyConnection"]):
    """TCP through the proxy ``--proxy URL`` names; one instance per runtime."""

    name = "proxy"

    def __init__(self) -> None:
        self.settings: ProxySettings | None = None
        self.hosts: Mapping[str, list[str]] = {}
        self._addresses: list[tuple[int, Any]] | None = None

    # -- start-up ----------------------------------------------------------------------
    @hookimpl
    def wassh_addoption(self, options: PluginOptions) -> None:
        options.add(
            "--proxy",
            dest="url",
            metavar="URL",
            help="reach TCP servers through a proxy: socks5h://[USER:PASS@]HOST[:PORT] "
            "(names resolved by the proxy), socks5://... (names resolved here) "
            "or http://[USER:PASS@]HOST:PORT (HTTP CONNECT)",
        )
        options.add(
            "--proxy-bypass",
            dest="bypass",
            action="append",
            metavar="PATTERN",
            help="connect directly, not through the proxy, to destinations matching "
            "HOST[:PORTS] (the --connect-allow syntax; repeat or separate with commas)",
        )

    @hookimpl
    def wassh_transport_offer(
        self, config: TransportConfig, settings: Mapping[str, object]
    ) -> Offer:
        if not settings:
            return Offer(
                name="proxy",
                kinds=frozenset({STREAM}),
                rank=RANK,
                available=False,
                reason="no proxy configured (--proxy URL)",
            )
        from .settings import ProxySettings

        # A bad URL raises: the runtime does not start, rather than connecting
        # directly when the user asked for a proxy.
        self.settings = ProxySettings.from_settings(settings)
        self.hosts = config.hosts
        log.info("connecting through %s", self.settings)
        return Offer(
            name="proxy",
            kinds=frozenset({STREAM}),
            rank=RANK,
            accepts=ProxyClaim(self.settings.bypass_policy()),
            # socks5:// resolves with wassh.resolve, which checks every address;
            # socks5h:// and http:// leave names to the proxy: the name is checked.
            checks_addresses=self.settings.resolves_locally,
        )

    # -- connecting --------------------------------------------------------------------
    @hookimpl
    def wassh_sock_connect(self, sock: Handle, host: str, port: int) -> bool:
        settings = self.settings
        if settings is None:
            raise OSError(errno.ENETUNREACH, "proxy transport used without its offer")
        # Loaded at the first proxied connect: a run without a proxy never needs them.
        from .protocol import HandshakeError, handshake
        from .tunnel import Tunnel, open_connection

        target = self._target(sock, host, port)
        addresses = self._proxy_addresses(sock)
        label = f"{settings} -> {target}"
        try:
            steps = handshake(settings.scheme, target, settings.username, settings.password)
        except HandshakeError as exc:
            log.warning("%s: %s", label, exc.strerror)
            raise
        tunnel = Tunnel(steps, list(addresses), sock.connect_timeout, label, sock.connect_deadline)
        try:
            conn = open_connection(sock, addresses[0][0])
        except BaseException:
            tunnel.close()
            raise
        conn.tunnel = tunnel
        conn.peer = (target.host, target.port) if target.address is not None else None
        sock.state = conn  # from here on the core closes it, whatever happens
        if tunnel.advance(sock):  # never all at once: the proxy must answer first
            self._up(sock)
            return True
        return False

    @hookimpl
    def wassh_sock_connect_check(self, sock: Handle) -> bool:
        tunnel = sock.state.tunnel
        if tunnel is None:
            return True
        if not tunnel.advance(sock):
            return False
        self._up(sock)
        return True

    def _up(self, sock: Handle) -> None:
        conn = sock.state
        tunnel = conn.tunnel
        if tunnel is not None:
            log.debug("%s: tunnel open (proxy connects from %s)", tunnel.label, tunnel.bound)
            if tunnel.bound is not None:
                from .tunnel import in_family

                conn.local = in_family(*tunnel.bound, sock.family)
            tunnel.close()
            conn.tunnel = None

    def _target(self, sock: Handle, host: str, port: int) -> Target:
        """What the proxy is asked to connect to.

        socks5://: ``wassh.resolve`` (``--add-host``, then DNS; every address
        checked by the policy). socks5h:// and http://: literals as they are,
        ``--add-host`` names as their address (resolve checks it), other names
        unresolved, as the core's policy checked them.
        """
        from .protocol import Target
        from .settings import is_hostname

        assert self.settings is not None
        if self.settings.resolves_locally or host in self.hosts:
            return Target(str(resolve(sock, host, port)[0]).split("%", 1)[0], port)
        literal = _literal(host)
        if literal is not None:
            return Target(literal, port)
        if not is_hostname(host):
            raise OSError(errno.EHOSTUNREACH, f"{host!r} is not a name a proxy can resolve")
        return Target(host, port)

    def _proxy_addresses(self, sock: Handle) -> list[tuple[int, Any]]:
        """The proxy's socket addresses, looked up at the first connect and kept.

        Through the host's own resolver (``wassh.lookup_host``: the proxy is the
        user's, not a destination of the guest's), off the guest thread, so the
        connect timeout and cancellation end a lookup that hangs.
        """
        if self._addresses is not None:
            return self._addresses
        assert self.settings is not None
        host, port = self.settings.host, self.settings.port
        names = self.hosts.get(host, [host])
        found: list[tuple[int, Any]] = []
        try:
            for name in names:
                for entry in lookup_host(sock, name, port):
                    if entry not in found:
                        found.append(entry)
        except OSError as exc:
            if exc.errno == errno.ETIMEDOUT:
                raise
            log.warning("proxy %s: cannot resolve %r: %s", self.settings, host, exc.strerror)
            raise OSError(errno.ECONNREFUSED, f"cannot resolve the proxy {host!r}") from exc
        if not found:
            log.warning("proxy %s: %r has no IPv4 or IPv6 address", self.settings, host)
            raise OSError(errno.ECONNREFUSED, f"the proxy {host!r} has no address")
        self._addresses = found
        return found

    # -- the connection ----------------------------------------------------------------
    @hookimpl
    def wassh_sock_poll_handle(self, sock: Handle, write: bool) -> tuple[int, int]:
        conn: ProxyConnection = sock.state
        tunnel = conn.tunnel
        if tunnel is not None:  # the handshake's event or its deadline
            return tunnel.poll_fd(conn), select.POLLIN
        return conn.fileno(), select.POLLOUT if write else select.POLLIN

    @hookimpl
    def wassh_sock_setsockopt(self, sock: Handle, level: int, name: int, value: int) -> None:
        conn: ProxyConnection = sock.state
        if not _foreign(conn, level):  # else the core's copy answers getsockopt
            conn.setsockopt(level, name, value)

    @hookimpl
    def wassh_sock_getsockopt(self, sock: Handle, level: int, name: int) -> int | None:
        conn: ProxyConnection = sock.state
        return None if _foreign(conn, level) else conn.getsockopt(level, name)

    @hookimpl
    def wassh_sock_getname(self, sock: Handle, remote: bool) -> tuple[str, int] | None:
        conn: ProxyConnection = sock.state
        # The connection's ends as the destination sees them, never the hop to
        # the proxy. Remote: the destination when it is an address; for a name,
        # None, and the core reports the address the guest dialled. Local: the
        # proxy's end, when a SOCKS5 proxy says (BND.ADDR); else None, the
        # unspecified address, as the local end is on the proxy.
        return conn.peer if remote else conn.local

    @hookimpl
    def wassh_sock_close(self, sock: Handle) -> None:
        conn: ProxyConnection = sock.state
        if conn.tunnel is not None:
            conn.tunnel.close()
            conn.tunnel = None
        conn.close()
