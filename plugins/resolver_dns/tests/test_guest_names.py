"""A guest's name lookups end to end: the guest's getaddrinfo, the host, this plugin, real servers.

The guest is the suite's ``names`` program built with the project's SDK; the
servers are Debian's dnsmasq (over UDP, and behind a front that truncates every
UDP answer, so over TCP) and dnsdist serving DNS-over-HTTPS with a certificate
of the test CA. Each lookup is checked where the guest prints it, and at the
server that had to answer it: the guest's addresses, its connects to loopback
echo servers by those names, the EAI_* results of Linux, the connect timeout
as the lookup's deadline, canonical names, reverse lookups, the network policy
on resolved addresses, the command line, and fake addresses when no resolver is
configured.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
import wassh
from dnskit import (
    MANY_ADDRESSES,
    MANY_NAME,
    Dnsmasq,
    DohServer,
    SilentDnsServer,
    TruncatingDnsServer,
)
from guestbuild import build_guest
from resolverkit import warnings
from suitekit import GUESTS, EchoServer, run_guest

WASSH = str(Path(sys.executable).parent / "wassh")
# What the test dnsmasq serves (with MANY_NAME): a name for each echo server, a
# dual-stack name, a name the policy tests deny, and a CNAME to an IPv4-only name.
HOSTS = {
    "echo4.test": ["127.0.0.1"],
    "echo6.test": ["::1"],
    "dual.test": ["127.0.0.6", "::6"],
    "www.test": ["127.0.0.5"],
    "denied.test": ["127.0.0.1"],
}
CNAMES = {"alias.test": "www.test"}
SERVFAIL = ("broken.test",)

NONAME = "error EAI_NONAME: Name or service not known"
NODATA = "error EAI_NODATA: No address associated with hostname"
AGAIN = "error EAI_AGAIN: Temporary failure in name resolution"
# Above what a lookup on a loaded machine takes, far below the resolver's own timeout.
SHORT_DEADLINE = 1.0
LONG_RESOLVER_TIMEOUT = 30.0
BOUND = 10.0


@dataclass(frozen=True)
class Servers:
    dnsmasq: Dnsmasq
    tcp_only: TruncatingDnsServer
    doh: DohServer
    ca_file: Path


@dataclass(frozen=True)
class Route:
    """One way to the servers: the plugin's settings, and how many queries the server
    at its front has taken so far."""

    name: str
    settings: Mapping[str, object]
    asked: Callable[[], int]


@pytest.fixture(scope="module")
def names_guest() -> Path:
    return build_guest(GUESTS / "names" / "names.c", sdk=True)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, ca: trustme.CA) -> Iterator[Servers]:
    tmp = tmp_path_factory.mktemp("guest-names")
    ca_file = tmp / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with ExitStack() as stack:
        dnsmasq = stack.enter_context(
            Dnsmasq(tmp / "dnsmasq", HOSTS, servfail_names=SERVFAIL, cnames=CNAMES)
        )
        tcp_only = stack.enter_context(TruncatingDnsServer(dnsmasq.address))
        doh = stack.enter_context(DohServer(tmp / "dnsdist", dnsmasq.address, ca))
        yield Servers(dnsmasq, tcp_only, doh, ca_file)


def doh_queries(doh: DohServer) -> int:
    counters = doh.counters()
    return counters["http1-queries"] + counters["http2-queries"]


@pytest.fixture(params=["udp", "tcp", "doh"])
def route(request: pytest.FixtureRequest, servers: Servers) -> Route:
    if request.param == "udp":
        return Route("udp", {"resolver": servers.dnsmasq.url}, servers.dnsmasq.queries)
    if request.param == "tcp":
        return Route("tcp", {"resolver": servers.tcp_only.url}, lambda: servers.tcp_only.relayed)
    doh = servers.doh
    return Route("doh", {"resolver": doh.url, "ca": str(servers.ca_file)}, lambda: doh_queries(doh))


@pytest.fixture(scope="module")
def echo4() -> Iterator[EchoServer]:
    server = EchoServer("127.0.0.1")
    yield server
    server.close()


@pytest.fixture(scope="module")
def echo6() -> Iterator[EchoServer]:
    server = EchoServer("::1")
    yield server
    server.close()


@pytest.fixture(autouse=True)
def no_host_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """No test here may make the host log an error (a plugin bug, a traceback)."""
    yield
    errors = [r.getMessage() for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    assert errors == []


def guest(
    wasm: Path,
    *args: str,
    dns: Mapping[str, object] | None = None,
    config: wassh.TransportConfig | None = None,
) -> tuple[int, list[str]]:
    """The guest's exit status and output lines, with the plugin's ``dns`` settings."""
    settings = {"dns": dict(dns)} if dns is not None else None
    r = run_guest(wasm, *args, settings=settings, config=config)
    assert r.stderr == "", r.stderr
    return r.code, r.stdout.splitlines()


def via(route: Route, wasm: Path, *args: str) -> tuple[int, list[str]]:
    """``guest`` through ``route``, which must have taken queries for it."""
    before = route.asked()
    got = guest(wasm, *args, dns=route.settings)
    assert route.asked() > before, f"no query reached the {route.name} server"
    return got


@pytest.mark.parametrize(
    ("args", "lines"),
    [
        (("echo4.test",), ["inet 127.0.0.1"]),
        (("echo6.test",), ["inet6 ::1"]),
        (("dual.test",), ["inet6 ::6", "inet 127.0.0.6"]),
        (("dual.test", "inet"), ["inet 127.0.0.6"]),
        (("echo4.test", "inet6", "v4mapped"), ["inet6 ::ffff:127.0.0.1"]),
        (("alias.test", "canon"), ["canonical www.test", "inet 127.0.0.5"]),
    ],
)
def test_the_guest_gets_the_servers_addresses(
    names_guest: Path, route: Route, args: tuple[str, ...], lines: list[str]
) -> None:
    assert via(route, names_guest, "lookup", *args) == (0, lines)


def test_every_address_of_a_truncated_answer_reaches_the_guest(
    names_guest: Path, route: Route, servers: Servers
) -> None:
    """dnsmasq answers at most 512 bytes over UDP: the 40 addresses come truncated and
    are asked again over TCP. dnsmasq rotates the addresses it answers, so their order
    is its own."""
    asked = servers.dnsmasq.queries(MANY_NAME, "A")
    code, lines = via(route, names_guest, "lookup", MANY_NAME, "inet")
    assert code == 0
    assert sorted(lines) == sorted(f"inet {a}" for a in MANY_ADDRESSES)
    assert len(lines) == len(MANY_ADDRESSES)
    # dnsmasq sees the truncated UDP query, then the whole one over TCP (the plugin's, or
    # dnsdist's when it got the truncated answer); behind the truncating front, TCP only.
    over_udp_then_tcp = {"udp": 2, "tcp": 1, "doh": 2}[route.name]
    assert servers.dnsmasq.queries(MANY_NAME, "A") == asked + over_udp_then_tcp


@pytest.mark.parametrize(("name", "family"), [("echo4.test", "inet"), ("echo6.test", "inet6")])
def test_the_guest_connects_to_an_echo_server_by_its_name(
    names_guest: Path,
    route: Route,
    echo4: EchoServer,
    echo6: EchoServer,
    name: str,
    family: str,
) -> None:
    server = echo4 if family == "inet" else echo6
    accepted = len(server.records)
    code, lines = via(route, names_guest, "connect", name, str(server.port), f"hello {name}")
    assert (code, lines) == (0, [f"connected {family} {server.host}", f"reply hello {name}"])
    assert server.wait_connections(accepted + 1) == accepted + 1


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("nowhere.test",), NONAME),
        (("echo4.test", "inet6"), NODATA),
        (("echo6.test", "inet"), NODATA),
        (("broken.test",), AGAIN),
    ],
    ids=["nxdomain", "nodata-v6", "nodata-v4", "servfail"],
)
def test_failures_are_the_eai_results_of_linux(
    names_guest: Path, route: Route, args: tuple[str, ...], error: str
) -> None:
    assert via(route, names_guest, "lookup", *args) == (1, [error])


@pytest.mark.parametrize(
    "name",
    ["echo4\\.test", "echo4\\046test", "echo4.test\\", f"{'a' * 64}.test", "x." * 130 + "test"],
    ids=["escaped-dot", "escaped-octal", "trailing-backslash", "long-label", "long-name"],
)
def test_a_name_no_resolver_takes_is_eai_noname_and_reaches_no_server(
    names_guest: Path, servers: Servers, name: str
) -> None:
    asked = servers.dnsmasq.queries()
    dns = {"resolver": servers.dnsmasq.url}
    assert guest(names_guest, "lookup", name, dns=dns) == (1, [NONAME])
    assert servers.dnsmasq.queries() == asked


def test_a_server_that_never_answers_is_eai_again_at_the_resolver_timeout(
    names_guest: Path,
) -> None:
    with SilentDnsServer() as silent:
        started = time.monotonic()
        got = guest(names_guest, "lookup", "echo4.test", dns={"resolver": silent.url, "timeout": 1})
        took = time.monotonic() - started
        assert silent.received > 0
    assert got == (1, [AGAIN])
    assert took < BOUND, took


def test_the_connect_timeout_ends_a_lookup_the_server_never_answers(names_guest: Path) -> None:
    with SilentDnsServer() as silent:
        started = time.monotonic()
        got = guest(
            names_guest,
            "lookup",
            "echo4.test",
            dns={"resolver": silent.url, "timeout": LONG_RESOLVER_TIMEOUT},
            config=wassh.TransportConfig(connect_timeout=SHORT_DEADLINE),
        )
        took = time.monotonic() - started
        assert silent.received > 0
    assert got == (1, [AGAIN])
    assert took < BOUND, took


def test_a_doh_server_the_ca_does_not_vouch_for_is_eai_again(
    names_guest: Path, servers: Servers, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The same dnsdist the trusted route uses; only the CA differs. A certificate that
    does not verify is, as any server the resolver cannot use, a temporary failure."""
    caplog.set_level(logging.WARNING, "wassh.resolver.dns")
    stranger = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(stranger))
    answered = doh_queries(servers.doh)
    got = guest(
        names_guest, "lookup", "echo4.test", dns={"resolver": servers.doh.url, "ca": str(stranger)}
    )
    assert got == (1, [AGAIN])
    assert doh_queries(servers.doh) == answered
    assert warnings(caplog.records) == [
        f"DoH server {servers.doh.url}: certificate verify failed: "
        "unable to get local issuer certificate"
    ]


