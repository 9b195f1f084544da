"""The two handshakes, written without I/O: SOCKS5 and HTTP CONNECT.

Each handshake is a generator that yields what it needs next, ``Send(data)``,
``Read(size)`` (exactly that many bytes) or ``ReadHead(limit)`` (an HTTP head,
up to and including its empty line), and is sent the bytes read. The
transport drives it over a non-blocking socket (``transport.Tunnel``); the
tests drive it over anything. A failed handshake raises ``HandshakeError``
with the errno the guest sees and one line for the log.

* SOCKS5: RFC 1928 (greeting, CONNECT request, reply) and RFC 1929
  (user name and password). Names travel as ATYP 3, literals as ATYP 1 or 4.
* HTTP CONNECT: RFC 9110 section 9.3.6, ``Proxy-Authorization: Basic``
  (RFC 7617). Interim 1xx responses are skipped; any 2xx opens the tunnel and
  its header fields are ignored, as section 9.3.6 requires.

Every length a proxy sends is checked before it is used, and an HTTP head is
capped (``HEAD_LIMIT``): the proxy is not trusted any more than a server is.
"""

from __future__ import annotations

import base64
import errno
import ipaddress
import re
from collections.abc import Generator
from dataclasses import dataclass
from typing import NamedTuple

from .settings import bracket

HEAD_LIMIT = 16 * 1024  # bytes of HTTP head (interim responses included) a proxy may send

SOCKS_VERSION = 5
NO_AUTH, GSSAPI, USERPASS, NO_ACCEPTABLE = 0x00, 0x01, 0x02, 0xFF
CMD_CONNECT = 0x01
ATYP_IPV4, ATYP_NAME, ATYP_IPV6 = 0x01, 0x03, 0x04

# RFC 1928 section 6: the reply field, as the errno a Linux guest would see for
# the same failure on a direct connect. ``routine`` marks the ordinary outcomes
# of a connect (logged at INFO); the rest say something about the proxy
# (logged as warnings).
SOCKS_REPLIES: dict[int, tuple[int, str, bool]] = {
    0x01: (errno.ECONNREFUSED, "general SOCKS server failure", False),
    0x02: (errno.EACCES, "connection not allowed by the proxy's rules", False),
    0x03: (errno.ENETUNREACH, "network unreachable", True),
    0x04: (errno.EHOSTUNREACH, "host unreachable", True),
    0x05: (errno.ECONNREFUSED, "connection refused", True),
    0x06: (errno.ETIMEDOUT, "TTL expired", True),
    0x07: (errno.EIO, "command not supported", False),
    0x08: (errno.EIO, "address type not supported", False),
}

_STATUS_LINE = re.compile(rb"HTTP/1\.[0-9] ([0-9]{3})(?: ([^\r\n]*))?\r?\n")
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # a field name (RFC 9110 5.1)
_INTERIM = frozenset({100, 102, 103})  # 101 would switch protocols: not a tunnel
_SHOWN = re.compile(r"[^\x20-\x7e]")


class Send(NamedTuple):
    data: bytes


class Read(NamedTuple):
    size: int


class ReadHead(NamedTuple):
    limit: int


Op = Send | Read | ReadHead
# A handshake's value, once done: where the destination sees the connection come
# from, when the proxy says (SOCKS5's BND.ADDR and BND.PORT), as (literal, port).
Bound = tuple[str, int] | None
Handshake = Generator[Op, bytes, Bound]


class HandshakeError(OSError):
    """The handshake failed: ``errno`` for the guest, the message for the log."""

    def __init__(self, code: int, message: str, *, routine: bool = False) -> None:
        super().__init__(code, message)
        self.routine = routine  # an ordinary connect outcome (refused...), not a proxy problem


