"""Guests against scripted proxies: exact bytes on the wire, and hostile answers.

A proxy is as untrusted as any server: garbage, oversized, truncated or slow
answers must end in an errno for the guest and one log line, never a hang or
a host traceback.
"""

from __future__ import annotations

import base64
import logging
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from proxykit import (
    WASSH,
    EchoServer,
    FakeProxy,
    Script,
    proxied,
    recv_exactly,
    recv_head,
    run_guest,
    socks_request,
    splice,
)


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def fake() -> Iterator[list[FakeProxy]]:
    """Fake proxies made by a test, closed after it."""
    made: list[FakeProxy] = []
    yield made
    for proxy in made:
        proxy.close()


def start(fake: list[FakeProxy], script: Script, host: str = "127.0.0.1") -> FakeProxy:
    proxy = FakeProxy(script, host)
    fake.append(proxy)
    return proxy


def tunnel_to(server: EchoServer) -> Script:
    """A correct SOCKS5 proxy (no auth) that connects every request to ``server``."""

    def script(conn: socket.socket, proxy: FakeProxy) -> None:
        socks_request(conn, proxy)
        upstream = socket.create_connection((server.host, server.port))
        conn.sendall(b"\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x38")
        with upstream:
            splice(conn, upstream)

    return script


def http_tunnel_to(server: EchoServer, reply: bytes) -> Script:
    """An HTTP proxy that answers ``reply`` (one write) and connects to ``server``."""

    def script(conn: socket.socket, proxy: FakeProxy) -> None:
        proxy.record(recv_head(conn))
        upstream = socket.create_connection((server.host, server.port))
        conn.sendall(reply)
        with upstream:
            splice(conn, upstream)

    return script


def connect_errno(netclient: Path, url: str, port: int = 9, **config: object) -> str:
    r = run_guest(netclient, "connect-errno", "127.0.0.1", str(port), **proxied(url, **config))
    assert r.code == 0, r
    return r.stdout.strip()


# -- what goes on the wire ------------------------------------------------------------------


def test_socks5h_sends_a_name_as_atyp_3(
    netclient: Path, fake: list[FakeProxy], echo: EchoServer
) -> None:
    proxy = start(fake, tunnel_to(echo))
    name = "db.internal.wassh.test"
    r = run_guest(
        netclient,
        "echo",
        name,
        str(echo.port),
        "n",
        **proxied(proxy.url("socks5h"), host_dns=False),
    )
    assert r.stdout.startswith("n\n[eof after 1 bytes]"), r
    port = echo.port.to_bytes(2, "big")
    assert proxy.received == [b"\x05\x01\x00\x03" + bytes([len(name)]) + name.encode() + port]


def test_addresses_go_as_atyp_1_and_4(
    netclient: Path, fake: list[FakeProxy], echo: EchoServer
) -> None:
    proxy = start(fake, tunnel_to(echo))
    port = echo.port.to_bytes(2, "big")
    run_guest(netclient, "echo", "127.0.0.1", str(echo.port), "4", **proxied(proxy.url("socks5h")))
    run_guest(netclient, "echo", "::1", str(echo.port), "6", **proxied(proxy.url("socks5h")))
    assert proxy.received == [
        b"\x05\x01\x00\x01\x7f\x00\x00\x01" + port,
        b"\x05\x01\x00\x04" + bytes(15) + b"\x01" + port,
    ]


def test_add_host_names_go_as_their_address(
    netclient: Path, fake: list[FakeProxy], echo: EchoServer
) -> None:
    # socks5://: resolved here; socks5h:// too for an --add-host name (the user's own mapping).
    proxy = start(fake, tunnel_to(echo))
    hosts = {"echo.wassh.test": ["127.0.0.1"]}
    for scheme in ("socks5", "socks5h"):
        r = run_guest(
            netclient,
            "echo",
            "echo.wassh.test",
            str(echo.port),
            scheme,
            **proxied(proxy.url(scheme), hosts=hosts),
        )
        assert r.stdout.startswith(f"{scheme}\n"), r
    port = echo.port.to_bytes(2, "big")
    assert proxy.received == [b"\x05\x01\x00\x01\x7f\x00\x00\x01" + port] * 2


