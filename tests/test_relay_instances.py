"""Several `wassh relay`s behind a load balancer: a reconnect reaches the relay holding its session.

Two relays (``--instance-id a`` and ``b``) run behind a real HAProxy on the
configuration documented in docs/relay-load-balancing.md, with a proxy in front
that cuts the WebSocket every few MiB. Guests move data through corp-relay-v4
and check every byte; each relay's log shows that every reconnect it took was
for a session it opened, and that none was refused. A relay killed mid-transfer
ends its own sessions with an error in seconds; the other relay's carry on.
Every destination is on loopback (``sN.test`` resolve to 127.0.0.1 on the relays).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from relayhelpers import (
    BIN,
    BalancerProcess,
    FaultProxy,
    GuestRun,
    RelayProcess,
    relay_config,
    run_guest_async,
)
from suitekit import EchoServer
from wassh_transport_websocket import v4
from wassh_transport_websocket.settings import RelaySettings
from wassh_transport_websocket.wsconn import HandshakeError
from wassh_transport_websocket.wsconn import connect as ws_connect

MIB = 1 << 20
HOSTS = 8  # sN.test: names every relay resolves to 127.0.0.1
# What the bulk guest prints when its relay socket fails (ECONNRESET or ETIMEDOUT).
LOST = re.compile(r"(recv|send): (Connection reset by peer|Connection timed out)\n")
LOST_WITHIN = 15.0  # seconds from a relay's death to its guests' errors


def start_relay(instance: str | None, echo: EchoServer, *extra: str) -> RelayProcess:
    names = [arg for i in range(HOSTS) for arg in ("--add-host", f"s{i}.test=127.0.0.1")]
    ids = ["--instance-id", instance] if instance is not None else []
    return RelayProcess(*ids, "--allow", f"*:{echo.port}", *names, *extra)


@contextmanager
def relays_behind(
    balancer: str, tmp_path: Path, echo: EchoServer, routing: str = "rules"
) -> Iterator[tuple[dict[str, RelayProcess], BalancerProcess]]:
    """Relays a and b behind ``balancer`` ("haproxy", or the path of an nginx binary)."""
    relays: dict[str, RelayProcess] = {}
    lb: BalancerProcess | None = None
    try:
        for name in ("a", "b"):
            relays[name] = start_relay(name, echo)
        ports = {name: relay.port for name, relay in relays.items()}
        if balancer == "haproxy":
            lb = BalancerProcess.haproxy(tmp_path, ports, routing)
        else:
            lb = BalancerProcess.nginx(balancer, tmp_path, ports)
        yield relays, lb
    finally:
        if lb is not None:
            lb.close()
        for relay in relays.values():
            relay.close()


def placement(relays: dict[str, RelayProcess]) -> dict[str, str]:
    """Which relay opened the session of each destination name."""
    return {e["host"]: name for name, r in relays.items() for e in r.events("v4_connect")}


def reconnects_stayed_home(relays: dict[str, RelayProcess]) -> dict[str, int]:
    """Asserts every reconnect a relay took was for a session it opened; counts per relay."""
    counts = {}
    for name, relay in relays.items():
        opened = {e["session"] for e in relay.events("v4_connect")}
        taken = relay.events("v4_reconnect")
        strays = [e for e in taken if e["session"] not in opened]
        assert strays == [], (name, strays)
        counts[name] = len(taken)
    return counts


async def bulk(
    netclient: Path, relay_port: int, host: str, echo: EchoServer, total: int, timeout: float
) -> tuple[GuestRun, float]:
    """A bulk guest to ``host`` through the relay at ``relay_port``: its result, when it ended."""
    config = relay_config(
        f"ws://127.0.0.1:{relay_port}/", "corp-relay-v4", relay_reconnect_delay=0.05
    )
    r = await run_guest_async(
        netclient, "bulk", host, str(echo.port), str(total), config=config, timeout=timeout
    )
    return r, trio.current_time()


async def run_all(
    netclient: Path, relay_port: int, echo: EchoServer, sizes: list[int], timeout: float
) -> dict[str, tuple[GuestRun, float]]:
    """Bulk guests at once, to s0.test, s1.test, ...: results by name."""
    results: dict[str, tuple[GuestRun, float]] = {}

    async def one(host: str, total: int) -> None:
        results[host] = await bulk(netclient, relay_port, host, echo, total, timeout)

    async with trio.open_nursery() as nursery:
        for i, total in enumerate(sizes):
            nursery.start_soon(one, f"s{i}.test", total)
    return results


async def logged(relay: RelayProcess, event: str, count: int) -> list[dict[str, Any]]:
    """The relay's ``event`` records, once ``count`` are in (the test's deadline bounds this)."""
    while len(relay.events(event)) < count:
        await trio.sleep(0.02)
    return relay.events(event)


# -- through HAProxy -------------------------------------------------------------------------


async def test_every_reconnect_reaches_the_relay_holding_the_session(
    netclient: Path, echo_server: EchoServer, tmp_path: Path
) -> None:
    sessions, total = 6, 48 * MIB
    with trio.fail_after(50), relays_behind("haproxy", tmp_path, echo_server) as (relays, lb):
        proxy = FaultProxy(lb.port, every=4 * MIB, cuts=10_000)
        async with trio.open_nursery() as nursery:
            port = await proxy.start(nursery)
            results = await run_all(netclient, port, echo_server, [total] * sessions, 40)
            nursery.cancel_scope.cancel()
        for host, (r, _) in results.items():
            assert r.stdout == f"sent {total} got {total} bad 0\n" and r.code == 0, (host, r)
        where = placement(relays)
        assert sorted(where) == [f"s{i}.test" for i in range(sessions)]
        assert set(where.values()) == {"a", "b"}  # round robin: both relays hold sessions
        counts = reconnects_stayed_home(relays)
        for relay in relays.values():
            assert relay.events("v4_reconnect_refused") == []
            assert relay.events("v4_bad_reconnect") == []
        assert counts["a"] > 0 and counts["b"] > 0, counts
        cuts = len(proxy.cut_at)
        # Each cut costs the session it hit one reconnect; a cut during a reconnect's
        # handshake or the final close costs none.
        assert cuts >= 40 and cuts - 2 * sessions <= sum(counts.values()) <= cuts, (cuts, counts)
        for name, relay in relays.items():
            held = sum(1 for owner in where.values() if owner == name)
            ends = await logged(relay, "v4_session_end", held)
            assert len(ends) == held
            for end in ends:
                assert end["to_target"] == total and end["to_client"] == total, end
            assert sum(e["reconnects"] for e in ends) == counts[name]
    print(f"\n{sessions} x {total >> 20} MiB, {cuts} cuts, reconnects per relay {counts}")


async def test_losing_a_relay_ends_only_its_sessions(
    netclient: Path, echo_server: EchoServer, tmp_path: Path
) -> None:
    sessions, total = 4, 64 * MIB
    with trio.fail_after(50), relays_behind("haproxy", tmp_path, echo_server) as (relays, lb):
        proxy = FaultProxy(lb.port, every=6 * MIB, cuts=10_000)
        killed_at: list[float] = []

        async def kill_b_mid_transfer() -> None:
            # once every session is open and has moved a few MiB both ways
            while (
                len(echo_server.records) < sessions
                or min(rec.received for rec in echo_server.records) < 3 * MIB
            ):
                await trio.sleep(0.02)
            relays["b"].proc.kill()
            killed_at.append(trio.current_time())

        async with trio.open_nursery() as nursery:
            port = await proxy.start(nursery)
            nursery.start_soon(kill_b_mid_transfer)
            results = await run_all(netclient, port, echo_server, [total] * sessions, 40)
            nursery.cancel_scope.cancel()
        assert killed_at, "relay b was never killed"
        where = placement(relays)
        assert sorted(where) == [f"s{i}.test" for i in range(sessions)]
        on_b = [host for host, name in where.items() if name == "b"]
        assert on_b and len(on_b) < sessions, where
        for host, (r, ended) in results.items():
            if host in on_b:
                assert r.code == 1 and LOST.fullmatch(r.stdout), (host, r)
                assert ended - killed_at[0] <= LOST_WITHIN, (host, ended - killed_at[0])
            else:
                assert r.stdout == f"sent {total} got {total} bad 0\n" and r.code == 0, (host, r)
        a = relays["a"]
        reconnects_stayed_home(relays)
        assert relays["b"].events("v4_reconnect_refused") == []  # while it lived
        # b's clients may have been sent to a once b was gone: a refused them, by instance
        for refusal in a.events("v4_reconnect_refused"):
            assert refusal["instance"] == "b", refusal
            assert refusal["reason"] == "the session belongs to another instance", refusal
        ends = await logged(a, "v4_session_end", sessions - len(on_b))
        assert [e["to_target"] for e in ends] == [total] * (sessions - len(on_b)), ends
    lost = max(results[host][1] for host in on_b) - killed_at[0]
    print(f"\nkilled b holding {len(on_b)} sessions: all ended {lost:.1f} s later; a's done")


@pytest.mark.parametrize("routing", ["one-rule", "none"])
async def test_routing_rules_are_what_sends_reconnects_home(
    netclient: Path, echo_server: EchoServer, tmp_path: Path, routing: str
) -> None:
    # The documented single rule for every relay keeps reconnects home; with no rule
    # at all (a control) they go round the relays, the wrong one refuses them, and
    # only the client's next try, on the right relay, resumes.
    sessions = 2 if routing == "one-rule" else 1
    total = 12 * MIB
    with (
        trio.fail_after(40),
        relays_behind("haproxy", tmp_path, echo_server, routing) as (
            relays,
            lb,
        ),
    ):
        proxy = FaultProxy(lb.port, every=2 * MIB, cuts=10_000)
        async with trio.open_nursery() as nursery:
            port = await proxy.start(nursery)
            results = await run_all(netclient, port, echo_server, [total] * sessions, 30)
            nursery.cancel_scope.cancel()
        for host, (r, _) in results.items():
            assert r.stdout == f"sent {total} got {total} bad 0\n", (host, r)
        where = placement(relays)
        counts = reconnects_stayed_home(relays)
        refused = {name: r.events("v4_reconnect_refused") for name, r in relays.items()}
        if routing == "one-rule":
            assert set(where.values()) == {"a", "b"}
            assert counts["a"] > 0 and counts["b"] > 0, counts
            assert refused == {"a": [], "b": []}
        else:
            (home,) = where.values()
            other = "b" if home == "a" else "a"
            assert counts[home] > 0 and refused[home] == []
            assert len(refused[other]) >= counts[home] // 2, (counts, refused)
            for refusal in refused[other]:
                assert refusal["instance"] == home, refusal
                assert refusal["reason"] == "the session belongs to another instance"


def _nginx() -> str | None:
    return os.environ.get("WASSH_TEST_NGINX") or shutil.which("nginx")


@pytest.mark.skipif(_nginx() is None, reason="nginx is not installed")
async def test_the_documented_nginx_config_sends_reconnects_home(
    netclient: Path, echo_server: EchoServer, tmp_path: Path
) -> None:
    nginx = _nginx()
    assert nginx is not None
    sessions, total = 2, 16 * MIB
    with trio.fail_after(40), relays_behind(nginx, tmp_path, echo_server) as (relays, lb):
        proxy = FaultProxy(lb.port, every=2 * MIB, cuts=10_000)
        async with trio.open_nursery() as nursery:
            port = await proxy.start(nursery)
            results = await run_all(netclient, port, echo_server, [total] * sessions, 30)
            nursery.cancel_scope.cancel()
        for host, (r, _) in results.items():
            assert r.stdout == f"sent {total} got {total} bad 0\n", (host, r)
        assert set(placement(relays).values()) == {"a", "b"}
        counts = reconnects_stayed_home(relays)
        assert counts["a"] > 0 and counts["b"] > 0, counts
        assert [r.events("v4_reconnect_refused") for r in relays.values()] == [[], []]


# -- one relay: the session id and what the relay does with it ------------------------------


async def _v4_open(port: int, echo: EchoServer) -> str:
    ws = await ws_connect(
        f"ws://127.0.0.1:{port}/v4/connect?host=127.0.0.1&port={echo.port}", subprotocols=["ssh"]
    )
    msg = await ws.recv_message()
    assert msg is not None
    tag, sid = v4.parse(msg[1])
    assert tag == v4.CONNECT_SUCCESS and isinstance(sid, str)
    await trio.aclose_forcefully(ws.stream)  # an unclean drop: the session waits
    return sid


async def _v4_resume(port: int, sid: str) -> int | None:
    """RECONNECT_SUCCESS's value, or None when the relay refused (the HTTP status is 410)."""
    try:
        ws = await ws_connect(
            f"ws://127.0.0.1:{port}/v4/reconnect?sid={sid}&ack=0", subprotocols=["ssh"]
        )
    except HandshakeError as exc:
        assert exc.status == 410, exc
        return None
    msg = await ws.recv_message()
    assert msg is not None
    await trio.aclose_forcefully(ws.stream)
    tag, value = v4.parse(msg[1])
    assert tag == v4.RECONNECT_SUCCESS and isinstance(value, int)
    return value


