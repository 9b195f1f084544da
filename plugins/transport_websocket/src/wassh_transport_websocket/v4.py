"""corp-relay-v4 commands: a big-endian u16 tag, then the fields of that command."""

from __future__ import annotations

import struct

CONNECT_SUCCESS = 1
RECONNECT_SUCCESS = 2
DATA = 4
ACK = 7

# wassh extensions, offered by the client in the request header
# "X-Wassh-Relay-Ext: eof, data" and used only as far as the relay's 101 answer
# carries them in the same header:
# * "eof": the client will send no byte at or after this u64 position
#   (shutdown(SHUT_WR)); the relay half-closes its connection to the target once
#   it has written everything before;
# * "data=N": the client may put up to N bytes (at least MAX_CLIENT_DATA) in one
#   DATA instead of MAX_CLIENT_DATA.
EOF_EXT = 0x5745
EXT_HEADER = "X-Wassh-Relay-Ext"
EXT_OFFER = "eof, data"

MAX_CLIENT_DATA = 16384  # what a client puts in one DATA (docs/relay-protocols.md)

_HI = struct.Struct(">HI")
_HQ = struct.Struct(">HQ")
_U64_MAX = (1 << 64) - 1


class CommandError(ValueError):
    """A command whose length does not match its tag."""


def connect_success(sid: str) -> bytes:
    raw = sid.encode("ascii")
    return _HI.pack(CONNECT_SUCCESS, len(raw)) + raw


def reconnect_success(ack: int) -> bytes:
    return _HQ.pack(RECONNECT_SUCCESS, ack)


def data(payload: bytes | bytearray | memoryview) -> bytes:
    return _HI.pack(DATA, len(payload)) + bytes(payload)


def data_header(length: int) -> bytes:
    """What goes before ``length`` bytes of payload in a DATA command."""
    return _HI.pack(DATA, length)


def ack(position: int) -> bytes:
    return _HQ.pack(ACK, position & _U64_MAX)


def eof(position: int) -> bytes:
    return _HQ.pack(EOF_EXT, position & _U64_MAX)


def parse_ext(answer: str) -> tuple[bool, int]:
    """The relay's answer to ``EXT_OFFER``: (half-close, largest client DATA payload)."""
    eof, data = False, MAX_CLIENT_DATA
    for item in answer.split(","):
        name, _, value = item.strip().partition("=")
        if name == "eof" and not value:
            eof = True
        elif name == "data" and value.isdigit() and len(value) < 12:
            data = max(MAX_CLIENT_DATA, int(value))
    return eof, data


def parse(msg: bytes, view: bool = False) -> tuple[int, object]:
    """``(tag, value)``: sid (str), ack (int), payload (bytes, or with ``view`` a
    memoryview of ``msg``: no copy); unknown tags give None.

    :raises CommandError: a known tag with the wrong length, or a message under 2 bytes.
    """
    if len(msg) < 2:
        raise CommandError(f"command of {len(msg)} bytes has no tag")
    tag = (msg[0] << 8) | msg[1]
    if tag in (DATA, CONNECT_SUCCESS):
        if len(msg) < 6:
            raise CommandError(f"tag {tag} truncated: {len(msg)} bytes")
        (length,) = struct.unpack_from(">I", msg, 2)
        if len(msg) != 6 + length:
            raise CommandError(f"tag {tag} says {length} bytes, carries {len(msg) - 6}")
        if tag == DATA:
            return tag, memoryview(msg)[6:] if view else msg[6:]
        body = msg[6:]
        try:
            sid = body.decode("ascii")
        except UnicodeDecodeError:
            raise CommandError("session id is not ASCII") from None
        if not sid.isprintable() or not sid:
            raise CommandError("session id is empty or not printable")
        return tag, sid
    if tag in (ACK, RECONNECT_SUCCESS, EOF_EXT):
        if len(msg) != 10:
            raise CommandError(f"tag {tag} must be 10 bytes, got {len(msg)}")
        (value,) = struct.unpack_from(">Q", msg, 2)
        return tag, value
    if tag == 0:
        raise CommandError("tag 0 is never valid")
    return tag, None