def test_gethostbyname_gives_the_canonical_name_and_the_addresses(
    names_guest: Path, route: Route
) -> None:
    assert via(route, names_guest, "hostent", "alias.test") == (
        0,
        ["h_name www.test", "inet 127.0.0.5"],
    )
    # h_errno: HOST_NOT_FOUND (1), NO_DATA (4), TRY_AGAIN (2), as Linux's netdb.h numbers them.
    assert via(route, names_guest, "hostent", "nowhere.test") == (1, ["h_errno 1"])
    assert via(route, names_guest, "hostent", "echo6.test") == (1, ["h_errno 4"])
    assert via(route, names_guest, "hostent", "broken.test") == (1, ["h_errno 2"])


def test_getnameinfo_gives_back_the_name_the_guest_looked_up(
    names_guest: Path, route: Route, servers: Servers
) -> None:
    assert via(route, names_guest, "reverse", "127.0.0.5", "www.test") == (0, ["name www.test"])
    # Nothing looked up: the host knows no name for the address, and asks no server
    # (dnsmasq would have answered the PTR query from its hosts file).
    ptr = servers.dnsmasq.queries(rdtype="PTR")
    assert guest(names_guest, "reverse", "127.0.0.5", dns=route.settings) == (
        1,
        ["error EAI_NONAME"],
    )
    assert servers.dnsmasq.queries(rdtype="PTR") == ptr


