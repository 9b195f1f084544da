"""Where a guest may listen: loopback always, other addresses only when allowed.

A listening socket on a public address exposes the guest to the network, so
the embedder opts in per address (``listen_allow``, ``wassh run --listen-allow``):
``ADDR`` allows every port on that address, ``ADDR:PORT`` (``[V6]:PORT``) one port.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_allow(entry: str) -> tuple[IPAddress, int | None]:
    """``"0.0.0.0"``, ``"0.0.0.0:8080"``, ``"::"``, ``"[::]:8080"`` -> (address, port or None).

    :raises ValueError: not an address, or a port outside 0..65535.
    """
    text = entry.strip()
    port: str | None = None
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"bad listen address {entry!r}")
        text, port = host, rest[1:] or None
    elif text.count(":") == 1:
        text, port = text.split(":")
    address = ipaddress.ip_address(text)
    if port is None:
        return address, None
    if not port.isdigit() or int(port) > 65535:
        raise ValueError(f"bad port in listen address {entry!r}")
    return address, int(port)


def is_loopback(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def allowed(entries: Iterable[str], host: str, port: int) -> bool:
    """May the guest bind ``host`` (a literal) and ``port``?

    Bad entries allow nothing (the plugin's offer warns about them once).
    """
    address = ipaddress.ip_address(host.split("%", 1)[0])
    if is_loopback(address):
        return True
    for entry in entries:
        try:
            want, want_port = parse_allow(entry)
        except ValueError:
            continue
        if want == address and (want_port is None or want_port == port):
            return True
    return False
