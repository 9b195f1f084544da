"""Guest socket options (wasi-libc numbering) and their host equivalents."""

from __future__ import annotations

import socket
from typing import NamedTuple

SOL_SOCKET = 0x7FFFFFFF
IPPROTO_IP = 0
IPPROTO_TCP = 6
IPPROTO_IPV6 = 41

SO_REUSEADDR = 2
SO_TYPE = 3
SO_ERROR = 4
SO_KEEPALIVE = 9
IP_TOS = 1
IP_MTU_DISCOVER = 10
IPV6_V6ONLY = 26
IPV6_TCLASS = 67
TCP_NODELAY = 1


class Option(NamedTuple):
    level: int  # host level
    name: int  # host option name
    boolean: bool
    kinds: frozenset[str]  # which socket kinds accept it
    families: frozenset[int]  # which host families accept it


_IP = frozenset({socket.AF_INET, socket.AF_INET6})
_V6 = frozenset({socket.AF_INET6})
_V4 = frozenset({socket.AF_INET})
_STREAM = frozenset({"stream"})
_BOTH = frozenset({"stream", "dgram"})

OPTIONS: dict[tuple[int, int], Option] = {
    (SOL_SOCKET, SO_KEEPALIVE): Option(socket.SOL_SOCKET, socket.SO_KEEPALIVE, True, _STREAM, _IP),
    (SOL_SOCKET, SO_REUSEADDR): Option(socket.SOL_SOCKET, socket.SO_REUSEADDR, True, _BOTH, _IP),
    (IPPROTO_IP, IP_TOS): Option(socket.IPPROTO_IP, socket.IP_TOS, False, _BOTH, _V4),
    (IPPROTO_IP, IP_MTU_DISCOVER): Option(
        socket.IPPROTO_IP, getattr(socket, "IP_MTU_DISCOVER", 10), False, _BOTH, _V4
    ),
    (IPPROTO_IPV6, IPV6_V6ONLY): Option(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, True, _BOTH, _V6),
    (IPPROTO_IPV6, IPV6_TCLASS): Option(
        socket.IPPROTO_IPV6, getattr(socket, "IPV6_TCLASS", 67), False, _BOTH, _V6
    ),
    (IPPROTO_TCP, TCP_NODELAY): Option(socket.IPPROTO_TCP, socket.TCP_NODELAY, True, _STREAM, _IP),
}
