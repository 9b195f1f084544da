"""Relay protocol details without a guest: encodings, URLs, counters, the claim rule."""

from __future__ import annotations

import errno
import ipaddress
import select
import socket
from functools import partial
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st
from wassh import LISTEN, STREAM, ConnectRequest, Offer, TransportConfig
from wassh.policy import IPAddress
from wassh_transport_websocket import v4
from wassh_transport_websocket.connection import RelayConnection
from wassh_transport_websocket.relay import CorpRelay, CorpRelayV4, Fatal
from wassh_transport_websocket.server_auth import (
    ANONYMOUS,
    AuthError,
    Credential,
    TokenError,
    Tokens,
    authenticate,
    env_tokens,
    read_token_file,
)
from wassh_transport_websocket.server_destinations import (
    Destinations,
    Refused,
    Unreachable,
    parse_patterns,
)
from wassh_transport_websocket.server_http import BadRequest, parse_route
from wassh_transport_websocket.server_limits import LimitReached, Pool, client_key
from wassh_transport_websocket.settings import RelaySettings, backoff_sequence
from wassh_transport_websocket.transport import RelayClaim, RelayTransport
from websockets.datastructures import Headers
from websockets.http11 import Request


def settings(
    url: str = "ws://relay.example:8022/",
    protocol: str = "websockify",
    extra: dict[str, Any] | None = None,
    **kw: Any,
) -> RelaySettings:
    given: dict[str, Any] = {"url": url, "protocol": protocol}
    given.update({k.removeprefix("relay_"): v for k, v in (extra or {}).items()})
    given.update({k.removeprefix("relay_"): v for k, v in kw.items()})
    return RelaySettings.from_settings(given, 75.0)


# -- corp-relay-v4 encodings  -------------------


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
    assert conn.send(memoryview(b"x" * unacked)) == unacked
    conn.sent = acked + sent
    return conn


def test_corp_relay_ack_wraps_at_24_bits() -> None:
    # A server ack of 5 after a write ack of 0xFFFFFE releases 7 bytes.
    conn = _conn(0xFFFFFE, 20, 10)
    driver = CorpRelay(settings(protocol="corp-relay"), conn, "h", 1)
    driver._handle(b"\x00\x00\x00\x05payload")
    assert conn.acked == 0xFFFFFE + 7 and conn.unacked == 13
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
    assert conn.acked == 110 and conn.unacked == 40
    with pytest.raises(Fatal, match="reverse ack"):
        driver._ack(105)
    with pytest.raises(Fatal, match="beyond"):
        driver._ack(131)
    driver._ack(120, resync=True)  # RECONNECT_SUCCESS: resend from there
    assert conn.sent == 120
    assert conn.acked == 110  # the relay holds those bytes; its ACKs release them


async def test_v4_ack_below_reconnect_success_after_a_resume() -> None:
    # The relay reports the client bytes it holds in RECONNECT_SUCCESS (some still
    # queued for a target that is not reading) but acknowledges only those written,
    # and its first ACK on the new socket says so: a lower value that is no reverse
    # ack. The client used to release up to RECONNECT_SUCCESS, then reset the
    # connection on that ACK (seen with a slow target and a WebSocket cut).
    conn = _conn(100, 50, 30)
    driver = CorpRelayV4(settings(protocol="corp-relay-v4"), conn, "h", 1)
    ws: Any = None  # not used by RECONNECT_SUCCESS and ACK
    await driver._handle(ws, (False, v4.reconnect_success(125)))
    assert conn.sent == 125 and conn.acked == 100
    await driver._handle(ws, (False, v4.ack(110)))
    assert conn.acked == 110 and conn.unacked == 40
    await driver._handle(ws, (False, v4.ack(125)))
    assert conn.acked == 125
    # What the relay acknowledged it holds: a resume below that lost bytes.
    with pytest.raises(Fatal, match="reverse ack"):
        await driver._handle(ws, (False, v4.reconnect_success(120)))


def ready(fd: int) -> bool:
    poller = select.poll()  # not select(2): it refuses descriptors above 1023
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


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
    assert b"".join(conn.take_unsent(5, release=True)) == b"01234"
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


def _offer(**given: Any) -> Offer:
    return RelayTransport().wassh_transport_offer(TransportConfig(), given)


