"""Turning the name a guest connected to into a socket address, for transports that dial."""

from __future__ import annotations

import errno
import ipaddress
import math
import socket
import time
from typing import TYPE_CHECKING, Any

from .policy import IPAddress, parse_address

if TYPE_CHECKING:
    from .handle import SocketHandle


class UnresolvedName(OSError):
    """The host cannot resolve the name at all (``EHOSTUNREACH`` to the guest).

    The core then offers the connect to a transport that resolves elsewhere (a
    relay), if one is configured.
    """

    def __init__(self, message: str) -> None:
        super().__init__(errno.EHOSTUNREACH, message)


def _fits(family: int, address: IPAddress) -> bool:
    return address.version == (4 if family == socket.AF_INET else 6)


def _sockaddr(family: int, address: IPAddress, port: int) -> tuple[Any, ...]:
    return (str(address), port) if family == socket.AF_INET else (str(address), port, 0, 0)


def resolve(
    sock: SocketHandle[Any], host: str, port: int, *, listening: bool = False
) -> tuple[Any, ...]:
    """Resolve ``host`` for ``sock``: literals, ``--add-host`` names, then a lookup.

    The lookup goes to the configured resolver plugin (``--resolver``), or else
    to the host's own resolver; never both: a configured resolver that fails
    fails the connect. It runs off the guest thread and ends with the connect
    (the connect timeout counts from the guest's ``connect``), when the guest is
    stopped, or with EINTR for a signal, so no resolver can hang a guest.

    Every address is checked against the runtime's network policy (the connect
    rules, or the listen rules when ``listening``) and the first one allowed is
    returned, so a name can never lead a transport to a denied address. Lookups
    are restricted to the socket's family (an AF_INET6 socket resolves AAAA
    only), which keeps OpenSSH's IPv6-then-IPv4 fallback meaningful.
    Raises ``OSError(EHOSTUNREACH)`` when nothing fits, ``Denied`` (EACCES)
    when everything that fits is denied, ``OSError(ETIMEDOUT)`` when the
    lookup outlasts the connect timeout.
    """
    family = sock.family
    process = sock._process  # the runtime's, never the plugin's copy
    policy = process.transports.policy
    config = process.transports.config
    candidates = config.hosts.get(host)
    addresses = _literals(candidates if candidates is not None else [host])
    if not addresses and candidates is None and parse_address(host) is None:
        addresses = _lookup(sock, host, port, family)
    fitting = [a for a in addresses if _fits(family, a)]
    if not fitting:
        raise OSError(errno.EHOSTUNREACH, f"{host} has no address of this family")
    names = process.names
    for address in fitting:
        if listening:
            if address is fitting[-1]:
                policy.check_listen(address, port)  # raises for the last one
            elif not policy.allows_listen(address, port):
                continue
        elif address is fitting[-1]:
            names.check_address(policy, host, address, port)
        elif not names.allows_address(policy, host, address, port):
            continue
        return _sockaddr(family, address, port)
    raise AssertionError("unreachable: the last candidate raises when denied")


def lookup_host(sock: SocketHandle[Any], name: str, port: int) -> list[tuple[int, tuple[Any, ...]]]:
    """The host's own resolver, for a name the user configured (a proxy's host).

    Not for the guest's destinations: no policy check and no resolver plugin.
    Like ``resolve``, it runs off the guest thread and ends with the connect,
    when the guest is stopped, or with EINTR for a signal.
    Returns ``[(socket.AF_INET or AF_INET6, sockaddr), ...]`` without duplicates.
    Raises ``OSError``: ``EHOSTUNREACH`` for a name that does not resolve,
    ``ETIMEDOUT`` past the deadline.
    """
    try:
        infos = sock._process.names.system_lookup(name, port, socket.AF_UNSPEC, _deadline(sock))
    except socket.gaierror as exc:
        raise UnresolvedName(f"cannot resolve {name}: {exc.strerror}") from exc
    except UnicodeError as exc:
        raise UnresolvedName(f"cannot resolve {name!r}: {exc}") from exc
    found: list[tuple[int, tuple[Any, ...]]] = []
    for family, _, _, _, sockaddr in infos:
        entry = (int(family), tuple(sockaddr))
        if family in (socket.AF_INET, socket.AF_INET6) and entry not in found:
            found.append(entry)
    return found


def _deadline(sock: SocketHandle[Any]) -> float:
    """When a lookup for ``sock`` gives up: with its connect, or one connect timeout from now."""
    deadline = sock._connect_deadline
    return deadline if deadline != math.inf else time.monotonic() + sock.connect_timeout


def _literals(texts: list[str]) -> list[IPAddress]:
    found: list[IPAddress] = []
    for text in texts:
        try:  # as written: an IPv4-mapped address stays IPv6 for an AF_INET6 socket
            found.append(ipaddress.ip_address(text.split("%", 1)[0]))
        except ValueError:
            address = parse_address(text)  # 127.1, 2130706433: what resolvers accept
            if address is not None:
                found.append(address)
    return found


def _lookup(sock: SocketHandle[Any], host: str, port: int, family: int) -> list[IPAddress]:
    process = sock._process
    deadline = _deadline(sock)
    owner = process.transports.resolver(host, family)
    if owner is not None:
        try:
            answer = process.names.lookup(owner, host, family, deadline)
        except socket.gaierror as exc:
            if time.monotonic() >= deadline:
                raise OSError(errno.ETIMEDOUT, f"no address for {host} in time") from exc
            raise UnresolvedName(f"cannot resolve {host}: {exc.strerror}") from exc
        return [ipaddress.ip_address(packed) for _, packed in answer.addresses]
    if not process.transports.config.host_dns:
        raise UnresolvedName(f"{host} is not an --add-host name and host DNS is off")
    try:
        infos = process.names.system_lookup(host, port, family, deadline)
    except socket.gaierror as exc:
        raise UnresolvedName(f"cannot resolve {host}: {exc.strerror}") from exc
    except UnicodeError as exc:  # a name the IDNA codec refuses
        raise UnresolvedName(f"cannot resolve {host!r}: {exc}") from exc
    found = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found