async def test_a_session_id_is_the_instance_and_a_192_bit_secret(echo_server: EchoServer) -> None:
    relay = start_relay("relay-7", echo_server)
    try:
        with trio.fail_after(20):
            assert relay.logs[0]["instance"] == "relay-7"
            sid = await _v4_open(relay.port, echo_server)
            instance, dot, secret = sid.partition(".")
            assert (instance, dot) == ("relay-7", ".")
            assert re.fullmatch(r"[A-Za-z0-9_-]{32}", secret), sid
            assert len(base64.urlsafe_b64decode(secret)) == 24  # 192 bits, all random
            # The secret under another relay's name, or under none, resumes nothing here.
            assert await _v4_resume(relay.port, f"relay-8.{secret}") is None
            assert await _v4_resume(relay.port, secret) is None
            wrong = secret[:-1] + ("y" if secret.endswith("x") else "x")  # one character off
            assert await _v4_resume(relay.port, f"relay-7.{wrong}") is None
            assert await _v4_resume(relay.port, sid) == 0
            refusals = await logged(relay, "v4_reconnect_refused", 3)
            assert [(e["instance"], e["reason"]) for e in refusals] == [
                ("relay-8", "the session belongs to another instance"),
                ("", "the session belongs to another instance"),
                ("relay-7", "unknown session"),
            ]
            assert len(await logged(relay, "v4_reconnect", 1)) == 1
        relay.close()
        with relay._lock:
            text = repr(relay.logs)
        assert secret not in text and secret[:16] not in text  # fingerprints only
    finally:
        relay.close()