def test_offer() -> None:
    off = _offer()
    assert not off.available and "no relay" in off.reason
    on = _offer(url="ws://r/")
    assert on.available and on.rank > 100 and on.kinds == frozenset({STREAM})
    compat = _offer(url="ws://r/", claim="first-socket")
    assert LISTEN in compat.kinds
    # A broken setting fails the offer: the core stops the run (never silently direct).
    with pytest.raises(ValueError, match="unknown relay protocol 'x'"):
        _offer(url="ws://r/", protocol="x")
    with pytest.raises(ValueError, match="unknown relay settings: keepalived"):
        _offer(url="ws://r/", keepalived=1)
    with pytest.raises(ValueError, match="keepalive: expected a number"):
        _offer(url="ws://r/", keepalive="soon")
    with pytest.raises(ValueError, match="no relay configured"):
        _offer(protocol="corp-relay")


def test_trio_is_not_imported_by_the_plugin_module() -> None:
    import subprocess
    import sys

    code = "import sys, wassh_transport_websocket; print('trio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- wassh relay: the allow-list, requests, tokens, limits -------------------------------


def destinations(
    allow: list[str],
    deny: list[str] | None = None,
    answers: dict[str, list[list[str]]] | None = None,
) -> tuple[Destinations, list[str]]:
    """Rules plus a resolver that answers from ``answers`` (one list per lookup, in turn)."""
    looked_up: list[str] = []
    pending = {name: list(lists) for name, lists in (answers or {}).items()}

    async def lookup(host: str, port: int) -> list[IPAddress]:
        looked_up.append(host)
        queue = pending.get(host.lower().rstrip("."))  # as DNS compares names
        if not queue:
            raise Unreachable(f"cannot resolve {host}")
        texts = queue.pop(0) if len(queue) > 1 else queue[0]
        return [ipaddress.ip_address(t) for t in texts]

    rules = parse_patterns([(p, "--allow") for p in allow])
    refusals = parse_patterns([(p, "--deny") for p in deny or []])
    return Destinations(rules, refusals, lookup=lookup), looked_up


async def allowed_addresses(d: Destinations, host: str, port: int) -> list[str] | str:
    try:
        return [str(a) for a in await d.checked_addresses(host, port)]
    except Refused as exc:
        return f"refused: {exc.rule}"


async def test_server_allow_list_uses_the_policy_grammar() -> None:
    d, looked_up = destinations(
        ["*.internal:22", "10.0.0.*:*", "Echo.Test:7", "[::1]:22", "192.168.0.0/16:80"],
        ["bad.internal"],
        {
            "db.internal": [["10.9.9.9"]],
            "echo.test": [["192.0.2.1"]],
            "10.0.0.1.attacker.example": [["127.0.0.1"]],
            "10.0.0.9.nip.io": [["10.0.0.9"]],
            "router.example": [["192.168.1.1", "127.0.0.1"]],
        },
    )
    assert await allowed_addresses(d, "db.internal", 22) == ["10.9.9.9"]  # by name
    assert await allowed_addresses(d, "db.internal", 23) == "refused: no --allow rule matches"
    assert await allowed_addresses(d, "Echo.Test.", 7) == ["192.0.2.1"]
    assert await allowed_addresses(d, "10.0.0.9", 443) == ["10.0.0.9"]
    assert await allowed_addresses(d, "0xa.0.0.9", 443) == ["10.0.0.9"]  # read as the address
    assert await allowed_addresses(d, "::1", 22) == ["::1"]
    assert await allowed_addresses(d, "::ffff:10.0.0.3", 1) == ["10.0.0.3"]
    # a glob's '*' never crosses a dot: these names are checked by what they resolve to
    assert await allowed_addresses(d, "10.0.0.1.attacker.example", 6379) == (
        "refused: no --allow rule matches"
    )
    assert await allowed_addresses(d, "10.0.0.9.nip.io", 6379) == ["10.0.0.9"]
    # only the addresses that pass are ever connected to
    assert await allowed_addresses(d, "router.example", 80) == ["192.168.1.1"]
    # a denied name is refused before any lookup
    before = list(looked_up)
    assert await allowed_addresses(d, "bad.internal", 22) == "refused: --deny bad.internal"
    assert looked_up == before