@dataclass(frozen=True)
class Target:
    """Where the tunnel goes: a host name, or an IP literal (``address`` set)."""

    host: str
    port: int

    @property
    def address(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None

    def __str__(self) -> str:
        return f"{bracket(self.host)}:{self.port}"


def shown(text: bytes | str, limit: int = 80) -> str:
    """Text a proxy sent, safe for one log line: printable ASCII, shortened."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    text = _SHOWN.sub("?", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def socks_address(target: Target) -> bytes:
    """ATYP, DST.ADDR and DST.PORT of a SOCKS5 request."""
    port = target.port.to_bytes(2, "big")
    address = target.address
    if address is not None:
        atyp = ATYP_IPV4 if address.version == 4 else ATYP_IPV6
        return bytes([atyp]) + address.packed + port
    name = target.host.encode("ascii")
    if not 1 <= len(name) <= 255:
        raise HandshakeError(
            errno.EINVAL, f"a SOCKS5 host name has 1 to 255 bytes, not {len(name)}"
        )
    return bytes([ATYP_NAME, len(name)]) + name + port


def socks5(target: Target, username: str | None, password: str | None) -> Handshake:
    """RFC 1928 CONNECT, with RFC 1929 authentication when a user name is given.

    :raises HandshakeError: right away, for a target SOCKS5 cannot carry.
    """
    return _socks5(socks_address(target), username, password)


def _socks5(request: bytes, username: str | None, password: str | None) -> Handshake:
    offered = bytes([NO_AUTH, USERPASS]) if username is not None else bytes([NO_AUTH])
    yield Send(bytes([SOCKS_VERSION, len(offered)]) + offered)
    version, method = yield Read(2)
    if version != SOCKS_VERSION:
        raise HandshakeError(
            errno.EPROTO, f"not a SOCKS5 proxy: its first reply starts with version {version}"
        )
    if method == NO_ACCEPTABLE:
        why = (
            "it accepts neither no authentication nor a user name and password"
            if username is not None
            else "it wants authentication (give user:password@ in the proxy URL)"
        )
        raise HandshakeError(errno.EACCES, f"the proxy refused every method offered: {why}")
    if method not in offered:
        raise HandshakeError(
            errno.EPROTO, f"the proxy chose authentication method {method:#04x}, not one offered"
        )
    if method == USERPASS:
        assert username is not None and password is not None
        user, secret = username.encode(), password.encode()
        yield Send(bytes([1, len(user)]) + user + bytes([len(secret)]) + secret)
        version, status = yield Read(2)
        # RFC 1929 says version 1; some servers answer with the SOCKS version.
        if version not in (1, SOCKS_VERSION):
            raise HandshakeError(errno.EPROTO, f"bad RFC 1929 reply: version {version}, expected 1")
        if status != 0:
            raise HandshakeError(
                errno.EACCES,
                f"the proxy refused the user name and password (RFC 1929 status {status})",
            )
    yield Send(bytes([SOCKS_VERSION, CMD_CONNECT, 0]) + request)
    version, reply = yield Read(2)
    if version != SOCKS_VERSION:
        raise HandshakeError(
            errno.EPROTO, f"bad SOCKS5 reply: version {version}, expected {SOCKS_VERSION}"
        )
    if reply != 0:
        # The rest of a failure reply does not matter (and some proxies close
        # without sending it): the reply code says it all.
        code, text, routine = SOCKS_REPLIES.get(reply, (errno.EIO, "unassigned reply code", False))
        raise HandshakeError(code, f"{text} (SOCKS5 reply {reply:#04x})", routine=routine)
    _reserved, atyp, first = yield Read(3)
    if atyp == ATYP_IPV4:
        rest = 4 - 1 + 2
    elif atyp == ATYP_IPV6:
        rest = 16 - 1 + 2
    elif atyp == ATYP_NAME:
        rest = first + 2  # ``first`` is the name's length byte
    else:
        raise HandshakeError(errno.EPROTO, f"bad SOCKS5 reply: address type {atyp:#04x}")
    rest_bytes = yield Read(rest)
    return bound_address(atyp, bytes([first]) + rest_bytes)


def bound_address(atyp: int, data: bytes) -> Bound:
    """BND.ADDR and BND.PORT of a CONNECT reply: the address the proxy connects from.

    None for a name, or for the unspecified address some proxies send.
    """
    port = int.from_bytes(data[-2:], "big")
    if atyp == ATYP_NAME:
        return None
    address = ipaddress.ip_address(data[:-2])
    if address.is_unspecified or port == 0:
        return None
    return str(address), port


def basic_credentials(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def connect_request(target: Target, username: str | None, password: str | None) -> bytes:
    """The CONNECT request: request-target in authority form, and ``Host``."""
    authority = str(target)
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    if username is not None:
        lines.append(f"Proxy-Authorization: Basic {basic_credentials(username, password or '')}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def http_connect(target: Target, username: str | None, password: str | None) -> Handshake:
    """RFC 9110 section 9.3.6 CONNECT; the bytes after the 2xx head are the tunnel's.

    :raises HandshakeError: right away, for a target that cannot go in a request.
    """
    if target.address is None and not target.host.isascii():
        raise HandshakeError(errno.EINVAL, f"cannot send {target.host!r} to an HTTP proxy")
    return _http_connect(connect_request(target, username, password), username is not None)


def _http_connect(request: bytes, sent_credentials: bool) -> Handshake:
    yield Send(request)
    budget = HEAD_LIMIT
    while True:
        head = yield ReadHead(budget)
        budget -= len(head)
        status, reason, fields = parse_head(head)
        if status in _INTERIM:
            continue
        if 200 <= status <= 299:
            return None  # HTTP does not say where the proxy connects from
        raise http_error(status, reason, fields, sent_credentials)


def parse_head(head: bytes) -> tuple[int, str, dict[str, list[str]]]:
    """Status, reason phrase and header fields (lower-case names) of a response head."""
    match = _STATUS_LINE.match(head)
    if match is None:
        first = shown(head.split(b"\n", 1)[0].rstrip(b"\r"))
        raise HandshakeError(errno.EPROTO, f"not an HTTP response from the proxy: {first!r}")
    status = int(match.group(1))
    reason = shown(match.group(2) or b"")
    fields: dict[str, list[str]] = {}
    for line in head[match.end() :].split(b"\n"):
        name, colon, value = line.rstrip(b"\r").partition(b":")
        if colon and _TOKEN.fullmatch(name):
            fields.setdefault(name.decode("latin-1").lower(), []).append(shown(value.strip()))
    return status, reason, fields


def http_error(
    status: int, reason: str, fields: dict[str, list[str]], sent_credentials: bool
) -> HandshakeError:
    """A CONNECT refused with ``status``, as the errno a guest sees."""
    said = f"{status} {reason}".rstrip()
    if status in (401, 407):
        if sent_credentials:
            return HandshakeError(errno.EACCES, f"the proxy refused the credentials ({said})")
        offered = ", ".join(v.split(" ", 1)[0] for v in fields.get("proxy-authenticate", []) if v)
        wants = f" (it offers {offered})" if offered else ""
        return HandshakeError(
            errno.EACCES,
            f"the proxy wants authentication{wants}: give user:password@ in the proxy URL ({said})",
        )
    if status == 403:
        return HandshakeError(errno.EACCES, f"the proxy refused this destination ({said})")
    if status == 504:
        return HandshakeError(
            errno.ETIMEDOUT, f"the proxy timed out reaching the destination ({said})", routine=True
        )
    if status in (500, 502, 503):
        return HandshakeError(
            errno.ECONNREFUSED, f"the proxy could not connect ({said})", routine=True
        )
    return HandshakeError(errno.ECONNREFUSED, f"the proxy refused the tunnel ({said})")


def head_end(data: bytes | bytearray, start: int = 0) -> int | None:
    """Where an HTTP head ends in ``data`` (after its empty line), searching from ``start``.

    Lines end with CRLF, or a bare LF as RFC 9112 section 2.2 lets a recipient accept.
    """
    found = [i for i in (data.find(b"\n\r\n", start), data.find(b"\n\n", start)) if i >= 0]
    if not found:
        return None
    at = min(found)
    return at + (3 if data[at + 1 : at + 2] == b"\r" else 2)


def handshake(scheme: str, target: Target, username: str | None, password: str | None) -> Handshake:
    if scheme == "http":
        return http_connect(target, username, password)
    return socks5(target, username, password)
