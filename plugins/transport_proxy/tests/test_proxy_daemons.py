"""Guests through real proxies: Debian's danted (SOCKS5) and tinyproxy (HTTP CONNECT).

Every proxy and server here listens on loopback and reaches loopback only.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from proxykit import (
    WASSH,
    Danted,
    EchoServer,
    Tinyproxy,
    loopback_name,
    proxied,
    proxy_login,
    run_guest,
)


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def echo6() -> Iterator[EchoServer]:
    server = EchoServer("::1")
    yield server
    server.close()


def closed_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# -- SOCKS5 through danted ---------------------------------------------------------------


def test_socks5h_echo_through_danted(netclient: Path, danted: Danted, echo: EchoServer) -> None:
    r = run_guest(
        netclient,
        "echo",
        "127.0.0.1",
        str(echo.port),
        "through danted",
        **proxied(danted.url("socks5h")),
    )
    assert r.code == 0, r
    assert r.stdout.startswith("through danted\n[eof after 14 bytes]"), r.stdout
    # getpeername: the destination; getsockname: this end of the connection to the proxy.
    assert f"peer inet 127.0.0.1 {echo.port}\n" in r.stdout
    assert "local inet 127.0.0.1 " in r.stdout
    assert echo.accepted == 1
    assert f"127.0.0.1.{echo.port}" in danted.traffic()  # it went through danted


def test_a_name_goes_to_danted_unresolved(netclient: Path, tmp_path: Path) -> None:
    """With the host's DNS off, only the proxy can resolve the name: it must get it as a name."""
    found = loopback_name()
    if found is None:
        pytest.skip("no name on this machine resolves to just 127.0.0.1 or ::1 (see /etc/hosts)")
    name, address = found
    proxy = Danted(tmp_path / "danted").start()
    server = EchoServer(address)
    try:
        r = run_guest(
            netclient,
            "echo",
            name,
            str(server.port),
            "by name",
            **proxied(proxy.url("socks5h"), host_dns=False),
        )
        assert r.code == 0, r
        assert r.stdout.startswith("by name\n[eof after 7 bytes]"), r.stdout
        assert server.accepted == 1
        # Resolved here (socks5://), the same name cannot be reached: the host's DNS is off.
        r = run_guest(
            netclient,
            "connect-errno",
            name,
            str(server.port),
            **proxied(proxy.url("socks5"), host_dns=False),
        )
        assert "Host is unreachable" in r.stdout, r.stdout
        assert server.accepted == 1
    finally:
        server.close()
        proxy.stop()


def test_socks5_resolves_here_and_danted_gets_the_address(
    netclient: Path, danted: Danted, echo: EchoServer
) -> None:
    r = run_guest(
        netclient,
        "echo",
        "echo.wassh.test",
        str(echo.port),
        "resolved here",
        **proxied(danted.url("socks5"), hosts={"echo.wassh.test": ["127.0.0.1"]}),
    )
    assert r.code == 0, r
    assert r.stdout.startswith("resolved here\n"), r.stdout
    assert echo.accepted == 1


def test_socks5h_over_ipv6_to_an_ipv6_destination(
    netclient: Path, danted_v6: Danted, echo6: EchoServer
) -> None:
    assert danted_v6.url("socks5h").startswith("socks5h://[::1]:")
    r = run_guest(
        netclient, "echo", "::1", str(echo6.port), "six", **proxied(danted_v6.url("socks5h"))
    )
    assert r.code == 0, r
    assert r.stdout.startswith("six\n[eof after 3 bytes]"), r.stdout
    assert f"peer inet6 ::1 {echo6.port}\n" in r.stdout
    assert "local inet6 ::1 " in r.stdout
    assert echo6.accepted == 1


def test_refused_destination_is_econnrefused_through_danted(
    netclient: Path, danted: Danted
) -> None:
    r = run_guest(
        netclient,
        "connect-errno",
        "127.0.0.1",
        str(closed_port()),
        **proxied(danted.url("socks5h")),
    )
    assert "Connection refused" in r.stdout, r


def test_danted_ruleset_refusal_is_eacces(netclient: Path, danted: Danted) -> None:
    # danted's rules pass loopback destinations only: this one is refused by rule
    # (reply 2) before danted dials anything.
    r = run_guest(netclient, "connect-errno", "192.0.2.1", "9", **proxied(danted.url("socks5h")))
    assert "Permission denied" in r.stdout, r
    assert "block(" in danted.traffic()


def test_large_transfer_is_byte_exact_through_danted(
    netclient: Path, danted: Danted, echo: EchoServer
) -> None:
    r = run_guest(
        netclient,
        "bulk",
        "127.0.0.1",
        str(echo.port),
        str(8 << 20),
        **proxied(danted.url("socks5h")),
    )
    assert r.code == 0, r
    assert f"sent {8 << 20} got {8 << 20} bad 0" in r.stdout


