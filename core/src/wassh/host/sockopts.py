"""Guest socket options (Linux numbering, wasi-libc's SOL_SOCKET) and their host equivalents.

The table only says which options exist and what the host calls them. Whether
a socket of a given family and type takes an option, and the value it reads
back (Linux doubles SO_SNDBUF/SO_RCVBUF and bounds them), is the host kernel's
answer: a live OS socket gives it, and before one exists a stand-in OS socket
of the same family and type does (``Shadow``).
"""

from __future__ import annotations

import socket
import struct
from typing import NamedTuple

SOL_SOCKET = 0x7FFFFFFF
IPPROTO_IP = 0
IPPROTO_TCP = 6
IPPROTO_IPV6 = 41

SO_REUSEADDR = 2
SO_TYPE = 3
SO_ERROR = 4
SO_DONTROUTE = 5
SO_BROADCAST = 6
SO_SNDBUF = 7
SO_RCVBUF = 8
SO_KEEPALIVE = 9
SO_OOBINLINE = 10
SO_REUSEPORT = 15
SO_LINGER = 13  # a struct linger: the SDK passes (seconds << 1) | on
SO_RCVLOWAT = 18
# The host waits for the guest's blocking calls, so these two are its own
# (Socket.rcvtimeo/sndtimeo), never an OS socket's; values cross in milliseconds.
SO_RCVTIMEO = 20
SO_SNDTIMEO = 21
IP_TOS = 1
IP_TTL = 2
IP_MTU_DISCOVER = 10
IPV6_UNICAST_HOPS = 16
IPV6_V6ONLY = 26
IPV6_TCLASS = 67
TCP_NODELAY = 1
TCP_MAXSEG = 2
TCP_KEEPIDLE = 4
TCP_KEEPINTVL = 5
TCP_KEEPCNT = 6
TCP_SYNCNT = 7
TCP_LINGER2 = 8
TCP_DEFER_ACCEPT = 9
TCP_WINDOW_CLAMP = 10
TCP_QUICKACK = 12
TCP_USER_TIMEOUT = 18
TCP_FASTOPEN = 23
TCP_NOTSENT_LOWAT = 25
TCP_CORK = 3


class Option(NamedTuple):
    level: int  # host level
    name: int  # host option name
    boolean: bool


def _host(name: str, linux: int) -> int:
    value = getattr(socket, name, linux)
    return int(value)


def _opt(level: int, name: str, linux: int, boolean: bool = False) -> Option:
    return Option(level, _host(name, linux), boolean)


_SOL = socket.SOL_SOCKET
_IP = socket.IPPROTO_IP
_IP6 = socket.IPPROTO_IPV6
_TCP = socket.IPPROTO_TCP

