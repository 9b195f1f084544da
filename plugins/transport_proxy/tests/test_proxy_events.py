"""The events stream of a proxied connection: which transport, why, and what it moved."""

from __future__ import annotations

from pathlib import Path

from proxykit import Danted, EchoServer, proxied, run_guest
from wassh.events import Closed, Connected, Event, PolicyDecision, TransportChosen


def test_a_proxied_connection_reports_the_proxy(netclient: Path, danted: Danted) -> None:
    server = EchoServer()
    events: list[Event] = []
    try:
        r = run_guest(
            netclient,
            "echo",
            "127.0.0.1",
            str(server.port),
            "proxied",
            stdin=b"",
            events=events.append,
            **proxied(danted.url("socks5h")),
        )
    finally:
        server.close()
    assert r.code == 0 and r.stdout.startswith("proxied\n"), r
    chosen = [e for e in events if isinstance(e, TransportChosen)]
    assert [(c.transport, c.plugin) for c in chosen] == [("proxy", "proxy")]
    assert chosen[0].reason == "claimed: its rule accepts this"
    assert chosen[0].ranking[:2] == ("proxy", "tcp")
    [policy] = [e for e in events if isinstance(e, PolicyDecision)]
    assert policy.allowed and (policy.destination, policy.port) == ("127.0.0.1", server.port)
    [connected] = [e for e in events if isinstance(e, Connected)]
    assert (connected.host, connected.port, connected.transport) == (
        "127.0.0.1",
        server.port,
        "proxy",
    )
    # The peer the proxy reports for a literal destination is that destination.
    assert connected.address == "127.0.0.1"
    [closed] = [e for e in events if isinstance(e, Closed)]
    assert (closed.reason, closed.bytes_sent, closed.bytes_received) == ("closed", 7, 7)


def test_a_denied_destination_never_reaches_the_proxy(netclient: Path, danted: Danted) -> None:
    events: list[Event] = []
    r = run_guest(
        netclient,
        "echo",
        "db.example",
        "5432",
        stdin=b"",
        events=events.append,
        **proxied(danted.url("socks5h"), connect_deny=["*.example"]),
    )
    assert "Permission denied" in r.stdout, r
    decisions = [e for e in events if isinstance(e, PolicyDecision)]
    assert decisions and all(not d.allowed for d in decisions)
    assert decisions[0].reason == "--connect-deny *.example"
    assert not any(isinstance(e, Connected) for e in events)
    assert "db.example" not in danted.log()
