"""Relay protocol details without a guest: encodings, URLs, counters, the claim rule."""

from __future__ import annotations

import errno
import select
import socket
from typing import Any

import pytest
from wassh import LISTEN, STREAM, ConnectRequest, TransportConfig
from wassh_transport_websocket import v4
from wassh_transport_websocket.connection import RelayConnection
from wassh_transport_websocket.relay import CorpRelay, CorpRelayV4, Fatal
from wassh_transport_websocket.server import allowed
from wassh_transport_websocket.settings import RelaySettings, backoff_sequence
from wassh_transport_websocket.transport import RelayClaim, wassh_transport_offer


def settings(
    url: str = "ws://relay.example:8022/",
    protocol: str = "websockify",
    extra: dict[str, Any] | None = None,
    **kw: Any,
) -> RelaySettings:
    config = TransportConfig(relay_url=url, relay_protocol=protocol, extra=dict(extra or {}), **kw)
    return RelaySettings.from_config(config)


# -- corp-relay-v4 encodings (relay-protocols.md §5.2 worked example) -------------------


def test_v4_worked_example_bytes() -> None:
    assert v4.connect_success("S1") == bytes.fromhex("0001 00000002 5331")
    assert v4.data(b"\xaa\xbb\xcc") == bytes.fromhex("0004 00000003 aabbcc")
    assert v4.ack(3) == bytes.fromhex("0007 0000000000000003")
    assert v4.data(b"\x01\x02") == bytes.fromhex("0004 00000002 0102")
    assert v4.reconnect_success(1) == bytes.fromhex("0002 0000000000000001")


def test_v4_parse() -> None:
    assert v4.parse(bytes.fromhex("000100000002 5331")) == (v4.CONNECT_SUCCESS, "S1")
    assert v4.parse(bytes.fromhex("0004 00000003 aabbcc")) == (v4.DATA, b"\xaa\xbb\xcc")
    assert v4.parse(bytes.fromhex("0007 0000000000000003")) == (v4.ACK, 3)
    assert v4.parse(bytes.fromhex("0002 0000000000000001")) == (v4.RECONNECT_SUCCESS, 1)
    assert v4.parse(b"\x00\x63whatever") == (0x63, None)  # unknown tags are ignored
    for bad in (b"", b"\x00", b"\x00\x00", b"\x00\x04\x00\x00\x00\x09short", b"\x00\x07\x00"):
        with pytest.raises(v4.CommandError):
            v4.parse(bad)


# -- URLs --------------------------------------------------------------------------------


def test_websockify_url_defaults_to_the_destination_and_brackets_ipv6() -> None:
    s = settings("ws://{host}:{port}", "websockify")
    assert s.websockify_url("ssh.example", 22) == "ws://ssh.example:22/"
    v6 = "0000:0000:0000:0000:0000:0000:0000:0001"
    assert s.websockify_url(v6, 22) == f"ws://[{v6}]:22/"
    s = settings("https://relay.example/ws", "websockify", relay_params={"token": "a b"})
    assert s.websockify_url("x", 1) == "wss://relay.example/ws?token=a%20b"


def test_v4_urls_are_uri_encoded() -> None:
    s = settings(
        "wss://relay.example/",
        "corp-relay-v4",
        extra={"relay_user": "me@corp", "relay_egress_domain": "eu"},
    )
    assert s.v4_connect_url("host name", 22) == (
        "wss://relay.example/v4/connect?host=host%20name&port=22&dstUsername=me%40corp"
        "&egressDomain=eu"
    )
    assert s.v4_reconnect_url("a/b", 1 << 40) == (
        "wss://relay.example/v4/reconnect?sid=a%2Fb&ack=1099511627776"
    )


def test_corp_relay_urls() -> None:
    s = settings("ws://relay.example:8022", "corp-relay")
    assert s.v1_proxy_url("db.example", 5432) == (
        "http://relay.example:8022/proxy?host=db.example&port=5432"
    )
    # 24-bit ack and pos; the sid goes in verbatim (it may carry more parameters)
    assert s.v1_connect_url("4b2f&host=vpn", (1 << 24) + 5, 0xFFFFFF, 3) == (
        "ws://relay.example:8022/connect?sid=4b2f&host=vpn&ack=5&pos=16777215&try=3"
    )


def test_corp_relay_backoff_sequence() -> None:
    assert backoff_sequence(16) == [
        1, 15, 43, 99, 211, 435, 883, 1779, 3571, 7155, 4677, 9367, 9253, 9481, 9025, 9937,
    ]  # fmt: skip


def test_bad_settings() -> None:
    with pytest.raises(ValueError):
        settings("ftp://relay.example", "websockify")
    with pytest.raises(ValueError):
        settings("ws://relay.example", "carrier-pigeon")


# -- counters ----------------------------------------------------------------------------


def _conn(acked: int, unacked: int, sent: int) -> RelayConnection:
    conn = RelayConnection(None)
    conn.acked = acked
    conn.sbuf = bytearray(b"x" * unacked)
    conn.sent = acked + sent
    return conn


