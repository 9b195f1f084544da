"""Turning the name a guest connected to into a socket address, for transports that dial."""

from __future__ import annotations

import errno
import ipaddress
import socket
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
    """Resolve ``host`` for ``sock``: literals, ``--add-host`` names, then DNS.

    Every address is checked against the runtime's network policy (the connect
    rules, or the listen rules when ``listening``) and the first one allowed is
    returned, so a name can never lead a transport to a denied address. Lookups
    are restricted to the socket's family (an AF_INET6 socket resolves AAAA
    only), which keeps OpenSSH's IPv6-then-IPv4 fallback meaningful.
    Raises ``OSError(EHOSTUNREACH)`` when nothing fits, ``Denied`` (EACCES)
    when everything that fits is denied.
    """
    family = sock.family
    transports = sock._process.transports  # the runtime's, never the plugin's copy
    policy = transports.policy
    config = transports.config
    candidates = config.hosts.get(host)
    addresses = _literals(candidates if candidates is not None else [host])
    if not addresses and candidates is None and parse_address(host) is None:
        if not config.host_dns:
            raise UnresolvedName(f"{host} is not an --add-host name and host DNS is off")
        addresses = _lookup(host, port, family)
    fitting = [a for a in addresses if _fits(family, a)]
    if not fitting:
        raise OSError(errno.EHOSTUNREACH, f"{host} has no address of this family")
    for address in fitting:
        if listening:
            if address is fitting[-1]:
                policy.check_listen(address, port)  # raises for the last one
            elif not policy.allows_listen(address, port):
                continue
        elif address is fitting[-1]:
            policy.check_address(host, address, port)
        elif not policy.allows_address(host, address, port):
            continue
        return _sockaddr(family, address, port)
    raise AssertionError("unreachable: the last candidate raises when denied")


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


def _lookup(host: str, port: int, family: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UnresolvedName(f"cannot resolve {host}: {exc}") from exc
    except UnicodeError as exc:  # a name the IDNA codec refuses
        raise UnresolvedName(f"cannot resolve {host!r}: {exc}") from exc
    found = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found