async def test_server_deny_wins_and_no_allow_allows_nothing() -> None:
    d, _ = destinations(["*"], ["127.0.0.0/8", "[::1]"], {"local.test": [["127.0.0.1"]]})
    assert await allowed_addresses(d, "local.test", 22) == "refused: --deny 127.0.0.0/8"
    assert await allowed_addresses(d, "[::1]".strip("[]"), 22) == "refused: --deny [::1]"
    assert await allowed_addresses(d, "192.0.2.1", 22) == ["192.0.2.1"]
    nothing, _ = destinations([], [])
    assert await allowed_addresses(nothing, "192.0.2.1", 22) == (
        "refused: no --allow rule: the relay allows nothing"
    )


async def test_server_resolves_once_and_connects_to_the_checked_address() -> None:
    # A name whose answer changes between lookups (DNS rebinding) is looked up once:
    # the connection goes to the address that was checked, by that address.
    async def echo(stream: trio.SocketStream) -> None:
        async with stream:
            await stream.send_all(b"checked")

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, echo, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        d, looked_up = destinations(
            ["rebind.test", "127.0.0.1"],
            ["192.0.2.0/24"],
            {"rebind.test": [["127.0.0.1"], ["192.0.2.66"]]},
        )
        stream, address = await d.open("rebind.test", port, timeout=5)
        async with stream:
            assert await stream.receive_some(100) == b"checked"
            assert stream.socket.getpeername() == ("127.0.0.1", port)
        assert str(address) == "127.0.0.1" and looked_up == ["rebind.test"]
        # the next lookup answers the denied address: refused, never connected
        with pytest.raises(Refused, match=r"--deny 192\.0\.2\.0/24"):
            await d.open("rebind.test", port, timeout=5)
        nursery.cancel_scope.cancel()


def request(path: str, *headers: tuple[str, str]) -> Request:
    return Request(path, Headers(list(headers)))


SSH = ("Sec-WebSocket-Protocol", "ssh")


@pytest.mark.parametrize(
    ("path", "headers", "status", "reason"),
    [
        ("/?host=&port=22", [], 400, "empty host"),
        ("/?host=" + "a" * 300 + "&port=22", [], 400, "longer than 253"),
        ("/?host=" + ".".join(["a" * 63] * 4) + "&port=22", [], 400, "longer than 253"),
        ("/?host=a%00b&port=22", [], 400, "bad host"),
        ("/?host=a%20b&port=22", [], 400, "bad host"),
        ("/?host=*.example&port=22", [], 400, "bad host"),
        ("/?host=%C3%A9.example&port=22", [], 400, "bad host"),
        ("/?host=1.2.3.4.5.&port=22", [], 400, "numeric name"),
        ("/?host=1.2.3.4.5&port=22", [], 400, "numeric name"),
        ("/?host=[10.0.0.1]&port=22", [], 400, "brackets"),
        ("/?host=[::1&port=22", [], 400, "not an IPv6 address"),
        ("/?host=fe80::1%25eth0&port=22", [], 400, "zones"),
        ("/?host=a&port=0", [], 400, "port must be"),
        ("/?host=a&port=65536", [], 400, "port must be"),
        ("/?host=a&port=%D9%A3", [], 400, "port must be"),  # ARABIC-INDIC DIGIT THREE
        ("/?host=a&port=%C2%B2", [], 400, "port must be"),  # SUPERSCRIPT TWO
        ("/?host=a&port=+22", [], 400, "port must be"),
        ("/?host=a&port=-1", [], 400, "port must be"),
        ("/?host=a&port=", [], 400, "port must be"),
        ("/?host=a&port=123456", [], 400, "port must be"),
        ("/?host=a", [], 400, "port must be"),
        ("/", [], 400, "no target"),
        ("/?host=a&host=b&port=1", [], 400, "repeated query parameter 'host'"),
        ("/?host=a&port=1&port=1", [], 400, "repeated query parameter 'port'"),
        ("/?" + "&".join(f"k{i}=v" for i in range(40)), [], 400, "more than 16"),
        ("/?host=" + "a" * 5000, [], 414, "longer than 4096"),
        ("/?host=%FF&port=1", [], 400, "not UTF-8"),
        ("/?host=a&port=1", [("Sec-WebSocket-Protocol", "ssh")], 400, "Invalid protocol"),
        ("/v4/connect?host=a&port=1", [], 400, "'ssh' required"),
        ("/v4/connect?host=a&port=1&dstUsername=me%0A", [SSH], 400, "dstUsername"),
        ("/v4/connect?host=a&port=1&dstUsername=" + "u" * 300, [SSH], 400, "dstUsername"),
        ("/v4/reconnect?sid=a/b&ack=0", [SSH], 400, "sid"),
        ("/v4/reconnect?ack=0", [SSH], 400, "sid"),
        ("/v4/reconnect?sid=abc&ack=18446744073709551616", [SSH], 400, "ack must be"),
        ("/v4/reconnect?sid=abc&ack=%D9%A3", [SSH], 400, "ack must be"),
        ("/v4/reconnect?sid=abc&sid=abd&ack=0", [SSH], 400, "repeated"),
    ],
)
def test_server_bad_requests(
    path: str, headers: list[tuple[str, str]], status: int, reason: str
) -> None:
    with pytest.raises(BadRequest) as info:
        parse_route(request(path, *headers), None)
    assert info.value.status == status
    assert reason in info.value.reason