async def test_without_an_instance_id_a_relay_makes_one_up(echo_server: EchoServer) -> None:
    first, second = start_relay(None, echo_server), start_relay(None, echo_server)
    try:
        with trio.fail_after(20):
            ids = [r.logs[0]["instance"] for r in (first, second)]
            assert all(re.fullmatch(r"[0-9a-f]{8}", i) for i in ids) and ids[0] != ids[1], ids
            sid = await _v4_open(first.port, echo_server)
            assert sid.startswith(ids[0] + ".")
            assert await _v4_resume(second.port, sid) is None  # another relay's session
            assert await _v4_resume(first.port, sid) == 0
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize("bad", ["a.b", "", "x" * 33, "a_b", "ä", "a b"])
def test_a_bad_instance_id_is_one_line_and_exit_2(bad: str) -> None:
    r = subprocess.run(
        [str(BIN / "wassh"), "relay", "--instance-id", bad, "--listen", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "--instance-id" in r.stderr, r.stderr


def test_healthz_answers_without_a_token_and_logs_nothing(echo_server: EchoServer) -> None:
    relay = start_relay("a", echo_server, "--token", "s3cret-token")
    try:
        for _ in range(3):
            with urllib.request.urlopen(f"http://127.0.0.1:{relay.port}/healthz", timeout=10) as r:
                assert r.status == 200 and r.read() == b"ok\n"
        # anything else still needs the token
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{relay.port}/other", timeout=10)
        assert refused.value.code == 401
        relay.wait_event("auth_failed")
        events = {e["event"] for e in relay.logs}
        assert events == {"listening", "config_warning", "auth_failed"}, relay.logs
    finally:
        relay.close()


def test_the_client_sends_the_session_id_as_it_came() -> None:
    # The client treats the sid as opaque: the dot is unreserved, never percent-encoded,
    # so a balancer matching the raw query sees the instance prefix.
    sid = "relay-1.bd3BFp5T6rnkbX8qc0GXDwQf4QU_8R-q"
    assert v4.parse(v4.connect_success(sid)) == (v4.CONNECT_SUCCESS, sid)
    settings = RelaySettings(url="wss://relay.example/", params={"token": "t"})
    url = settings.v4_reconnect_url(sid, 7)
    assert url == f"wss://relay.example/v4/reconnect?sid={sid}&ack=7&token=t"