def test_socks5_login_bytes(netclient: Path, fake: list[FakeProxy], echo: EchoServer) -> None:
    def script(conn: socket.socket, proxy: FakeProxy) -> None:
        greeting = recv_exactly(conn, 4)
        proxy.record(greeting)
        conn.sendall(b"\x05\x02")
        _version, size = recv_exactly(conn, 2)
        user = recv_exactly(conn, size)
        secret = recv_exactly(conn, recv_exactly(conn, 1)[0])
        proxy.record(user + b"/" + secret)
        conn.sendall(b"\x01\x00")
        head = recv_exactly(conn, 4)
        recv_exactly(conn, 4 + 2)
        proxy.record(head)
        upstream = socket.create_connection((echo.host, echo.port))
        conn.sendall(b"\x05\x00\x00\x04" + bytes(16) + b"\x00\x00")  # an IPv6 BND.ADDR
        with upstream:
            splice(conn, upstream)

    proxy = start(fake, script)
    url = f"socks5h://us%40er:p%3Ass%20w@127.0.0.1:{proxy.port}"
    r = run_guest(netclient, "echo", "127.0.0.1", str(echo.port), "auth", **proxied(url))
    assert r.stdout.startswith("auth\n"), r
    assert proxy.received == [b"\x05\x02\x00\x02", b"us@er/p:ss w", b"\x05\x01\x00\x01"]


def test_http_connect_request_and_early_server_bytes(
    netclient: Path, fake: list[FakeProxy]
) -> None:
    server = EchoServer("::1")
    try:
        # An interim 100, then the 200 with the server's first bytes in the same write.
        reply = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 Connection established\r\n\r\nEARLY "
        proxy = start(fake, http_tunnel_to(server, reply))
        url = f"http://alice:open%20sesame@127.0.0.1:{proxy.port}"
        r = run_guest(netclient, "echo", "::1", str(server.port), "late", **proxied(url))
        assert r.stdout.startswith("EARLY late\n[eof after 10 bytes]"), r
    finally:
        server.close()
    authority = f"[::1]:{server.port}"
    basic = base64.b64encode(b"alice:open sesame").decode()
    assert proxy.received == [
        f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"
        f"Proxy-Authorization: Basic {basic}\r\n\r\n".encode()
    ]


def test_http_head_with_bare_newlines_and_fields(
    netclient: Path, fake: list[FakeProxy], echo: EchoServer
) -> None:
    reply = b"HTTP/1.0 200 OK\nContent-Length: 12\nX-Proxy: yes\n\nrest"
    proxy = start(fake, http_tunnel_to(echo, reply))
    r = run_guest(netclient, "echo", "127.0.0.1", str(echo.port), "!", **proxied(proxy.url("http")))
    # Content-Length on a 2xx CONNECT is ignored (RFC 9110 9.3.6): the rest is the tunnel's.
    assert r.stdout.startswith("rest!\n"), r


def test_trickled_replies_are_reassembled(
    netclient: Path, fake: list[FakeProxy], echo: EchoServer
) -> None:
    def trickle(conn: socket.socket, data: bytes) -> None:
        for byte in data:
            conn.sendall(bytes([byte]))
            time.sleep(0.01)

    def script(conn: socket.socket, proxy: FakeProxy) -> None:
        recv_exactly(conn, 3)
        trickle(conn, b"\x05\x00")
        recv_exactly(conn, 10)
        upstream = socket.create_connection((echo.host, echo.port))
        # A BND.ADDR given as a name: its length byte decides how much is read.
        trickle(conn, b"\x05\x00\x00\x03\x09proxy.lan\x00\x50")
        with upstream:
            splice(conn, upstream)

    proxy = start(fake, script)
    r = run_guest(
        netclient, "echo", "127.0.0.1", str(echo.port), "slowly", **proxied(proxy.url("socks5h"))
    )
    assert r.stdout.startswith("slowly\n[eof after 6 bytes]"), r


# -- failures: each an errno for the guest and one log line ----------------------------------


def answer(reply: bytes, *, after: str = "request", then_close: bool = True) -> Script:
    """Send ``reply`` after the SOCKS5 ``request``, the SOCKS5 ``greeting`` or the ``http`` head."""

    def script(conn: socket.socket, proxy: FakeProxy) -> None:
        if after == "request":
            socks_request(conn, proxy)
        elif after == "greeting":
            proxy.record(recv_exactly(conn, 3))
        else:
            proxy.record(recv_head(conn))
        conn.sendall(reply)
        if not then_close:
            time.sleep(10)

    return script