def test_server_good_requests() -> None:
    cases = {
        "/?host=Example.COM&port=22": ("Example.COM", 22),
        "/?host=db.example.&port=65535": ("db.example.", 65535),
        "/?host=my_host-1.local&port=1": ("my_host-1.local", 1),
        "/?host=[::1]&port=22": ("::1", 22),
        "/?host=::1&port=22": ("::1", 22),
        "/?host=2130706433&port=22": ("2130706433", 22),
        "/websockify?host=10.0.0.1&port=22&token=x": ("10.0.0.1", 22),
    }
    for path, (host, port) in cases.items():
        route = parse_route(request(path), None)
        assert (route.kind, route.host, route.port) == ("websockify", host, port), path
    fixed = parse_route(request("/?host=ignored&port=1"), ("127.0.0.1", 7))
    assert (fixed.host, fixed.port) == ("127.0.0.1", 7)
    v4route = parse_route(
        request("/v4/connect?host=a&port=2&dstUsername=me", ("Sec-WebSocket-Protocol", "ssh, x")),
        None,
    )
    assert (v4route.kind, v4route.host, v4route.port, v4route.user) == ("v4-connect", "a", 2, "me")
    again = parse_route(request("/v4/reconnect?sid=Ab-_9&ack=18446744073709551615", SSH), None)
    assert (again.kind, again.sid, again.ack) == ("v4-reconnect", "Ab-_9", (1 << 64) - 1)


def test_server_tokens(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("# relay tokens\n\n  alpha-1  \nbravo_2 # not a comment\n")
    with pytest.raises(TokenError, match="line 4: a token is printable ASCII without spaces"):
        read_token_file(str(path))
    path.write_text("# relay tokens\n\n  alpha-1  \nbravo_2\n")
    assert read_token_file(str(path)) == ["alpha-1", "bravo_2"]
    with pytest.raises(TokenError, match="cannot read --token-file"):
        read_token_file(str(tmp_path / "missing"))
    with pytest.raises(TokenError, match="cannot read --token-file"):
        read_token_file(str(tmp_path))
    assert env_tokens(" one, ,two ") == ["one", "two"]

    tokens = Tokens.of(["alpha-1", "bravo_2"], required=True)

    def auth(*values: str) -> Credential:
        return authenticate(tokens, Headers([("Authorization", v) for v in values]))

    assert auth("Bearer alpha-1").same_as(auth("bearer  alpha-1 "))
    assert not auth("Bearer alpha-1").same_as(auth("Bearer bravo_2"))
    assert not auth("Bearer alpha-1").same_as(ANONYMOUS)
    for values, status in [
        ((), 401),
        (("Bearer wrong",), 401),
        (("Basic YWxwaGEtMQ==",), 401),
        (("Bearer",), 401),
        (("Bearer alpha-1", "Bearer alpha-1"), 400),
    ]:
        with pytest.raises(AuthError) as info:
            auth(*values)
        assert info.value.status == status, values
    # no tokens configured: anyone, but two Authorization headers are still refused
    open_relay = Tokens.of([], required=False)
    assert authenticate(open_relay, Headers()) is ANONYMOUS
    with pytest.raises(AuthError):
        authenticate(open_relay, Headers([("Authorization", "a"), ("Authorization", "b")]))
    # a token source that yields nothing still requires a token
    with pytest.raises(AuthError):
        authenticate(Tokens.of([], required=True), Headers([("Authorization", "Bearer x")]))


def test_server_limits() -> None:
    pool = Pool("sessions", max_total=3, max_per_client=2)
    a1, a2 = pool.take("a"), pool.take("a")
    with pytest.raises(LimitReached) as info:
        pool.take("a")
    assert info.value.status == 429
    b1 = pool.take("b")
    with pytest.raises(LimitReached) as info:
        pool.take("c")
    assert info.value.status == 503
    a1.release()
    a1.release()  # given back once, however many paths end it
    assert pool.total == 2 and pool.by_client == {"a": 1, "b": 1}
    pool.take("c")
    for slot in (a2, b1):
        slot.release()
    assert pool.total == 1
    block = "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:2:3:4:5:6") == client_key("2001:db8:1:2::9") == block
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert client_key("192.0.2.1") == "192.0.2.1"


