"""A C guest built with the SDK talks to real loopback servers through transport_tcp."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from suitekit import EchoServer, run_guest


def test_resolve_name_gives_fake_addresses(netclient: Path) -> None:
    r = run_guest(netclient, "resolve", "db.internal", "5432")
    assert r.code == 0
    assert r.stdout.splitlines() == [
        "proto -1 addr inet6 100::1 5432",
        "proto -1 addr inet 0.0.0.1 5432",
    ]


def test_resolve_same_name_keeps_its_address_and_others_differ(tmp_path: Path) -> None:
    from guestbuild import build_guest

    src = tmp_path / "two.c"
    src.write_text(
        "#include <netdb.h>\n#include <stdio.h>\n#include <string.h>\n#include <arpa/inet.h>\n"
        "static void show(const char *n) { struct addrinfo h, *r; memset(&h, 0, sizeof h);"
        ' h.ai_family = AF_INET; if (getaddrinfo(n, "1", &h, &r)) { puts("fail"); return; }'
        " char b[64]; inet_ntop(AF_INET, &((struct sockaddr_in *)r->ai_addr)->sin_addr, b, 64);"
        ' printf("%s %s\\n", n, b); freeaddrinfo(r); }\n'
        'int main(void) { show("a.example"); show("b.example"); show("a.example"); return 0; }\n'
    )
    r = run_guest(build_guest(src, sdk=True))
    assert r.stdout.splitlines() == [
        "a.example 0.0.0.1",
        "b.example 0.0.0.2",
        "a.example 0.0.0.1",
    ]


def test_resolve_numbers_and_localhost_are_real(netclient: Path) -> None:
    assert run_guest(netclient, "resolve", "127.0.0.1", "80").stdout == (
        "proto 0 addr inet 127.0.0.1 80\n"
    )
    assert run_guest(netclient, "resolve", "::1", "80").stdout == "proto 0 addr inet6 ::1 80\n"
    assert run_guest(netclient, "resolve", "localhost", "22").stdout.splitlines() == [
        "proto 0 addr inet6 ::1 22",
        "proto 0 addr inet 127.0.0.1 22",
    ]


def test_echo_by_number_with_half_close(netclient: Path, echo_server: EchoServer) -> None:
    r = run_guest(netclient, "echo", "127.0.0.1", str(echo_server.port), "ping-by-number")
    assert r.code == 0, r
    lines = r.stdout.splitlines()
    assert lines[0] == "ping-by-number"
    assert lines[1] == "[eof after 14 bytes]"
    assert lines[2] == f"peer inet 127.0.0.1 {echo_server.port}"
    assert lines[3].startswith("local inet 127.0.0.1 ")
    assert int(lines[3].split()[-1]) > 0
    (rec,) = echo_server.records
    assert rec.saw_eof and rec.received == 14


def test_echo_by_name_goes_through_fake_dns(netclient: Path, echo_server: EchoServer) -> None:
    r = run_guest(
        netclient,
        "echo",
        "echo.test",
        str(echo_server.port),
        "ping-by-name",
        hosts={"echo.test": "127.0.0.1"},
    )
    assert r.code == 0, r
    # The IPv6 fake address is tried first and fails (echo.test has no IPv6 address);
    # the IPv4 one connects: name resolution is restricted to the socket's family.
    # getpeername reports the fake address the guest dialled, as it would natively.
    assert r.stdout.splitlines()[:3] == [
        "ping-by-name",
        "[eof after 12 bytes]",
        f"peer inet 0.0.0.1 {echo_server.port}",
    ]


def test_echo_over_ipv6(netclient: Path, echo_server_v6: EchoServer) -> None:
    r = run_guest(netclient, "echo", "::1", str(echo_server_v6.port), "six")
    assert r.code == 0, r
    assert r.stdout.splitlines()[2] == f"peer inet6 ::1 {echo_server_v6.port}"


def test_nonblocking_connect_succeeds(netclient: Path, echo_server: EchoServer) -> None:
    r = run_guest(netclient, "nbconnect", "127.0.0.1", str(echo_server.port))
    assert r.stdout.splitlines() == [
        "poll 1 revents OUT",
        "so_error 0 ok",
        "so_error again 0",
        "send 1",
    ]


def test_nonblocking_connect_refused_reports_so_error(netclient: Path, closed_port: int) -> None:
    r = run_guest(netclient, "nbconnect", "127.0.0.1", str(closed_port))
    lines = r.stdout.splitlines()
    assert lines[0].startswith("poll 1 revents")
    assert lines[1] == "so_error 14 Connection refused"
    assert lines[2] == "so_error again 0"  # read-and-clear


def test_connect_refused(netclient: Path, closed_port: int) -> None:
    r = run_guest(netclient, "connect-errno", "127.0.0.1", str(closed_port))
    assert r.stdout == "errno 14 Connection refused\n"


def test_unresolvable_name_is_host_unreachable(netclient: Path) -> None:
    r = run_guest(netclient, "connect-errno", "nothing.invalid", "9", hosts={"other": "::1"})
    # nothing.invalid is handed to the resolver only at connect; .invalid never resolves.
    assert r.stdout == "errno 23 Host is unreachable\n"


def test_socket_options(netclient: Path, echo_server: EchoServer) -> None:
    r = run_guest(netclient, "opts", "127.0.0.1", str(echo_server.port))
    assert r.stdout.splitlines() == [
        "SO_KEEPALIVE set=0 get=0 value=1",
        "SO_REUSEADDR set=0 get=0 value=1",
        "TCP_NODELAY set=0 get=0 value=1",
        "IP_TOS set=0 get=0 value=16",
        "IP_MTU_DISCOVER set=0 get=0 value=0",
        # IPv6 options on an IPv4 socket: Linux refuses to set them (ENOPROTOOPT)
        # and to read them (EOPNOTSUPP, WASI's ENOTSUP = 58).
        "IPV6_TCLASS set=50 get=58 value=-1",
        "IPV6_V6ONLY set=50 get=58 value=-1",
        "SO_ERROR set=50 get=0 value=0",
        "UNKNOWN set=50 get=50 value=-1",
        "SO_TYPE 1",
    ]


def test_two_hundred_concurrent_connections(netclient: Path, echo_server: EchoServer) -> None:
    r = run_guest(netclient, "many", "127.0.0.1", str(echo_server.port), "200")
    assert r.stdout == "ok 200 of 200\n", r
    assert len(echo_server.records) == 200


def test_stdin_socket_relay_with_poll(netclient: Path, echo_server: EchoServer) -> None:
    data = os.urandom(1 << 20)
    out = run_guest(netclient, "relay", "127.0.0.1", str(echo_server.port), stdin=data)
    assert out.code == 0, out.stderr
    assert out.raw_stdout == data
    (rec,) = echo_server.records
    assert rec.received == len(data)
    assert rec.digest.digest() == hashlib.sha256(data).digest()


def test_ipv6_only_options_on_an_ipv6_socket(netclient: Path, echo_server_v6: EchoServer) -> None:
    r = run_guest(netclient, "opts", "::1", str(echo_server_v6.port))
    lines = r.stdout.splitlines()
    assert "IPV6_TCLASS set=0 get=0 value=32" in lines
    # Linux refuses to change V6ONLY on a connected socket; the guest sees that.
    assert "IPV6_V6ONLY set=28 get=0 value=0" in lines
    # Linux takes IP_TOS on an IPv6 socket too (for the IPv4 traffic it may carry).
    assert "IP_TOS set=0 get=0 value=16" in lines


def test_64_mib_echo_byte_for_byte(netclient: Path, echo_server: EchoServer) -> None:
    total = 64 << 20
    r = run_guest(netclient, "bulk", "127.0.0.1", str(echo_server.port), str(total))
    assert r.stdout == f"sent {total} got {total} bad 0\n", r
    (rec,) = echo_server.records
    assert rec.received == total and rec.saw_eof


def test_connect_timeout_gives_etimedout(netclient: Path) -> None:
    import socket
    import time

    # A listener that never accepts, its backlog already full: the kernel drops
    # further SYNs, so a connect hangs until our timeout ends it.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        fillers.append(s)
    time.sleep(0.2)
    from wassh import TransportConfig

    start = time.monotonic()
    r = run_guest(
        netclient,
        "connect-errno",
        "127.0.0.1",
        str(port),
        config=TransportConfig(connect_timeout=0.5),
    )
    elapsed = time.monotonic() - start
    assert r.stdout == "errno 73 Operation timed out\n"  # wasi-libc words ETIMEDOUT so
    assert 0.4 < elapsed < 5
    for s in fillers:
        s.close()
    server.close()