@pytest.mark.parametrize(
    ("code", "errno_text", "level"),
    [
        (0x01, "Connection refused", logging.WARNING),
        (0x02, "Permission denied", logging.WARNING),
        (0x03, "Network unreachable", logging.INFO),
        (0x04, "Host is unreachable", logging.INFO),
        (0x05, "Connection refused", logging.INFO),
        (0x06, "Operation timed out", logging.INFO),
        (0x07, "I/O error", logging.WARNING),
        (0x08, "I/O error", logging.WARNING),
        (0x2A, "I/O error", logging.WARNING),
    ],
)
def test_socks5_reply_codes(
    netclient: Path,
    fake: list[FakeProxy],
    caplog: pytest.LogCaptureFixture,
    code: int,
    errno_text: str,
    level: int,
) -> None:
    # Some proxies send only the first bytes of a failure reply, then close.
    proxy = start(fake, answer(bytes([5, code])))
    caplog.set_level(logging.INFO, "wassh.proxy")
    assert (
        connect_errno(netclient, proxy.url("socks5h"))
        == f"errno {errno_for(errno_text)} {errno_text}"
    )
    lines = [
        r
        for r in caplog.records
        if r.name == "wassh.proxy" and f"reply {code:#04x}" in r.getMessage()
    ]
    assert len(lines) == 1 and lines[0].levelno == level, caplog.text


def errno_for(text: str) -> int:
    """The guest's errno number for a strerror text (wasi-libc's numbering)."""
    return {
        "Permission denied": 2,
        "Connection refused": 14,
        "Connection reset by peer": 15,
        "Host is unreachable": 23,
        "I/O error": 29,
        "Network unreachable": 40,
        "Protocol error": 65,
        "Operation timed out": 73,
    }[text]


HOSTILE_SOCKS = [
    pytest.param(
        answer(b"HTTP/1.1 400 Bad Request\r\n\r\n", after="greeting"),
        "Protocol error",
        "not a SOCKS5 proxy",
        id="not-socks",
    ),
    pytest.param(
        answer(b"\x05\x01", after="greeting"),
        "Protocol error",
        "not one offered",
        id="unoffered-method",
    ),
    pytest.param(
        answer(b"\x05\xff", after="greeting"),
        "Permission denied",
        "refused every method",
        id="no-acceptable-method",
    ),
    pytest.param(
        answer(b"\x05\x00\x00\x07" + bytes(32)),
        "Protocol error",
        "address type 0x07",
        id="bad-atyp",
    ),
    pytest.param(
        answer(b"\x06\x00\x00\x01" + bytes(6)), "Protocol error", "version 6", id="bad-version"
    ),
    pytest.param(
        answer(b"\x05\x00\x00\x03\xff" + b"x" * 20),
        "Connection reset by peer",
        "closed the connection",
        id="truncated",
    ),
    pytest.param(
        # Closes once the greeting is in: closing with it still unread would send a
        # reset instead of a FIN whenever the greeting won the race.
        answer(b"", after="greeting"),
        "Connection reset by peer",
        "closed the connection",
        id="closes-at-once",
    ),
    pytest.param(
        answer(b"", then_close=False), "Operation timed out", "timed out after 1.5 s", id="silent"
    ),
]

HOSTILE_HTTP = [
    pytest.param(
        answer(b"SSH-2.0-OpenSSH_9.2\r\n\r\n", after="http"),
        "Protocol error",
        "not an HTTP response",
        id="not-http",
    ),
    pytest.param(
        answer(b"HTTP/1.1 200 OK\r\n" + b"X-Junk: " + b"a" * 20000, after="http", then_close=False),
        "Protocol error",
        "over 16384 bytes",
        id="oversized-head",
    ),
    pytest.param(
        answer(
            b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Negotiate\r\n\r\n",
            after="http",
        ),
        "Permission denied",
        "offers Negotiate",
        id="407",
    ),
    pytest.param(
        answer(b"HTTP/1.1 403 Forbidden\r\n\r\n", after="http"),
        "Permission denied",
        "403 Forbidden",
        id="403",
    ),
    pytest.param(
        answer(b"HTTP/1.1 502 Bad Gateway\r\n\r\n", after="http"),
        "Connection refused",
        "502 Bad Gateway",
        id="502",
    ),
    pytest.param(
        answer(b"HTTP/1.1 504 Gateway Timeout\r\n\r\n", after="http"),
        "Operation timed out",
        "504 Gateway Timeout",
        id="504",
    ),
    pytest.param(
        answer(b"HTTP/1.1 101 Switching\r\n\r\n", after="http"),
        "Connection refused",
        "101 Switching",
        id="101",
    ),
    pytest.param(
        answer(b"HTTP/1.1 200 OK\r\nX-A: b\r\n", after="http"),
        "Connection reset by peer",
        "closed the connection",
        id="truncated-head",
    ),
    pytest.param(
        answer(b"HTTP/1.1 599 \x1b[31mred\x07\r\n\r\n", after="http"),
        "Connection refused",
        "599 ?[31mred?",
        id="escape-codes",
    ),
]