OPTIONS: dict[tuple[int, int], Option] = {
    (SOL_SOCKET, SO_REUSEADDR): _opt(_SOL, "SO_REUSEADDR", 2, True),
    (SOL_SOCKET, SO_DONTROUTE): _opt(_SOL, "SO_DONTROUTE", 5, True),
    (SOL_SOCKET, SO_BROADCAST): _opt(_SOL, "SO_BROADCAST", 6, True),
    (SOL_SOCKET, SO_SNDBUF): _opt(_SOL, "SO_SNDBUF", 7),
    (SOL_SOCKET, SO_RCVBUF): _opt(_SOL, "SO_RCVBUF", 8),
    (SOL_SOCKET, SO_KEEPALIVE): _opt(_SOL, "SO_KEEPALIVE", 9, True),
    (SOL_SOCKET, SO_OOBINLINE): _opt(_SOL, "SO_OOBINLINE", 10, True),
    (SOL_SOCKET, SO_REUSEPORT): _opt(_SOL, "SO_REUSEPORT", 15, True),
    (SOL_SOCKET, SO_RCVLOWAT): _opt(_SOL, "SO_RCVLOWAT", 18),
    (IPPROTO_IP, IP_TOS): _opt(_IP, "IP_TOS", 1),
    (IPPROTO_IP, IP_TTL): _opt(_IP, "IP_TTL", 2),
    (IPPROTO_IP, IP_MTU_DISCOVER): _opt(_IP, "IP_MTU_DISCOVER", 10),
    (IPPROTO_IPV6, IPV6_UNICAST_HOPS): _opt(_IP6, "IPV6_UNICAST_HOPS", 16),
    (IPPROTO_IPV6, IPV6_V6ONLY): _opt(_IP6, "IPV6_V6ONLY", 26, True),
    (IPPROTO_IPV6, IPV6_TCLASS): _opt(_IP6, "IPV6_TCLASS", 67),
    (IPPROTO_TCP, TCP_NODELAY): _opt(_TCP, "TCP_NODELAY", 1, True),
    (IPPROTO_TCP, TCP_MAXSEG): _opt(_TCP, "TCP_MAXSEG", 2),
    (IPPROTO_TCP, TCP_KEEPIDLE): _opt(_TCP, "TCP_KEEPIDLE", 4),
    (IPPROTO_TCP, TCP_KEEPINTVL): _opt(_TCP, "TCP_KEEPINTVL", 5),
    (IPPROTO_TCP, TCP_KEEPCNT): _opt(_TCP, "TCP_KEEPCNT", 6),
    (IPPROTO_TCP, TCP_CORK): _opt(_TCP, "TCP_CORK", 3),
    (IPPROTO_TCP, TCP_SYNCNT): _opt(_TCP, "TCP_SYNCNT", 7),
    (IPPROTO_TCP, TCP_LINGER2): _opt(_TCP, "TCP_LINGER2", 8),
    (IPPROTO_TCP, TCP_DEFER_ACCEPT): _opt(_TCP, "TCP_DEFER_ACCEPT", 9),
    (IPPROTO_TCP, TCP_WINDOW_CLAMP): _opt(_TCP, "TCP_WINDOW_CLAMP", 10),
    (IPPROTO_TCP, TCP_QUICKACK): _opt(_TCP, "TCP_QUICKACK", 12),
    (IPPROTO_TCP, TCP_USER_TIMEOUT): _opt(_TCP, "TCP_USER_TIMEOUT", 18),
    (IPPROTO_TCP, TCP_FASTOPEN): _opt(_TCP, "TCP_FASTOPEN", 23),
    (IPPROTO_TCP, TCP_NOTSENT_LOWAT): _opt(_TCP, "TCP_NOTSENT_LOWAT", 25),
}


_LINGER = struct.Struct("ii")


def pack_linger(value: int) -> bytes:
    """SO_LINGER's value as the SDK passes it, ``(seconds << 1) | on``, -> struct linger.

    Both halves cross: Linux keeps the seconds of a linger turned off.
    """
    return _LINGER.pack(value & 1, (value & 0x7FFFFFFF) >> 1)


def unpack_linger(raw: bytes) -> int:
    onoff, seconds = _LINGER.unpack(raw[: _LINGER.size])
    return (min(int(seconds), 0x3FFFFFFF) << 1) | (1 if onoff else 0)


def linger_size() -> int:
    return _LINGER.size


class Shadow:
    """A stand-in OS socket that answers option calls before the real one exists.

    Created on first use with every option set so far, so it holds what the
    guest's socket would hold; the kernel validates each value (EINVAL,
    ENOPROTOOPT for a TCP option on UDP, ...) and computes what reads back.
    """

    def __init__(self, family: int, kind_stream: bool, options: dict[tuple[int, int], int]) -> None:
        self.sock = socket.socket(family, socket.SOCK_STREAM if kind_stream else socket.SOCK_DGRAM)
        for (level, name), value in options.items():
            try:
                self.sock.setsockopt(level, name, value)
            except OSError:  # refused when it was set: the guest heard so then
                pass

    def set(self, opt: Option, value: int) -> None:
        self.sock.setsockopt(opt.level, opt.name, value)

    def get(self, opt: Option) -> int:
        return int(self.sock.getsockopt(opt.level, opt.name))

    def close(self) -> None:
        self.sock.close()