def test_corp_relay_ack_wraps_at_24_bits() -> None:
    # A server ack of 5 after a write ack of 0xFFFFFE releases 7 bytes (checklist 155).
    conn = _conn(0xFFFFFE, 20, 10)
    driver = CorpRelay(settings(protocol="corp-relay"), conn, "h", 1)
    driver._handle(b"\x00\x00\x00\x05payload")
    assert conn.acked == 0xFFFFFE + 7 and len(conn.sbuf) == 13
    assert driver.read_count == 7
    with pytest.raises(Fatal):  # the error value: stream closed, no resume
        driver._handle(b"\xff\xff\xff\xff")
    with pytest.raises(Fatal):  # more than was sent
        driver._handle(b"\x00\x00\x00\x0f")


async def test_v4_acks() -> None:
    conn = _conn(100, 50, 30)
    driver = CorpRelayV4(settings(protocol="corp-relay-v4"), conn, "h", 1)
    driver._ack(100)  # zero delta: nothing
    assert conn.acked == 100
    driver._ack(110)
    assert conn.acked == 110 and len(conn.sbuf) == 40
    with pytest.raises(Fatal, match="reverse ack"):
        driver._ack(105)
    with pytest.raises(Fatal, match="beyond"):
        driver._ack(131)
    driver._ack(120, resync=True)  # RECONNECT_SUCCESS: resend from there
    assert conn.sent == 120


def ready(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


class _Token:
    def run_sync_soon(self, fn: object, *args: object) -> None:
        fn(*args)  # type: ignore[operator]


def test_buffers_and_readiness() -> None:
    conn = RelayConnection(_Token(), recv_high=8, send_max=8)
    assert not ready(conn.write_fd)  # connecting
    conn.mark_connected()
    assert ready(conn.write_fd) and not ready(conn.read_fd)
    with pytest.raises(BlockingIOError):
        conn.recv_into(memoryview(bytearray(4)), False)
    assert conn.send(memoryview(b"0123456789")) == 8  # bounded
    assert not ready(conn.write_fd)
    with pytest.raises(BlockingIOError):
        conn.send(memoryview(b"x"))
    assert conn.take_unsent(5, release=True) == b"01234"
    assert ready(conn.write_fd)  # below the low-water mark again
    assert conn.send(memoryview(b"abcdef")) == 5
    conn.deliver(b"hello")
    conn.deliver(b"world")
    assert ready(conn.read_fd)
    buf = bytearray(7)
    assert conn.recv_into(memoryview(buf), True) == 7 and bytes(buf) == b"hellowo"
    assert conn.recv_into(memoryview(buf), False) == 7
    assert ready(conn.read_fd)
    assert conn.recv_into(memoryview(buf), False) == 3 and bytes(buf[:3]) == b"rld"
    assert not ready(conn.read_fd)
    conn.finish(errno.ECONNRESET)
    assert ready(conn.read_fd) and ready(conn.write_fd)
    with pytest.raises(ConnectionResetError):
        conn.recv_into(memoryview(buf), False)
    assert conn.recv_into(memoryview(buf), False) == 0  # reported once, then EOF
    with pytest.raises(BrokenPipeError):
        conn.send(memoryview(b"x"))
    conn.guest_close(lambda: None)


# -- the claim rule ----------------------------------------------------------------------


def _req(kind: str = STREAM, family: int = socket.AF_INET) -> ConnectRequest:
    return ConnectRequest(kind=kind, family=family, host="h", port=22)


def test_first_connect_claim_lasts_until_a_relay_connect_succeeds() -> None:
    claim = RelayClaim(settings())
    assert claim(_req()) and claim(_req(family=socket.AF_INET6))
    assert not claim(_req(family=socket.AF_UNIX))
    claim.succeeded = True
    assert not claim(_req())


def test_claim_modes() -> None:
    every = RelayClaim(settings(relay_claim="all"))
    every.succeeded = True
    assert every(_req()) and not every(_req(LISTEN))
    first = RelayClaim(settings(relay_claim="first-socket"))
    assert first(_req(LISTEN))  # even a socket that only binds consumes it
    assert not first(_req())


def test_offer() -> None:
    off = wassh_transport_offer(TransportConfig())
    assert not off.available and "no relay" in off.reason
    on = wassh_transport_offer(TransportConfig(relay_url="ws://r/"))
    assert on.available and on.rank > 100 and on.kinds == frozenset({STREAM})
    compat = wassh_transport_offer(TransportConfig(relay_url="ws://r/", relay_claim="first-socket"))
    assert LISTEN in compat.kinds
    # A broken setting fails the offer: the core stops the run (never silently direct).
    with pytest.raises(ValueError, match="unknown relay protocol 'x'"):
        wassh_transport_offer(TransportConfig(relay_url="ws://r/", relay_protocol="x"))


def test_server_allow_list() -> None:
    rules = ["*.internal:22", "10.0.0.*:*", "Echo.Test:7"]
    assert allowed(rules, "db.internal", 22)
    assert not allowed(rules, "db.internal", 23)
    assert allowed(rules, "10.0.0.9", 443)
    assert allowed(rules, "echo.test", 7)
    assert not allowed(rules, "example.org", 22)
    assert not allowed([], "anything", 1)


def test_trio_is_not_imported_by_the_plugin_module() -> None:
    import subprocess
    import sys

    code = "import sys, wassh_transport_websocket; print('trio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
