"""Turning the name a guest connected to into a socket address, for transports that dial."""

from __future__ import annotations

import errno
import ipaddress
import socket
from typing import Any

from .plugins import TransportConfig


def _fits(family: int, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if family == socket.AF_INET:
        return str(ip) if ip.version == 4 else None
    return str(ip) if ip.version == 6 else None


def resolve(config: TransportConfig, host: str, port: int, family: int) -> tuple[Any, ...]:
    """Resolve ``host`` for a socket of ``family``: literals, ``--add-host`` names, then DNS.

    Lookups are restricted to the socket's family (an AF_INET6 socket resolves
    AAAA only), which keeps OpenSSH's IPv6-then-IPv4 fallback meaningful.
    Raises ``OSError(EHOSTUNREACH)`` when nothing fits.
    """
    candidates = config.hosts.get(host)
    texts = candidates if candidates is not None else [host]
    for text in texts:
        try:
            ip = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            continue
        fitted = _fits(family, ip)
        if fitted is not None:
            return (fitted, port) if family == socket.AF_INET else (fitted, port, 0, 0)
    if candidates is not None:
        raise OSError(errno.EHOSTUNREACH, f"{host} has no address of this family")
    try:
        infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(errno.EHOSTUNREACH, f"cannot resolve {host}: {exc}") from exc
    if not infos:
        raise OSError(errno.EHOSTUNREACH, f"cannot resolve {host}")
    return infos[0][4]
