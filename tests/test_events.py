"""The events stream: what each socket did, for embedders (callback) and operators (--events)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import wassh
from guestserver import guest_server
from relayhelpers import RelayProcess, relay_config, run_guest_async
from suitekit import EchoServer, run_guest
from test_listen import echo_client
from wassh.events import Closed, Connected, Event, PolicyDecision, SocketOpened, TransportChosen

WASSH = Path(sys.executable).parent / "wassh"


def by_socket(events: list[Event]) -> dict[int, list[Event]]:
    out: dict[int, list[Event]] = {}
    for e in events:
        out.setdefault(e.socket, []).append(e)
    return out


def kinds(events: list[Event]) -> list[str]:
    return [e.event for e in events]


def test_a_direct_connection(netclient: Path, echo_server: EchoServer) -> None:
    events: list[Event] = []
    r = run_guest(
        netclient, "echo", "127.0.0.1", str(echo_server.port), "hello", events=events.append
    )
    assert r.code == 0, r
    [stream] = by_socket(events).values()
    assert kinds(stream) == ["opened", "transport", "policy", "connected", "closed"]
    opened, chosen, policy, connected, closed = stream
    assert isinstance(opened, SocketOpened) and opened.kind == "stream"
    assert opened.family in ("inet", "inet6")
    assert isinstance(chosen, TransportChosen)
    assert chosen.transport == "tcp" and chosen.plugin == "tcp"
    assert chosen.reason == "best ranked" and chosen.ranking[0] == "tcp"
    assert isinstance(policy, PolicyDecision) and policy.allowed
    assert (policy.action, policy.destination, policy.port) == (
        "connect",
        "127.0.0.1",
        echo_server.port,
    )
    assert isinstance(connected, Connected)
    assert (connected.host, connected.port) == ("127.0.0.1", echo_server.port)
    assert connected.address == "127.0.0.1" and connected.transport == "tcp"
    assert isinstance(closed, Closed) and closed.reason == "closed"
    assert closed.bytes_sent == 5 and closed.bytes_received == 5  # "hello" echoed
    assert 0 <= closed.duration < 30
    assert all(e.time > 0 for e in stream)


def test_a_denied_connection(netclient: Path, echo_server: EchoServer) -> None:
    events: list[Event] = []
    config = wassh.TransportConfig(connect_deny=[f"127.0.0.1:{echo_server.port}"])
    r = run_guest(
        netclient,
        "echo",
        "127.0.0.1",
        str(echo_server.port),
        "hello",
        config=config,
        events=events.append,
    )
    assert "Permission denied" in r.stdout, r
    [stream] = by_socket(events).values()
    assert kinds(stream) == ["opened", "transport", "policy", "closed"]
    policy = stream[2]
    assert isinstance(policy, PolicyDecision) and not policy.allowed
    assert policy.reason == f"--connect-deny 127.0.0.1:{echo_server.port}"
    closed = stream[-1]
    assert isinstance(closed, Closed) and closed.reason == "closed after EACCES"
    assert (closed.bytes_sent, closed.bytes_received) == (0, 0)
    assert echo_server.records == []


def test_a_name_whose_address_is_denied(netclient: Path, echo_server: EchoServer) -> None:
    """The name passes, the address it resolves to does not: both decisions are reported."""
    events: list[Event] = []
    config = wassh.TransportConfig(hosts={"db.test": ["127.0.0.1"]}, connect_deny=["127.0.0.0/8"])
    r = run_guest(
        netclient, "echo", "db.test", str(echo_server.port), config=config, events=events.append
    )
    assert "Permission denied" in r.stdout, r
    # The guest tries IPv6 first (no address of that family), then IPv4.
    last = list(by_socket(events).values())[-1]
    decisions = [e for e in last if isinstance(e, PolicyDecision)]
    # The name was allowed (its addresses are checked when resolved); the address was not.
    assert [(d.destination, d.address, d.allowed) for d in decisions] == [
        ("db.test", None, True),
        ("db.test", "127.0.0.1", False),
    ]
    assert decisions[-1].reason == "--connect-deny 127.0.0.0/8"
    assert isinstance(last[-1], Closed) and last[-1].reason == "closed after EACCES"


def test_a_refused_connection_reports_its_error(netclient: Path, closed_port: int) -> None:
    events: list[Event] = []
    run_guest(netclient, "echo", "127.0.0.1", str(closed_port), events=events.append)
    closes = [e for e in events if isinstance(e, Closed)]
    assert closes and closes[0].reason == "closed after ECONNREFUSED"
    assert not any(isinstance(e, Connected) for e in events)


async def test_a_relayed_connection(netclient: Path, echo_server: EchoServer) -> None:
    relay = RelayProcess("--allow", f"*:{echo_server.port}", "--add-host", "far.test=127.0.0.1")
    try:
        config = relay_config(f"ws://127.0.0.1:{relay.port}", "corp-relay-v4")
        config.host_dns = False
        events: list[Event] = []
        r = await run_guest_async(
            netclient,
            "echo",
            "far.test",
            str(echo_server.port),
            "relayed",
            config=config,
            events=events.append,
        )
    finally:
        relay.close()
    assert r.code == 0, r
    streams = [s for s in by_socket(events).values() if "connected" in kinds(s)]
    [stream] = streams
    chosen = next(e for e in stream if isinstance(e, TransportChosen))
    assert chosen.transport == "websocket" and chosen.plugin == "websocket"
    assert chosen.reason == "claimed: its rule accepts this"
    assert chosen.ranking[:2] == ("websocket", "tcp")
    policy = next(e for e in stream if isinstance(e, PolicyDecision))
    assert policy.allowed and policy.destination == "far.test"
    connected = next(e for e in stream if isinstance(e, Connected))
    # The relay resolves the name far away: no local address to report.
    assert (connected.host, connected.address, connected.transport) == (
        "far.test",
        None,
        "websocket",
    )
    closed = stream[-1]
    assert isinstance(closed, Closed)
    assert closed.bytes_sent == len("relayed") == closed.bytes_received


async def test_events_of_a_listening_guest(netserver: Path) -> None:
    events: list[Event] = []
    async with guest_server(netserver, "echo", "1", events=events.append) as guest:
        port = await guest.port()
        assert await echo_client(port, b"ping") == b"ping"
        assert await guest.wait() == 0
    streams = by_socket(events)
    listener = next(
        s for s in streams.values() if any(getattr(e, "action", "") == "listen" for e in s)
    )
    assert kinds(listener)[:3] == ["opened", "transport", "policy"]
    chosen, decision = listener[1], listener[2]
    assert isinstance(chosen, TransportChosen) and chosen.transport == "listen"
    assert isinstance(decision, PolicyDecision) and decision.allowed
    assert (decision.destination, decision.port) == ("127.0.0.1", 0)
    accepted = next(s for s in streams.values() if getattr(s[0], "listener", None) is not None)
    opened = accepted[0]
    assert isinstance(opened, SocketOpened) and opened.listener == listener[0].socket
    assert opened.peer is not None and opened.peer.startswith("127.0.0.1:")
    closed = accepted[-1]
    assert isinstance(closed, Closed)
    assert closed.bytes_received == 4 == closed.bytes_sent


def test_cli_writes_json_lines(netclient: Path, echo_server: EchoServer, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    r = subprocess.run(
        [
            str(WASSH),
            "run",
            "--events",
            str(path),
            str(netclient),
            "echo",
            "127.0.0.1",
            str(echo_server.port),
            "hi",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["event"] for line in lines] == [
        "opened",
        "transport",
        "policy",
        "connected",
        "closed",
    ]
    assert lines[0]["socket"] == lines[-1]["socket"]
    assert lines[3]["address"] == "127.0.0.1"
    assert lines[-1]["bytes_sent"] == 2 and lines[-1]["bytes_received"] == 2
    assert lines[1]["ranking"][0] == "tcp"


def test_cli_events_file_that_cannot_be_written(netclient: Path, tmp_path: Path) -> None:
    r = subprocess.run(
        [str(WASSH), "run", "--events", str(tmp_path / "no" / "dir.jsonl"), str(netclient)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert r.stderr.startswith("wassh: cannot write --events") and len(r.stderr.splitlines()) == 1


def test_a_failing_callback_does_not_break_the_guest(
    netclient: Path, echo_server: EchoServer, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: Event) -> None:
        raise RuntimeError("sink is full")

    r = run_guest(netclient, "echo", "127.0.0.1", str(echo_server.port), "ok", events=broken)
    assert r.code == 0 and r.stdout.startswith("ok\n"), r
    failures = [rec for rec in caplog.records if "events callback failed" in rec.getMessage()]
    assert len(failures) == 1