def test_server_bad_command_lines_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from wassh_transport_websocket.server_config import config_from_args

    for argv in (
        ["--allow", "::1"],
        ["--allow", "10.0.0.0/33"],
        ["--deny", "db..example"],
        ["--add-host", "x=not-an-address"],
        ["--max-sessions", "0"],
        ["--idle-timeout", "-1"],
        ["--listen", "::1:80"],
        ["--token", "has space"],
    ):
        with pytest.raises(SystemExit) as info:
            config_from_args(argv, environ={})
        assert info.value.code == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("wassh: "), (argv, err)
    with pytest.raises(SystemExit):
        config_from_args([], environ={"WASSH_RELAY_TOKENS": "ok,not ok"})
    assert "$WASSH_RELAY_TOKENS" in capsys.readouterr().err
    _, access = config_from_args(["--allow", "[::1]:22"], environ={"WASSH_RELAY_TOKENS": ""})
    assert access.tokens.required and len(access.tokens) == 0  # set, even empty: fail closed
    assert [str(r) for r in access.destinations.allow] == ["--allow [::1]:22"]


def test_server_systemd_unit_uses_options_that_exist() -> None:
    import shlex

    from wassh_transport_websocket.server_config import build_parser

    unit = Path(__file__).parent.parent / "systemd" / "wassh-relay.service"
    text = unit.read_text().replace("\\\n", " ")
    (command,) = [line for line in text.splitlines() if line.startswith("ExecStart=")]
    argv = shlex.split(command.removeprefix("ExecStart="))
    assert argv[1] == "relay"
    args = [a for a in argv[2:] if a != "$WASSH_RELAY_OPTS"]
    ns = build_parser().parse_args(args)
    assert ns.token_file == ["${CREDENTIALS_DIRECTORY}/tokens"] and ns.listen == "*:443"
    assert "ExecReload=/bin/kill -HUP $MAINPID" in text and "Type=notify" in text


_QUERY_CHARS = "abcxyz09:/.[]_-~%&=?#+ \x00\u0663\u00e9" + "0123456789ABCDEFabcdef"
_HEADER_CHARS = "\t !,;=abz~\x80\xff" + "Bearer tok ssh binary eof"
_QUERY_WORDS = ["host=", "port=", "sid=", "ack=", "dstUsername=", "&", "%", "%D9%A3", "%00"]


@given(
    path=st.sampled_from(["/", "/v4/connect", "/v4/reconnect", "/websockify", "//[x"]),
    query=st.lists(st.one_of(st.sampled_from(_QUERY_WORDS), st.text(_QUERY_CHARS, max_size=8))),
    headers=st.lists(
        st.tuples(
            st.sampled_from(
                ["Sec-WebSocket-Protocol", "X-Wassh-Relay-Ext", "Authorization", "Host"]
            ),
            # what the HTTP parser lets through as a header value
            st.text(st.sampled_from(_HEADER_CHARS), max_size=30),
        ),
        max_size=4,
    ),
)
@hypothesis.settings(max_examples=400, deadline=None)
def test_server_requests_are_routed_or_refused_never_crash(
    path: str, query: list[str], headers: list[tuple[str, str]]
) -> None:
    """Whatever a client sends, the answer is a route or a BadRequest / AuthError."""
    req = request(path + "?" + "".join(query), *headers)
    try:
        route = parse_route(req, None)
    except BadRequest as exc:
        assert exc.status in (400, 414) and exc.reason
    else:
        assert 1 <= route.port <= 65535 or route.kind == "v4-reconnect"
        assert route.host == "" or "\x00" not in route.host
    for required in (True, False):
        try:
            authenticate(Tokens.of(["tok"], required=required), req.headers)
        except AuthError as exc:
            assert exc.status in (400, 401)
