"""corp-relay-v4 commands: a big-endian u16 tag, then the fields of that command."""

from __future__ import annotations

import struct

CONNECT_SUCCESS = 1
RECONNECT_SUCCESS = 2
DATA = 4
ACK = 7

# wassh extension, used only when the relay's 101 answer carries
# "X-Wassh-Relay-Ext: eof" in reply to the same request header: the client will
# send no byte at or after this u64 position (shutdown(SHUT_WR)); the relay
# half-closes its connection to the target once it has written everything before.
EOF_EXT = 0x5745
EXT_HEADER = "X-Wassh-Relay-Ext"

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


def ack(position: int) -> bytes:
    return _HQ.pack(ACK, position & _U64_MAX)


def eof(position: int) -> bytes:
    return _HQ.pack(EOF_EXT, position & _U64_MAX)


def parse(msg: bytes) -> tuple[int, object]:
    """``(tag, value)``: sid (str), ack (int), payload (bytes); unknown tags give None.

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
        body = msg[6:]
        if tag == DATA:
            return tag, body
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