def test_socks5_login_accepted_and_refused(
    netclient: Path, tmp_path: Path, echo: EchoServer
) -> None:
    with proxy_login() as (user, password):
        proxy = Danted(tmp_path / "danted-auth", username_auth=True).start()
        try:
            good = proxy.url("socks5h", f"{user}:{password}@")
            r = run_guest(
                netclient, "echo", "127.0.0.1", str(echo.port), "logged in", **proxied(good)
            )
            assert r.code == 0, r
            assert r.stdout.startswith("logged in\n"), r.stdout
            assert f"username%{user}@" in proxy.traffic()

            bad = proxy.url("socks5h", f"{user}:not-{password}@")
            r = run_guest(netclient, "connect-errno", "127.0.0.1", str(echo.port), **proxied(bad))
            assert "Permission denied" in r.stdout, r
            assert "password authentication failed" in proxy.traffic()

            # Without credentials danted accepts none of the methods offered.
            r = run_guest(
                netclient,
                "connect-errno",
                "127.0.0.1",
                str(echo.port),
                **proxied(proxy.url("socks5h")),
            )
            assert "Permission denied" in r.stdout, r
            assert echo.accepted == 1
        finally:
            proxy.stop()


# -- HTTP CONNECT through tinyproxy -----------------------------------------------------------

# tinyproxy ends the whole tunnel when the client half-closes, dropping what the
# server has not sent yet: these guests read their answers before they close.
# (Bytes a server sends right behind the 200: test_fake_proxies.py, and ssh.)


def test_http_connect_many_connections_through_tinyproxy(
    netclient: Path, tinyproxy: Tinyproxy, echo: EchoServer
) -> None:
    r = run_guest(
        netclient, "many", "127.0.0.1", str(echo.port), "24", **proxied(tinyproxy.url("http"))
    )
    assert r.code == 0, r
    assert "ok 24 of 24" in r.stdout
    assert echo.accepted == 24
    assert tinyproxy.traffic().count(f"CONNECT 127.0.0.1:{echo.port} HTTP/1.1") == 24


def test_http_connect_sends_names_unresolved(netclient: Path, tmp_path: Path) -> None:
    found = loopback_name()
    if found is None:
        pytest.skip("no name on this machine resolves to just 127.0.0.1 or ::1 (see /etc/hosts)")
    name, address = found
    proxy = Tinyproxy(tmp_path / "tinyproxy", host=address).start()
    server = EchoServer(address)
    try:
        options = proxied(proxy.url("http"), host_dns=False)
        r = run_guest(netclient, "many", name, str(server.port), "1", **options)
        assert "ok 1 of 1" in r.stdout, r
        # tinyproxy logs the request line: the name, as the guest gave it.
        assert f"CONNECT {name}:{server.port} HTTP/1.1" in proxy.traffic()
    finally:
        server.close()
        proxy.stop()


def test_refused_destination_is_econnrefused_through_tinyproxy(
    netclient: Path, tinyproxy: Tinyproxy
) -> None:
    r = run_guest(
        netclient,
        "connect-errno",
        "127.0.0.1",
        str(closed_port()),
        **proxied(tinyproxy.url("http")),
    )
    assert "Connection refused" in r.stdout, r
    assert "Could not establish a connection" in tinyproxy.traffic()


def test_basic_auth_accepted_missing_and_refused(
    netclient: Path, tmp_path: Path, echo: EchoServer
) -> None:
    proxy = Tinyproxy(tmp_path / "tinyproxy-auth", basic_auth=("wassh", "s3cret-pass")).start()
    try:
        # Percent-decoded (%2D is '-'); tinyproxy takes only letters, digits and -._
        good = proxy.url("http", "wassh:s3cret%2Dpass@")
        r = run_guest(netclient, "many", "127.0.0.1", str(echo.port), "2", **proxied(good))
        assert "ok 2 of 2" in r.stdout, r
        r = run_guest(
            netclient, "connect-errno", "127.0.0.1", str(echo.port), **proxied(proxy.url("http"))
        )
        assert "Permission denied" in r.stdout, r  # 407
        bad = proxy.url("http", "wassh:wrong@")
        r = run_guest(netclient, "connect-errno", "127.0.0.1", str(echo.port), **proxied(bad))
        assert "Permission denied" in r.stdout, r  # tinyproxy answers 401
        # As an embedder gives them: no percent-encoding.
        r = run_guest(
            netclient,
            "many",
            "127.0.0.1",
            str(echo.port),
            "1",
            **proxied(proxy.url("http"), proxy={"username": "wassh", "password": "s3cret-pass"}),
        )
        assert "ok 1 of 1" in r.stdout, r
        assert echo.accepted == 3
    finally:
        proxy.stop()