def test_the_policy_judges_resolved_addresses(
    names_guest: Path, servers: Servers, echo4: EchoServer
) -> None:
    dns = {"resolver": servers.dnsmasq.url}
    port = str(echo4.port)

    def connect(name: str, config: wassh.TransportConfig) -> tuple[int, list[str]]:
        return guest(names_guest, "connect", name, port, "hi", dns=dns, config=config)

    accepted = len(echo4.records)
    allow_name = wassh.TransportConfig(connect_allow=["echo4.test"])
    assert connect("echo4.test", allow_name) == (
        0,
        ["connected inet 127.0.0.1", "reply hi"],
    )
    assert echo4.wait_connections(accepted + 1) == accepted + 1
    refused = (1, ["connect inet: Permission denied"])
    # denied.test resolves to the echo server's address: the name is still denied.
    assert connect("denied.test", wassh.TransportConfig(connect_deny=["denied.test"])) == refused
    # Only another address allowed: the resolved one is not it.
    assert connect("echo4.test", wassh.TransportConfig(connect_allow=["127.0.0.2"])) == refused
    assert echo4.wait_connections(accepted + 2, timeout=0.5) == accepted + 1


def test_without_a_resolver_names_get_fake_addresses_and_no_server_is_asked(
    names_guest: Path, servers: Servers, echo4: EchoServer
) -> None:
    asked = servers.dnsmasq.queries()
    assert guest(names_guest, "lookup", "echo4.test") == (0, ["inet6 100::1", "inet 0.0.0.1"])
    # The transport takes a fake address back to its name, which the host's table maps
    # to IPv4 only: the IPv6 one leads nowhere, the IPv4 one to the echo server.
    config = wassh.TransportConfig(hosts={"echo4.test": ["127.0.0.1"]}, host_dns=False)
    code, lines = guest(names_guest, "connect", "echo4.test", str(echo4.port), "hi", config=config)
    assert (code, lines) == (
        0,
        ["connect inet6: Host is unreachable", "connected inet 0.0.0.1", "reply hi"],
    )
    assert servers.dnsmasq.queries() == asked


