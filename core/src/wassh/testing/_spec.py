"""What a transport author tells the kit: ``TransportUnderTest`` and ``Capabilities``."""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points as find_entry_points
from typing import Any, Literal

from ..plugins import ENTRY_POINT_GROUP, TransportConfig

Role = Literal["peer", "refused", "unreachable", "listen", "udp-peer", "udp-refused"]


@dataclass(frozen=True)
class Endpoint:
    """Where a conformance case sends the guest: a loopback server the kit started.

    ``role`` says what is there:

    * ``peer``: the kit's TCP peer server (it echoes, sinks, sends, stalls or
      resets, as each connection's first line asks);
    * ``refused``: a TCP port that is bound but not listening (connects are refused);
    * ``unreachable``: an address no TCP connect can reach (``224.0.0.1``:
      Linux answers ``ENETUNREACH`` at once);
    * ``listen``: the address the guest binds in the listening cases (port 0);
    * ``udp-peer``: the kit's UDP echo server; ``udp-refused``: a UDP port with no socket.
    """

    role: Role
    host: str
    port: int

    @property
    def family(self) -> int:
        return socket.AF_INET6 if ":" in self.host else socket.AF_INET


@dataclass(frozen=True)
class ConnectFailure:
    """How a failed connect reaches the guest.

    ``errno`` is the host ``errno`` constant (``errno.ECONNREFUSED``); the
    guest sees the same name. ``reported_at``: ``"connect"`` when ``connect``
    fails (and a non-blocking connect's ``SO_ERROR`` holds the errno), or
    ``"io"`` when ``connect`` succeeds and the first ``recv`` fails with it
    (a relay that answers before it has tried the destination).
    """

    errno: int
    reported_at: Literal["connect", "io"] = "connect"

    @property
    def name(self) -> str:
        return errno.errorcode[self.errno]


@dataclass(frozen=True)
class Capabilities:
    """What the transport does where transports legitimately differ.

    Every case asserts the declared behaviour; nothing is skipped because a
    transport lacks something. The defaults are a direct TCP connection's.

    :param half_close: ``True``: ``shutdown(SHUT_WR)`` reaches the peer as end
        of stream while the guest can still read what the peer sends after it.
        ``False`` (a relay protocol without half-close): the peer sees nothing
        until ``close``, and the guest still reads. ``"ends-connection"`` (an
        HTTP CONNECT proxy that closes the tunnel): the peer sees end of stream,
        and the guest's reading ends too (end of stream or ``ECONNRESET``),
        possibly before all the peer sent. Writes after the shutdown fail
        ``EPIPE`` in every case.
    :param refused: a connect to a port nothing listens on.
    :param unreachable: a connect to an address no route reaches.
    :param reset: the errno ``recv`` reports when the peer resets the
        connection (RST); ``None``: the transport reports it as end of stream.
    :param local_address: ``getsockname`` on a connected socket reports the
        address the peer sees the connection come from. ``False``: the
        unspecified address of the family with port 0 (the connection's local
        end is elsewhere, on a relay or proxy).
    :param ipv6: connects to ``::1`` work. ``False``: they fail with an errno.
    :param backpressure: a peer that stops reading eventually blocks the guest's
        send. ``False`` (a relay that queues without bound, as websockify does):
        128 MiB go out without blocking.
    :param udp_refused: for datagram transports, the errno a connected UDP
        socket's ``recv`` reports after sending to a closed port (Linux's ICMP
        answer); ``None``: nothing is reported (``recv`` would block).
    """

    half_close: bool | Literal["ends-connection"] = True
    refused: ConnectFailure = ConnectFailure(errno.ECONNREFUSED)
    unreachable: ConnectFailure = ConnectFailure(errno.ENETUNREACH)
    reset: int | None = errno.ECONNRESET
    local_address: bool = True
    ipv6: bool = True
    backpressure: bool = True
    udp_refused: int | None = errno.ECONNREFUSED


@dataclass(frozen=True)
class TransportUnderTest:
    """The transport a conformance class runs against, and how to load and configure it.

    :param name: the plugin's registered name (its entry point name, or the
        ``name`` attribute of a plugin object). The kit checks that this plugin
        serves the sockets of each case.
    :param plugins: plugin objects, classes or modules to register, as an
        embedder passes them to ``wassh.run(plugins=...)``.
    :param entry_points: names of installed ``wassh`` entry points to load;
        every other installed entry point is blocked. With neither ``plugins``
        nor ``entry_points``, the entry point called ``name`` is loaded.
        Either way only the transport under test (and what you list) is
        loaded, so no other transport can serve a case behind its back.
    :param settings: this plugin's own settings (what ``TransportConfig(settings=
        {name: ...})`` carries), used when ``config_for`` is not given.
    :param config_for: the runtime configuration for a case whose guest dials
        (or binds) ``endpoint``. Give it when the configuration depends on the
        destination (a relay with a fixed target) or needs core settings.
    :param expects: the transport's declared behaviour where transports differ.
    """

    name: str
    plugins: Sequence[object] = ()
    entry_points: Sequence[str] = ()
    settings: Mapping[str, object] = field(default_factory=dict)
    config_for: Callable[[Endpoint], TransportConfig] | None = None
    expects: Capabilities = Capabilities()

    def config(self, endpoint: Endpoint) -> TransportConfig:
        """A fresh ``TransportConfig`` for a case that reaches ``endpoint``."""
        if self.config_for is not None:
            config = self.config_for(endpoint)
            if not isinstance(config, TransportConfig):
                raise TypeError(
                    f"config_for({endpoint}) returned {config!r}, not a wassh.TransportConfig"
                )
            return config
        settings: dict[str, Mapping[str, object]] = {}
        if self.settings:
            settings[self.name] = dict(self.settings)
        return TransportConfig(settings=settings)

    def run_options(self) -> dict[str, Any]:
        """The ``wassh.run``/``wassh.prepare`` keywords that load this transport alone."""
        return load_alone(self.name, self.plugins, self.entry_points)


def load_alone(
    name: str, plugins: Sequence[object], entry_points: Sequence[str], beside: Sequence[str] = ()
) -> dict[str, Any]:
    """The ``wassh.run`` keywords that load ``plugins`` and the entry points ``entry_points``
    (``name`` when neither is given), with the installed entry points ``beside``, and
    block every other installed entry point."""
    wanted = list(entry_points)
    if not wanted and not plugins:
        wanted = [name]
    wanted += [n for n in beside if n not in wanted]
    if not wanted:
        return {"plugins": list(plugins), "entry_points": False}
    installed = {ep.name for ep in find_entry_points(group=ENTRY_POINT_GROUP)}
    missing = sorted(set(wanted) - installed)
    if missing:
        raise LookupError(
            f"no installed wassh entry point named {', '.join(map(repr, missing))} "
            f"(installed: {', '.join(sorted(installed)) or 'none'})"
        )
    return {
        "plugins": list(plugins),
        "entry_points": True,
        "block": sorted(installed - set(wanted)),
    }