# -- the network policy -----------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["socks5h", "socks5", "http"])
def test_denied_destination_never_reaches_the_proxy(
    netclient: Path, danted: Danted, tinyproxy: Tinyproxy, echo: EchoServer, scheme: str
) -> None:
    proxy: Danted | Tinyproxy = tinyproxy if scheme == "http" else danted
    deny = {"connect_deny": [f"127.0.0.1:{echo.port}"]}
    r = run_guest(
        netclient,
        "connect-errno",
        "127.0.0.1",
        str(echo.port),
        **proxied(proxy.url(scheme), **deny),
    )
    assert "Permission denied" in r.stdout, r
    # A name is checked as a name before any proxy sees it...
    deny = {"connect_deny": ["*.wassh.test"], "hosts": {"echo.wassh.test": ["127.0.0.1"]}}
    r = run_guest(
        netclient,
        "connect-errno",
        "echo.wassh.test",
        str(echo.port),
        **proxied(proxy.url(scheme), **deny),
    )
    assert "Permission denied" in r.stdout, r
    assert echo.accepted == 0
    traffic = proxy.traffic()
    assert "tcp/accept" not in traffic and "Connect (file descriptor" not in traffic, traffic


def test_socks5_checks_every_address_a_name_resolves_to(
    netclient: Path, danted: Danted, echo: EchoServer
) -> None:
    # Resolved here, a name's address is checked too (socks5h would leave it to the proxy).
    options = {"connect_deny": ["127.0.0.0/8"], "hosts": {"echo.wassh.test": ["127.0.0.1"]}}
    r = run_guest(
        netclient,
        "connect-errno",
        "echo.wassh.test",
        str(echo.port),
        **proxied(danted.url("socks5"), **options),
    )
    assert "Permission denied" in r.stdout, r
    assert echo.accepted == 0
    assert "tcp/accept" not in danted.traffic()


def test_bypass_connects_directly(netclient: Path, danted: Danted, echo: EchoServer) -> None:
    options = {"proxy": {"bypass": [f"127.0.0.1:{echo.port}"]}}
    r = run_guest(
        netclient,
        "echo",
        "127.0.0.1",
        str(echo.port),
        "direct",
        **proxied(danted.url("socks5h"), **options),
    )
    assert r.stdout.startswith("direct\n"), r
    assert echo.accepted == 1
    assert "tcp/accept" not in danted.traffic()


# -- the command line --------------------------------------------------------------------------


def test_wassh_run_proxy_option(netclient: Path, danted: Danted, echo: EchoServer) -> None:
    r = subprocess.run(
        [
            *WASSH,
            "run",
            "--proxy",
            danted.url("socks5h"),
            str(netclient),
            "echo",
            "127.0.0.1",
            str(echo.port),
            "cli",
        ],
        capture_output=True,
        timeout=60,
    )
    assert r.returncode == 0, r
    assert r.stdout.startswith(b"cli\n[eof after 3 bytes]"), r
    assert r.stderr == b"", r


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://127.0.0.1:21", "scheme 'ftp'"),
        ("https://127.0.0.1:3128", "TLS to the proxy is not supported"),
        ("socks5h://127.0.0.1:99999", "bad port '99999'"),
        ("http://127.0.0.1", "give the HTTP proxy's port"),
        ("socks5h://[127.0.0.1]:1080", "brackets are for IPv6 addresses"),
        ("socks5h://user:secret@:1080", "no host"),
        ("127.0.0.1:1080", "expected socks5h://HOST:PORT"),
    ],
)
def test_bad_proxy_url_refuses_to_start_in_one_line(
    netclient: Path, url: str, message: str
) -> None:
    r = subprocess.run(
        [*WASSH, "run", "--proxy", url, str(netclient), "echo", "127.0.0.1", "9"],
        capture_output=True,
        timeout=60,
    )
    assert r.returncode == 2, r
    assert r.stdout == b""
    lines = r.stderr.decode().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(
        "wassh: plugin 'proxy' cannot make its offer: ValueError: bad proxy URL"
    )
    assert message in lines[0]
    assert "secret" not in lines[0]


def test_bypass_without_a_proxy_refuses_to_start(netclient: Path) -> None:
    r = subprocess.run(
        [*WASSH, "run", "--proxy-bypass", "*.internal", str(netclient), "echo", "127.0.0.1", "9"],
        capture_output=True,
        timeout=60,
    )
    assert r.returncode == 2, r
    assert b"--proxy-bypass" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr


def test_transports_lists_the_proxy(danted: Danted) -> None:
    r = subprocess.run([*WASSH, "transports"], capture_output=True, text=True, timeout=60)
    assert "unavailable: no proxy configured (--proxy URL)" in r.stdout, r
    r = subprocess.run(
        [*WASSH, "transports", "--proxy", danted.url("socks5h", "me:pw@")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    line = next(x for x in r.stdout.splitlines() if x.startswith("proxy"))
    assert "rank  500" in line and line.endswith("available"), r.stdout