def slowloris(conn: socket.socket, proxy: FakeProxy) -> None:
    recv_head(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    for _ in range(200):
        conn.sendall(b"X")
        time.sleep(0.05)


HOSTILE_HTTP.append(
    pytest.param(slowloris, "Operation timed out", "timed out after 1.5 s", id="slowloris")
)


@pytest.mark.parametrize(("script", "errno_text", "logged"), HOSTILE_SOCKS + HOSTILE_HTTP)
def test_hostile_proxy(
    netclient: Path,
    fake: list[FakeProxy],
    script: Script,
    errno_text: str,
    logged: str,
) -> None:
    """Through the command line: the guest's errno, one warning line, no traceback.

    Ordinary outcomes (the proxy could not reach the destination) are logged at
    INFO only, as a refused direct connect is not logged at all.
    """
    proxy = start(fake, script)
    # The case by its script, not by the test's id (which a repeat run suffixes).
    case = next(p.id for p in HOSTILE_SOCKS + HOSTILE_HTTP if p.values[0] is script)
    scheme = "http" if any(p.values[0] is script for p in HOSTILE_HTTP) else "socks5h"
    started = time.monotonic()
    r = subprocess.run(
        [
            *WASSH,
            "run",
            "--connect-timeout",
            "1.5",
            "--proxy",
            proxy.url(scheme),
            str(netclient),
            "connect-errno",
            "127.0.0.1",
            "9",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert time.monotonic() - started < 15
    assert r.returncode == 0, r
    assert r.stdout.strip() == f"errno {errno_for(errno_text)} {errno_text}", r
    assert "Traceback" not in r.stderr and "\x1b" not in r.stderr, r.stderr
    lines = r.stderr.splitlines()
    if case in ROUTINE:
        assert lines == [], r.stderr
        return
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(
        f"wassh: wassh.proxy: {scheme}://127.0.0.1:{proxy.port} -> 127.0.0.1:9: "
    )
    assert logged in lines[0], lines[0]


ROUTINE = {"502", "504"}


def test_unreachable_proxy_is_econnrefused(
    netclient: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert connect_errno(netclient, f"socks5h://127.0.0.1:{port}") == "errno 14 Connection refused"
    assert "cannot reach the proxy: Connection refused" in caplog.text
    assert connect_errno(netclient, f"http://127.0.0.1:{port}") == "errno 14 Connection refused"


def test_next_proxy_address_is_tried(
    netclient: Path, fake: list[FakeProxy], echo: EchoServer
) -> None:
    proxy = start(fake, tunnel_to(echo), host="::1")
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", proxy.port)) == 0:
            pytest.skip(f"something listens on 127.0.0.1:{proxy.port}")
    # The proxy's name maps to an address where nothing listens, then to the proxy.
    hosts = {"proxy.wassh.test": ["127.0.0.1", "::1"]}
    url = f"socks5h://proxy.wassh.test:{proxy.port}"
    r = run_guest(
        netclient, "echo", "127.0.0.1", str(echo.port), "second", **proxied(url, hosts=hosts)
    )
    assert r.stdout.startswith("second\n"), r


# -- non-blocking connects --------------------------------------------------------------------


def test_nonblocking_connect_to_a_silent_proxy_ends_at_the_deadline(
    netclient: Path, fake: list[FakeProxy]
) -> None:
    """The guest polls up to 5 s; the handshake's deadline (1 s) ends it first."""
    proxy = start(fake, answer(b"", then_close=False))
    started = time.monotonic()
    r = run_guest(
        netclient,
        "nbconnect",
        "127.0.0.1",
        "9",
        **proxied(proxy.url("socks5h"), connect_timeout=1.0),
    )
    took = time.monotonic() - started
    assert "so_error 73 Operation timed out" in r.stdout, r
    assert took < 4, took


def test_nonblocking_connect_is_writable_only_once_the_tunnel_is_up(
    netclient: Path, fake: list[FakeProxy], echo: EchoServer
) -> None:
    def script(conn: socket.socket, proxy: FakeProxy) -> None:
        recv_exactly(conn, 3)
        time.sleep(0.3)  # the guest's poll must not return before the proxy answers
        conn.sendall(b"\x05\x00")
        recv_exactly(conn, 10)
        upstream = socket.create_connection((echo.host, echo.port))
        conn.sendall(b"\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x50")
        with upstream:
            splice(conn, upstream)

    proxy = start(fake, script)
    r = run_guest(
        netclient, "nbconnect", "127.0.0.1", str(echo.port), **proxied(proxy.url("socks5h"))
    )
    assert "poll 1 revents OUT\nso_error 0 ok\nso_error again 0\nsend 1\n" in r.stdout, r