def wassh_run(*args: str) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([WASSH, "run", *args], capture_output=True, text=True, timeout=60)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def test_the_command_line_looks_names_up_over_dns(names_guest: Path, servers: Servers) -> None:
    url = servers.dnsmasq.url
    r = wassh_run("--resolver", url, str(names_guest), "lookup", "dual.test")
    assert (r.returncode, r.stdout) == (0, "inet6 ::6\ninet 127.0.0.6\n"), r.stderr
    r = wassh_run("--resolver", url, str(names_guest), "lookup", "nowhere.test")
    assert (r.returncode, r.stdout) == (1, f"{NONAME}\n"), r.stderr


def test_the_command_line_connects_through_doh(
    names_guest: Path, servers: Servers, echo4: EchoServer
) -> None:
    doh = servers.doh
    answered = doh_queries(doh)
    r = wassh_run(
        "--resolver",
        doh.url,
        "--resolver-ca",
        str(servers.ca_file),
        str(names_guest),
        "connect",
        "echo4.test",
        str(echo4.port),
        "over https",
    )
    assert (r.returncode, r.stdout) == (0, "connected inet 127.0.0.1\nreply over https\n"), r
    assert doh_queries(doh) > answered


def test_the_command_lines_connect_timeout_ends_a_lookup(names_guest: Path) -> None:
    with SilentDnsServer() as silent:
        started = time.monotonic()
        r = wassh_run(
            "--resolver",
            silent.url,
            "--resolver-timeout",
            str(LONG_RESOLVER_TIMEOUT),
            "--connect-timeout",
            str(SHORT_DEADLINE),
            str(names_guest),
            "lookup",
            "echo4.test",
        )
        took = time.monotonic() - started
    assert (r.returncode, r.stdout) == (1, f"{AGAIN}\n"), r.stderr
    assert took < BOUND, took
