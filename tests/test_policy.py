"""The network policy, against real guests and real listeners.

Every form of sending a packet is tried with the policy allowing and denying it;
a denial must reach the guest as EACCES and the target must receive nothing.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from guestbuild import build_guest
from relayhelpers import RelayProcess, relay_config, run_guest_async
from suitekit import GUESTS, EchoServer, run_guest
from wassh import TransportConfig, hookimpl
from wassh.policy import Denied, NetworkPolicy, PolicyError, parse_address, parse_rule

WASSH = Path(sys.executable).parent / "wassh"
DENIED = "Permission denied"


@pytest.fixture(scope="session")
def probe() -> Path:
    return build_guest(GUESTS / "net" / "policyprobe.c", sdk=True)


@pytest.fixture
def udp_target() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.5)
    yield sock
    sock.close()


def received_nothing(server: EchoServer) -> bool:
    return server.wait_connections(1, timeout=0.3) == 0


def policy(**rules: list[str]) -> TransportConfig:
    return TransportConfig(**rules)  # type: ignore[arg-type]


# -- the grammar ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "host", "port", "matches"),
    [
        ("*.example.com", "a.example.com", 1, True),
        ("*.example.com", "a.b.example.com", 1, True),
        ("*.example.com", "example.com", 1, False),
        ("*.example.com", "example.com.evil.net", 1, False),
        ("*.example.com", "aexample.com", 1, False),
        ("db-*.example.com", "db-7.example.com", 1, True),
        ("db-*.example.com", "db-7.x.example.com", 1, False),
        ("10.0.0.*:*", "10.0.0.1.attacker.example", 1, False),
        ("10.0.0.*:*", "10.0.0.9.nip.io", 6379, False),
        ("10.0.0.*", "10.0.0.9", 1, True),
        ("Example.COM.", "example.com", 80, True),
        ("example.com:443", "example.com", 80, False),
        ("example.com:1000-2000", "example.com", 1500, True),
        ("example.com:1000-2000", "example.com", 2001, False),
        ("*", "anything.at.all", 9, True),
        ("*:22", "anything", 23, False),
        ("10.0.0.0/8", "10.200.3.4", 22, True),
        ("10.0.0.0/8", "11.0.0.1", 22, False),
        ("[fd00::]/8", "fd12::1", 22, True),
        ("[fd00::/8]:22", "fd12::1", 22, True),
        ("[fd00::]/8:22", "fd12::1", 23, False),
        ("[::1]:22", "::1", 22, True),
        ("127.0.0.0/8", "127.1", 80, True),  # numeric forms a resolver accepts
        ("127.0.0.0/8", "2130706433", 80, True),
        ("127.0.0.0/8", "0x7f.1", 80, True),
        ("127.0.0.0/8", "::ffff:127.0.0.1", 80, True),
        ("127.0.0.0/8", "127.0.0.1.", 80, True),  # the root's dot changes nothing
        ("127.0.0.0/8", "127.1.", 80, True),
        ("[::]/0", "127.0.0.1", 80, False),  # IPv6 rules stay about IPv6
        ("[::ffff:0:0]/96", "10.1.1.1", 80, True),  # unless written for mapped addresses
    ],
)
def test_patterns_match_as_documented(pattern: str, host: str, port: int, matches: bool) -> None:
    rule = parse_rule(pattern, "--connect-allow")
    address = parse_address(host)
    if address is not None:
        assert rule.matches_address(address, port) is matches
    else:
        assert rule.matches_name(host.lower(), port) is matches


@pytest.mark.parametrize(
    ("pattern", "complaint"),
    [
        ("", "empty pattern"),
        ("::1", "write IPv6 addresses in brackets"),
        ("::1:22", "write IPv6 addresses in brackets"),
        ("[::1", "'[' without ']'"),
        ("[::1]x", "expected [ADDRESS]:PORTS"),
        ("[1.2.3.4]:5", "brackets are for IPv6"),
        ("host:", "nothing after ':'"),
        ("host:70000", "0-65535"),
        ("host:20-10", "low to high"),
        ("host:8o", "expected N, N-M or *"),
        ("host:\u0663", "expected N, N-M or *"),  # an Arabic-Indic digit is not a port
        ("10.0.0.1/8", "has host bits set"),
        ("10.0.0.0/33", "bad CIDR"),
        ("bad host", "bad host"),
        ("a..b", "bad host"),
        ("ex?mple.com", "bad host"),
    ],
)
def test_bad_patterns_say_what_is_wrong(pattern: str, complaint: str) -> None:
    with pytest.raises(PolicyError, match=complaint.replace("[", r"\[").replace("*", r"\*")):
        parse_rule(pattern, "--connect-allow")


def test_deny_wins_and_names_meet_their_addresses() -> None:
    p = NetworkPolicy.from_patterns(["db.example", "10.0.0.0/8"], ["127.0.0.0/8", "bad.example"])
    p.check_destination("db.example", 5432, addresses_checked=False)
    with pytest.raises(Denied, match=r"db.example:5432 \(127.0.0.1\): --connect-deny 127.0.0.0/8"):
        p.check_address("db.example", ipaddress.ip_address("127.0.0.1"), 5432)
    # A name no name rule allows may still reach an allowed address, when the
    # transport resolves it here; a relay resolving it elsewhere gets no such chance.
    p.check_destination("other.example", 22, addresses_checked=True)
    p.check_address("other.example", ipaddress.ip_address("10.1.2.3"), 22)
    with pytest.raises(Denied, match="no --connect-allow rule matches"):
        p.check_destination("other.example", 22, addresses_checked=False)
    with pytest.raises(Denied):
        p.check_address("other.example", ipaddress.ip_address("192.0.2.1"), 22)
    with pytest.raises(Denied, match=r"--connect-deny bad\.example"):
        p.check_destination("BAD.example.", 1, addresses_checked=True)


def test_listen_rules() -> None:
    p = NetworkPolicy.from_patterns(listen_allow=["0.0.0.0:8080", "[::]", "192.0.2.0/24"])
    for address, port in [("127.0.0.1", 1), ("::1", 1), ("::ffff:127.0.0.1", 1)]:
        assert p.allows_listen(ipaddress.ip_address(address), port)
    assert p.allows_listen(ipaddress.ip_address("0.0.0.0"), 8080)
    assert not p.allows_listen(ipaddress.ip_address("0.0.0.0"), 8081)
    assert p.allows_listen(ipaddress.ip_address("::"), 9)
    assert p.allows_listen(ipaddress.ip_address("192.0.2.77"), 9)
    assert not p.allows_listen(ipaddress.ip_address("198.51.100.1"), 9)
    assert not NetworkPolicy().allows_listen(ipaddress.ip_address("0.0.0.0"), 0)


def test_a_plugin_cannot_widen_the_policy(probe: Path, echo_server: EchoServer) -> None:
    class Widener:
        name = "widener"

        @hookimpl
        def wassh_transport_offer(self, config: TransportConfig) -> list[object]:
            config.connect_deny.clear()  # too late: the policy was built before offers
            config.connect_allow.append("*")
            return []

    config = policy(connect_deny=["127.0.0.0/8"])
    r = run_guest(
        probe, "connect", "127.0.0.1", str(echo_server.port), config=config, plugins=[Widener()]
    )
    assert r.stdout == f"connect4: {DENIED}\n", r
    assert received_nothing(echo_server)


# -- every way out, with real guests ------------------------------------------------


def test_allowed_connect_works(probe: Path, echo_server: EchoServer) -> None:
    config = policy(connect_allow=[f"127.0.0.1:{echo_server.port}"])
    r = run_guest(probe, "connect", "127.0.0.1", str(echo_server.port), config=config)
    assert r.stdout == "connect4: ok\nsend: ok\n", r
    assert echo_server.wait_connections(1) == 1


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.1", "2130706433", "0x7f.0.0.1", "::ffff:127.0.0.1"]
)
def test_denied_direct_connect_in_every_numeric_form(
    probe: Path, echo_server: EchoServer, host: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = policy(connect_deny=["127.0.0.0/8"])
    with caplog.at_level(logging.WARNING, logger="wassh.policy"):
        r = run_guest(probe, "connect", host, str(echo_server.port), config=config)
    assert DENIED in r.stdout and "ok" not in r.stdout, r
    assert received_nothing(echo_server)
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "wassh.policy"]
    assert lines and all("--connect-deny 127.0.0.0/8" in line for line in lines), lines


def test_allow_list_denies_everything_else(probe: Path, echo_server: EchoServer) -> None:
    config = policy(connect_allow=[f"127.0.0.1:{echo_server.port + 1}", "*.example.com"])
    r = run_guest(probe, "connect", "127.0.0.1", str(echo_server.port), config=config)
    assert r.stdout == f"connect4: {DENIED}\n", r
    assert received_nothing(echo_server)


def test_name_resolving_to_a_denied_address(probe: Path, echo_server: EchoServer) -> None:
    config = policy(connect_allow=["db.example:*"], connect_deny=["127.0.0.0/8"])
    config.hosts["db.example"] = ["127.0.0.1"]
    r = run_guest(probe, "connect", "db.example", str(echo_server.port), config=config)
    assert "ok" not in r.stdout and DENIED in r.stdout, r
    assert received_nothing(echo_server)
    # The same name, allowed and resolving to an allowed address, connects.
    config = policy(connect_allow=["db.example:*"])
    config.hosts["db.example"] = ["127.0.0.1"]
    r = run_guest(probe, "connect", "db.example", str(echo_server.port), config=config)
    assert "connect4: ok" in r.stdout, r
    assert echo_server.wait_connections(1) == 1


def test_name_allowed_by_the_address_it_resolves_to(probe: Path, echo_server: EchoServer) -> None:
    config = policy(connect_allow=["127.0.0.0/8"])
    config.hosts["db.example"] = ["127.0.0.1"]
    r = run_guest(probe, "connect", "db.example", str(echo_server.port), config=config)
    assert "connect4: ok" in r.stdout, r


def test_bound_then_connect_is_checked(probe: Path, echo_server: EchoServer) -> None:
    config = policy(connect_deny=["127.0.0.0/8"])
    r = run_guest(probe, "bindconnect", "127.0.0.1", str(echo_server.port), config=config)
    assert r.stdout == f"bind: ok\nconnect: {DENIED}\n", r
    assert received_nothing(echo_server)
    r = run_guest(probe, "bindconnect", "127.0.0.1", str(echo_server.port))
    assert r.stdout == "bind: ok\nconnect: ok\nsend: ok\n", r


def test_udp_sendto_and_connect_are_checked(probe: Path, udp_target: socket.socket) -> None:
    port = str(udp_target.getsockname()[1])
    r = run_guest(probe, "udp", "127.0.0.1", port, config=policy(connect_deny=["*:" + port]))
    assert r.stdout == f"sendto: {DENIED}\nconnect: {DENIED}\n", r
    with pytest.raises(TimeoutError):
        udp_target.recv(16)
    r = run_guest(probe, "udp", "127.0.0.1", port, config=policy(connect_allow=["127.0.0.1"]))
    assert r.stdout == "sendto: ok\nconnect: ok\nsend: ok\n", r
    assert sorted([udp_target.recv(16), udp_target.recv(16)]) == [b"x", b"y"]


def test_deny_everything_still_allows_loopback_listening(
    probe: Path, echo_server: EchoServer
) -> None:
    config = policy(connect_deny=["*"])
    r = run_guest(probe, "connect", "127.0.0.1", str(echo_server.port), config=config)
    assert r.stdout == f"connect4: {DENIED}\n", r
    assert run_guest(probe, "listen", "127.0.0.1", config=config).stdout == "bind: ok\nlisten: ok\n"
    assert run_guest(probe, "listen", "0.0.0.0", config=config).stdout == f"bind: {DENIED}\n"
    assert received_nothing(echo_server)


async def test_relay_gets_the_name_check(probe: Path, echo_server: EchoServer) -> None:
    relay = RelayProcess("--allow", f"*:{echo_server.port}", "--add-host", "echo.test=127.0.0.1")
    try:
        url, port = f"ws://127.0.0.1:{relay.port}", str(echo_server.port)
        denied = relay_config(url, "corp-relay-v4", claim="all")
        denied.connect_deny = ["echo.test"]
        r = await run_guest_async(probe, "connect", "echo.test", port, config=denied)
        assert "ok" not in r.stdout and DENIED in r.stdout, r
        # An address rule cannot be checked where the relay resolves: fail closed.
        by_address = relay_config(url, "corp-relay-v4", claim="all")
        by_address.connect_allow = ["127.0.0.0/8"]
        r = await run_guest_async(probe, "connect", "echo.test", port, config=by_address)
        assert "ok" not in r.stdout and DENIED in r.stdout, r
        assert relay.events("v4_connect") == []
        assert received_nothing(echo_server)
        allowed = relay_config(url, "corp-relay-v4", claim="all")
        allowed.connect_allow = [f"echo.test:{port}"]
        r = await run_guest_async(probe, "connect", "echo.test", port, config=allowed)
        assert "ok" in r.stdout, r
        hosts = [e["host"] for e in relay.events("v4_connect")]
        assert hosts == ["echo.test"] * len(hosts) and hosts, hosts  # once per family tried
    finally:
        relay.close()


async def test_bound_socket_cannot_bypass_a_relay_claim(
    probe: Path, echo_server: EchoServer
) -> None:
    relay = RelayProcess("--allow", f"*:{echo_server.port}")
    try:
        config = relay_config(f"ws://127.0.0.1:{relay.port}", "corp-relay-v4", claim="all")
        r = await run_guest_async(
            probe, "bindconnect", "127.0.0.1", str(echo_server.port), config=config
        )
        assert r.stdout == "bind: ok\nconnect: ok\nsend: ok\n", r
        (event,) = relay.events("v4_connect")  # it went through the relay, not around it
        assert event["host"] == "127.0.0.1"
    finally:
        relay.close()


# -- the command line, and failing closed ------------------------------------------------


def wassh(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(WASSH), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def one_line_error(r: subprocess.CompletedProcess[str], *words: str) -> None:
    assert r.returncode == 2, r
    assert r.stdout == "", r
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("wassh: "), r.stderr
    for word in words:
        assert word in lines[0], r.stderr


def test_cli_policy_flags(probe: Path, echo_server: EchoServer) -> None:
    port = str(echo_server.port)
    r = wassh("run", "--connect-deny", "127.0.0.0/8", str(probe), "connect", "127.1", port)
    assert r.returncode == 1 and r.stdout == f"connect4: {DENIED}\n", r
    assert r.stderr == (
        f"wassh: wassh.policy: denied connect to 127.0.0.1:{port}: --connect-deny 127.0.0.0/8\n"
    )
    r = wassh(
        "run", "--connect-allow", f"127.0.0.1:{port}", str(probe), "connect", "127.0.0.1", port
    )
    assert r.returncode == 0 and r.stdout == "connect4: ok\nsend: ok\n", r
    assert echo_server.wait_connections(1) == 1


@pytest.mark.parametrize(
    ("flag", "pattern", "complaint"),
    [
        ("--connect-allow", "::1", "brackets"),
        ("--connect-deny", "10.0.0.0/40", "bad CIDR"),
        ("--listen-allow", "0.0.0.0:http", "bad port"),
    ],
)
def test_cli_bad_pattern_is_one_line(probe: Path, flag: str, pattern: str, complaint: str) -> None:
    one_line_error(wassh("run", flag, pattern, str(probe), "listen", "127.0.0.1"), complaint)


def test_relay_transport_missing_stops_the_run(probe: Path, echo_server: EchoServer) -> None:
    port = str(echo_server.port)
    relay = ["--relay", "ws://127.0.0.1:9/", "--relay-claim", "all"]
    r = wassh(
        "run", *relay, "--block-plugin", "websocket", str(probe), "connect", "127.0.0.1", port
    )
    # Blocked, the plugin adds no options: --relay is not an option of this run.
    one_line_error(r, "unrecognized arguments: --relay")
    env = dict(os.environ, WASSH_LOAD_PLUGINS="tcp,listen")
    r = wassh("run", *relay, str(probe), "connect", "127.0.0.1", port, env=env)
    one_line_error(r, "settings given for plugin 'websocket' (claim, url)", "no loaded plugin")
    r = wassh("run", "--relay", "ftp://127.0.0.1/", str(probe), "connect", "127.0.0.1", port)
    one_line_error(r, "'websocket' cannot make its offer", "ws(s)://")
    assert received_nothing(echo_server)


@pytest.mark.parametrize(
    ("args", "env", "words"),
    [
        (["--block-plugin", "nosuch"], {}, ["--block-plugin", "'nosuch'", "known:"]),
        ([], {"WASSH_BLOCK_PLUGINS": "tcp,nosuch"}, ["WASSH_BLOCK_PLUGINS", "'nosuch'"]),
        ([], {"WASSH_LOAD_PLUGINS": "tpc"}, ["WASSH_LOAD_PLUGINS", "'tpc'"]),
    ],
)
def test_unknown_plugin_names_are_errors(
    probe: Path, echo_server: EchoServer, args: list[str], env: dict[str, str], words: list[str]
) -> None:
    r = wassh(
        "run",
        *args,
        str(probe),
        "connect",
        "127.0.0.1",
        str(echo_server.port),
        env=dict(os.environ, **env),
    )
    one_line_error(r, *words)
    assert received_nothing(echo_server)


def _third_party(tmp_path: Path, body: str) -> dict[str, str]:
    (tmp_path / "broken_transport.py").write_text(body)
    dist = tmp_path / "broken_transport-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-transport\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[wassh]\nbroken = broken_transport\n")
    return dict(os.environ, PYTHONPATH=str(tmp_path))


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            "from wassh import hookimpl\n"
            "@hookimpl\n"
            "def wassh_transport_offer(config):\n"
            "    raise RuntimeError('satellite dish not found')\n",
            ["plugin 'broken' cannot make its offer", "satellite dish not found", "--block-plugin"],
        ),
        (
            "import no_such_module_anywhere\n",
            ["plugin 'broken'", "broken_transport from broken-transport", "failed to load"],
        ),
    ],
)
def test_broken_plugin_stops_the_run(
    probe: Path, echo_server: EchoServer, tmp_path: Path, body: str, words: list[str]
) -> None:
    env = _third_party(tmp_path, body)
    r = wassh("run", str(probe), "connect", "127.0.0.1", str(echo_server.port), env=env)
    one_line_error(r, *words)
    assert received_nothing(echo_server)
    # Blocked by name, it no longer stands in the way.
    r = wassh(
        "run",
        "--block-plugin",
        "broken",
        str(probe),
        "connect",
        "127.0.0.1",
        str(echo_server.port),
        env=env,
    )
    assert r.returncode == 0 and "connect4: ok" in r.stdout, r


def test_transports_shows_the_policy() -> None:
    r = wassh(
        "transports",
        "--connect-allow",
        "*.corp.example:22",
        "--connect-deny",
        "10.0.0.0/8",
        "--listen-allow",
        "[::]:8080",
    )
    assert r.returncode == 0, r
    assert r.stdout.splitlines()[-5:] == [
        "network policy:",
        "  --connect-allow *.corp.example:22",
        "  --connect-deny 10.0.0.0/8",
        "  --listen-allow [::]:8080",
        "  listen: loopback and the --listen-allow rules",
    ], r.stdout
    r = wassh("transports", "--json", "--connect-deny", "*")
    assert json.loads(r.stdout)["policy"] == {
        "connect_allow": [],
        "connect_deny": ["*"],
        "listen_allow": [],
    }
