"""Plugin discovery, ranking, blocking and embedder-registered transports."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import wassh
from suitekit import EchoServer, run_guest
from wassh import STREAM, Offer, TransportConfig, Transports, hookimpl, make_plugin_manager
from wassh.plugins import ConnectRequest

WASSH = Path(sys.executable).parent / "wassh"


class RankedPlugin(wassh.os_socket.OSSocketHooks):
    def __init__(self, name: str, rank: int, available: bool = True) -> None:
        self.name = name
        self.rank = rank
        self.available = available

    @hookimpl
    def wassh_transport_offer(self, config: TransportConfig) -> Offer:
        return Offer(
            self.name,
            frozenset({STREAM}),
            self.rank,
            self.available,
            "" if self.available else "not here",
        )

    @hookimpl
    def wassh_sock_connect(self, sock: wassh.SocketHandle[object], host: str, port: int) -> bool:
        raise ConnectionRefusedError(111, "ranked plugins connect nowhere")

    @hookimpl
    def wassh_sock_connect_check(self, sock: wassh.SocketHandle[object]) -> bool:
        return True


class UpperCaseTransport(wassh.os_socket.OSSocketHooks):
    """An embedder's transport: 'magic.test' is served by an in-process peer over a
    socketpair that answers in upper case; everything else is declined."""

    name = "uppercase"

    def __init__(self) -> None:
        self.hosts_seen: list[tuple[str, int]] = []

    @hookimpl
    def wassh_transport_offer(self, config: TransportConfig) -> Offer:
        return Offer(
            "uppercase", frozenset({STREAM}), rank=500, accepts=lambda req: req.host == "magic.test"
        )

    @hookimpl
    def wassh_sock_connect(
        self, sock: wassh.SocketHandle[socket.socket], host: str, port: int
    ) -> bool:
        self.hosts_seen.append((host, port))
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        sock.state = ours
        threading.Thread(target=self._peer, args=(theirs,), daemon=True).start()
        return True

    @hookimpl
    def wassh_sock_connect_check(self, sock: wassh.SocketHandle[socket.socket]) -> bool:
        return True

    @staticmethod
    def _peer(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data.upper())

    @hookimpl
    def wassh_sock_getname(
        self, sock: wassh.SocketHandle[socket.socket], remote: bool
    ) -> tuple[str, int]:
        return ("10.9.8.7", 4242) if remote else ("0.0.0.0", 0)


def test_installed_transport_is_discovered_through_its_entry_point() -> None:
    pm = make_plugin_manager()
    assert pm.get_plugin("tcp") is not None
    names = [offer.name for offer, _ in Transports(pm, TransportConfig()).offers]
    assert "tcp" in names


def test_cli_lists_installed_transports_from_a_fresh_process() -> None:
    out = subprocess.run(
        [str(WASSH), "transports", "--json"], capture_output=True, text=True, check=True
    )
    rows = {row["name"]: row for row in json.loads(out.stdout)["transports"]}
    assert rows["tcp"]["available"] is True
    assert rows["tcp"]["kinds"] == ["stream"]
    assert rows["tcp"]["rank"] == 100


def test_entry_point_of_a_distribution_on_sys_path(tmp_path: Path) -> None:
    (tmp_path / "third_party_transport.py").write_text(
        "from wassh import STREAM, Offer, hookimpl\n"
        "@hookimpl\n"
        "def wassh_transport_offer(config):\n"
        "    return Offer('thirdparty', frozenset({STREAM}), rank=7, available=False,\n"
        "                 reason='needs a satellite')\n"
    )
    dist = tmp_path / "third_party_transport-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: third-party-transport\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text("[wassh]\nthirdparty = third_party_transport\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    out = subprocess.run(
        [str(WASSH), "transports", "--json"], capture_output=True, text=True, check=True, env=env
    )
    rows = {row["name"]: row for row in json.loads(out.stdout)["transports"]}
    assert rows["thirdparty"] == {
        "name": "thirdparty",
        "plugin": "thirdparty",
        "rank": 7,
        "kinds": ["stream"],
        "available": False,
        "reason": "needs a satellite",
    }
    # Blocked by name through the environment, it disappears.
    env["WASSH_BLOCK_PLUGINS"] = "thirdparty"
    out = subprocess.run(
        [str(WASSH), "transports", "--json"], capture_output=True, text=True, check=True, env=env
    )
    assert "thirdparty" not in {row["name"] for row in json.loads(out.stdout)["transports"]}


def test_ranking_orders_by_rank_then_name_and_skips_unavailable() -> None:
    plugins = [
        RankedPlugin("b-low", 5),
        RankedPlugin("a-high", 50),
        RankedPlugin("c-high", 50),
        RankedPlugin("z-best-but-missing", 999, available=False),
    ]
    pm = make_plugin_manager(entry_points=False, plugins=plugins)
    transports = Transports(pm, TransportConfig())
    assert [o.name for o, _ in transports.offers] == [
        "z-best-but-missing",
        "a-high",
        "c-high",
        "b-low",
    ]
    chosen = transports.choose(ConnectRequest(STREAM, socket.AF_INET, "h", 1))
    assert chosen is not None and chosen.name == "a-high"


def test_blocking_the_tcp_transport_makes_socket_fail(
    netclient: Path, echo_server: EchoServer
) -> None:
    r = run_guest(netclient, "echo", "127.0.0.1", str(echo_server.port), block=["tcp", "listen"])
    assert r.stdout == "connect: Protocol not supported\n"
    # With a listening transport left, stream sockets exist (they may listen), but
    # nothing can dial out.
    r = run_guest(netclient, "echo", "127.0.0.1", str(echo_server.port), block=["tcp"])
    assert r.stdout == "connect: Network unreachable\n"
    assert echo_server.records == []


def test_embedder_plugin_serves_its_hosts_and_declines_the_rest(
    netclient: Path, echo_server: EchoServer
) -> None:
    plugin = UpperCaseTransport()
    r = run_guest(netclient, "echo", "magic.test", "7", "shout", plugins=[plugin])
    assert r.code == 0, r
    # getpeername reports the fake address the guest dialled, not the plugin's idea
    assert r.stdout.splitlines()[:3] == ["SHOUT", "[eof after 5 bytes]", "peer inet6 100::1 7"]
    # fake DNS handed the plugin the name, not an address; IPv6 was tried first
    assert plugin.hosts_seen == [("magic.test", 7)]
    # a literal address is not accepted by the plugin and goes to tcp
    r = run_guest(netclient, "echo", "127.0.0.1", str(echo_server.port), "quiet", plugins=[plugin])
    assert r.stdout.startswith("quiet\n")
    assert len(echo_server.records) == 1


def test_hook_specs_are_documented() -> None:
    from wassh import hookspecs

    for name in dir(hookspecs):
        if name.startswith("wassh_"):
            doc = getattr(hookspecs, name).__doc__ or ""
            assert len(doc.strip()) > 20, f"{name} has no documentation"


def test_misspelt_hook_is_an_error() -> None:
    class Typo:
        @hookimpl
        def wassh_sock_conect(self, sock: object) -> None: ...

    with pytest.raises(Exception, match="unknown hook"):
        make_plugin_manager(entry_points=False, plugins=[Typo()])
