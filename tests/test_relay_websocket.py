"""Guests reaching servers through WebSocket relays: the real websockify and `wassh relay`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trustme
from guestbuild import build_guest
from relayhelpers import (
    FaultProxy,
    RelayProcess,
    SinkServer,
    WebsockifyProcess,
    free_port,
    relay_config,
    run_guest_async,
)
from suitekit import GUESTS, EchoServer

ECONNREFUSED, ENETUNREACH = 14, 40


@pytest.fixture(scope="session")
def relayclient() -> Path:
    return build_guest(GUESTS / "net" / "relayclient.c", sdk=True)


@pytest.fixture
def relay_for(echo_server: EchoServer) -> Iterator[RelayProcess]:
    """`wassh relay` allowing the echo server's port; `echo.test` resolves on the relay."""
    relay = RelayProcess("--allow", f"*:{echo_server.port}", "--add-host", "echo.test=127.0.0.1")
    yield relay
    relay.close()


def _report(what: str, total: int, seconds: float) -> None:
    rate = total / seconds / 1e6
    print(f"\n{what}: {total >> 20} MiB each way in {seconds:.2f} s = {rate:.1f} MB/s")


# -- websockify ------------------------------------------------------------------------


async def test_64_mib_through_real_websockify(netclient: Path, echo_server: EchoServer) -> None:
    ws = WebsockifyProcess(echo_server.port)
    try:
        total = 64 << 20
        config = relay_config(f"ws://127.0.0.1:{ws.port}", "websockify")
        start = time.monotonic()
        r = await run_guest_async(netclient, "bulk", "ssh.example", "22", str(total), config=config)
        _report("websockify", total, time.monotonic() - start)
    finally:
        ws.close()
    assert r.stdout == f"sent {total} got {total} bad 0\n", r
    assert r.code == 0
    (rec,) = echo_server.records
    assert rec.received == total


async def test_websockify_target_down_is_refused(relayclient: Path, closed_port: int) -> None:
    # websockify answers 101, then closes with 1011 when it cannot reach its target.
    ws = WebsockifyProcess(closed_port)
    try:
        config = relay_config(f"ws://127.0.0.1:{ws.port}", "websockify")
        r = await run_guest_async(relayclient, "ssh.example", "22", config=config)
    finally:
        ws.close()
    lines = r.stdout.splitlines()
    assert lines[0] == "0 peer 100::1 22"  # the fake address the guest dialled
    # The refusal is reported once, to whichever call comes first (here, likely send).
    assert lines[1] in (f"0 send errno {ECONNREFUSED}", f"0 recv errno {ECONNREFUSED}"), r
    assert lines[2:] in ([], ["0 eof after 0"]), r


async def test_relay_unreachable_never_falls_back(
    relayclient: Path, echo_server: EchoServer
) -> None:
    # Nothing listens at the relay: the connect fails with ENETUNREACH, and the second
    # address (IPv4 after IPv6) still goes to the relay, not directly to the server.
    config = relay_config(
        f"ws://127.0.0.1:{free_port()}", "websockify", hosts={"echo.test": "127.0.0.1"}
    )
    r = await run_guest_async(relayclient, "echo.test", str(echo_server.port), config=config)
    assert r.stdout == f"0 connect errno {ENETUNREACH}\n", r
    assert echo_server.records == []


# -- wassh relay, corp-relay-v4 ----------------------------------------------------------


async def test_v4_256_mib_with_the_websocket_cut_ten_times(
    netclient: Path, echo_server: EchoServer, relay_for: RelayProcess
) -> None:
    total = 256 << 20
    proxy = FaultProxy(relay_for.port, every=(2 * total) // 11, cuts=10)
    async with trio.open_nursery() as nursery:
        port = await proxy.start(nursery)
        config = relay_config(
            f"ws://127.0.0.1:{port}/", "corp-relay-v4", relay_reconnect_delay=0.05
        )
        start = time.monotonic()
        r = await run_guest_async(
            netclient, "bulk", "echo.test", str(echo_server.port), str(total), config=config
        )
        _report("corp-relay-v4 with 10 cuts", total, time.monotonic() - start)
        nursery.cancel_scope.cancel()
    assert r.stdout == f"sent {total} got {total} bad 0\n", r
    assert r.code == 0 and r.stderr == ""
    assert len(proxy.cut_at) == 10
    assert proxy.connections == 11
    # The guest's close ends the session cleanly: the relay half-closes the target.
    end = relay_for.wait_event("v4_session_end")
    (rec,) = echo_server.records
    for _ in range(100):
        if rec.saw_eof:
            break
        await trio.sleep(0.02)
    assert rec.received == total and rec.saw_eof
    assert end["reconnects"] == 10
    assert end["to_target"] == total and end["to_client"] == total
    assert len(relay_for.events("v4_reconnect")) == 10


async def test_v4_resume_while_the_relay_still_queues_bytes_for_the_target(
    netclient: Path, echo_server: EchoServer
) -> None:
    # A small replay buffer fills while the WebSocket is down, so the relay stops
    # reading the echo server, which stops reading the relay: on resume the relay
    # holds more client bytes (RECONNECT_SUCCESS) than it has written (its next
    # ACK). That lower ACK is no reverse ack; the client once reset the connection.
    relay = RelayProcess(
        "--allow",
        f"*:{echo_server.port}",
        "--add-host",
        "echo.test=127.0.0.1",
        "--replay-buffer",
        "65536",
    )
    total = 16 << 20
    proxy = FaultProxy(relay.port, every=(2 * total) // 7, cuts=6)
    try:
        async with trio.open_nursery() as nursery:
            port = await proxy.start(nursery)
            config = relay_config(
                f"ws://127.0.0.1:{port}/", "corp-relay-v4", relay_reconnect_delay=0.05
            )
            r = await run_guest_async(
                netclient, "bulk", "echo.test", str(echo_server.port), str(total), config=config
            )
            nursery.cancel_scope.cancel()
        assert r.stdout == f"sent {total} got {total} bad 0\n", r
        assert r.code == 0 and r.stderr == ""
        assert len(proxy.cut_at) == 6
        assert relay.wait_event("v4_session_end")["reconnects"] == 6
    finally:
        relay.close()


async def test_first_connect_goes_to_the_relay_with_the_name(
    relayclient: Path, echo_server: EchoServer, relay_for: RelayProcess
) -> None:
    config = relay_config(f"ws://127.0.0.1:{relay_for.port}", "corp-relay-v4")
    port = str(echo_server.port)
    r = await run_guest_async(relayclient, "echo.test", port, "127.0.0.1", port, config=config)
    assert r.stdout.splitlines() == [
        f"0 peer 100::1 {port}",  # the relay socket: the fake address the guest dialled
        f"1 peer 127.0.0.1 {port}",  # direct
        "0 echo hello-0",
        "1 echo hello-1",
    ], r
    (connect,) = relay_for.events("v4_connect")
    assert connect["host"] == "echo.test"  # the name, resolved by the relay
    assert connect["port"] == echo_server.port
    assert len(echo_server.records) == 2


async def test_half_close_through_wassh_relay(
    netclient: Path, echo_server: EchoServer, relay_for: RelayProcess
) -> None:
    # send, shutdown(SHUT_WR), read to EOF: the relay half-closes the target (wassh
    # extension, negotiated in the handshake), the target's EOF comes back as EOF.
    config = relay_config(f"ws://127.0.0.1:{relay_for.port}", "corp-relay-v4")
    port = str(echo_server.port)
    r = await run_guest_async(netclient, "echo", "echo.test", port, "ping", config=config)
    assert r.stdout.splitlines() == [
        "ping",
        "[eof after 4 bytes]",
        f"peer inet6 100::1 {port}",  # what the guest dialled
        "local inet6 :: 0",  # the local end lives on the relay
    ], r
    (rec,) = echo_server.records
    assert rec.saw_eof and rec.received == 4


async def test_relay_socket_options(
    netclient: Path, echo_server: EchoServer, relay_for: RelayProcess
) -> None:
    # A relay socket has no OS socket: every option reads back what was set, and
    # what Linux refuses on an IPv4 TCP socket is refused alike (the host asks a
    # stand-in OS socket of the same family and type), as for direct TCP.
    config = relay_config(f"ws://127.0.0.1:{relay_for.port}", "corp-relay-v4")
    r = await run_guest_async(netclient, "opts", "127.0.0.1", str(echo_server.port), config=config)
    assert r.stdout.splitlines() == [
        "SO_KEEPALIVE set=0 get=0 value=1",
        "SO_REUSEADDR set=0 get=0 value=1",
        "TCP_NODELAY set=0 get=0 value=1",
        "IP_TOS set=0 get=0 value=16",
        "IP_MTU_DISCOVER set=0 get=0 value=0",
        "IPV6_TCLASS set=50 get=58 value=-1",
        "IPV6_V6ONLY set=50 get=58 value=-1",
        "SO_ERROR set=50 get=0 value=0",
        "UNKNOWN set=50 get=50 value=-1",
        "SO_TYPE 1",
    ], r


async def test_claim_all_sends_every_connect_through_the_relay(
    relayclient: Path, echo_server: EchoServer, relay_for: RelayProcess
) -> None:
    config = relay_config(f"ws://127.0.0.1:{relay_for.port}", "corp-relay-v4", claim="all")
    port = str(echo_server.port)
    r = await run_guest_async(relayclient, "echo.test", port, "127.0.0.1", port, config=config)
    assert "0 echo hello-0" in r.stdout and "1 echo hello-1" in r.stdout, r
    hosts = sorted(e["host"] for e in relay_for.events("v4_connect"))
    assert hosts == ["127.0.0.1", "echo.test"]


async def test_v4_destination_not_allowed_is_refused(
    relayclient: Path, echo_server: EchoServer, closed_port: int, relay_for: RelayProcess
) -> None:
    config = relay_config(f"ws://127.0.0.1:{relay_for.port}", "corp-relay-v4")
    r = await run_guest_async(relayclient, "other.test", str(closed_port), config=config)
    assert r.stdout == f"0 connect errno {ECONNREFUSED}\n", r
    refused = relay_for.wait_event("refused")
    assert refused["host"] == "other.test" and refused["reason"] == "destination not allowed"
    assert echo_server.records == []


async def test_bearer_token(relayclient: Path, echo_server: EchoServer) -> None:
    relay = RelayProcess("--allow", f"127.0.0.1:{echo_server.port}", "--token", "s3cret")
    try:
        url = f"ws://127.0.0.1:{relay.port}"
        port = str(echo_server.port)
        good = relay_config(url, "corp-relay-v4", headers={"Authorization": "Bearer s3cret"})
        bad = relay_config(url, "corp-relay-v4", headers={"Authorization": "Bearer nope"})
        r_bad = await run_guest_async(relayclient, "127.0.0.1", port, config=bad)
        r_good = await run_guest_async(relayclient, "127.0.0.1", port, config=good)
    finally:
        relay.close()
    assert r_bad.stdout == f"0 connect errno {ENETUNREACH}\n"
    assert r_good.stdout.splitlines()[-1] == "0 echo hello-0"
    relay.wait_event("auth_failed")  # its reader thread may still be taking the log in


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    d = tmp_path_factory.mktemp("tls")
    files = {"ca": str(d / "ca.pem"), "cert": str(d / "cert.pem"), "key": str(d / "key.pem")}
    ca.cert_pem.write_to_path(files["ca"])
    cert.private_key_pem.write_to_path(files["key"])
    with open(files["cert"], "wb") as f:
        for pem in cert.cert_chain_pems:
            f.write(pem.bytes())
    return files


@pytest.mark.parametrize("protocol", ["corp-relay-v4", "websockify"])
async def test_wss_with_the_test_ca(
    relayclient: Path, echo_server: EchoServer, tls_files: dict[str, str], protocol: str
) -> None:
    relay = RelayProcess(
        "--allow",
        f"127.0.0.1:{echo_server.port}",
        "--tls-cert",
        tls_files["cert"],
        "--tls-key",
        tls_files["key"],
        "--target",
        f"127.0.0.1:{echo_server.port}",
    )
    try:
        url = f"wss://localhost:{relay.port}/"
        port = str(echo_server.port)
        trusted = relay_config(url, protocol, ca=tls_files["ca"])
        untrusted = relay_config(url, protocol)  # system CAs: the test CA is unknown
        r_ok = await run_guest_async(relayclient, "127.0.0.1", port, config=trusted)
        r_bad = await run_guest_async(relayclient, "127.0.0.1", port, config=untrusted)
    finally:
        relay.close()
    assert r_ok.stdout.splitlines()[-1] == "0 echo hello-0", r_ok
    assert r_bad.stdout == f"0 connect errno {ENETUNREACH}\n", r_bad
    assert len(echo_server.records) == 1


# -- closing, and the command line -------------------------------------------------------


@pytest.mark.parametrize("protocol", ["corp-relay-v4", "websockify"])
async def test_bytes_queued_at_exit_are_delivered(relayclient: Path, protocol: str) -> None:
    # The guest writes 3 MiB and exits at once: the close flushes what is queued.
    total = 3 << 20
    sink = SinkServer()
    relay = RelayProcess("--allow", f"127.0.0.1:{sink.port}")
    try:
        query = f"?host=127.0.0.1&port={sink.port}" if protocol == "websockify" else ""
        config = relay_config(f"ws://127.0.0.1:{relay.port}/{query}", protocol)
        r = await run_guest_async(
            relayclient, "-send", str(total), "127.0.0.1", str(sink.port), config=config
        )
        assert r.code == 0, r
        assert sink.wait_total(total) == [total]
    finally:
        relay.close()
        sink.close()


def test_wassh_run_through_wassh_relay(relayclient: Path, netclient: Path) -> None:
    """The command line: `wassh relay` serving, `wassh run --relay` (background trio loop)."""
    import subprocess

    from relayhelpers import BIN

    echo, sink = EchoServer(), SinkServer()
    relay = RelayProcess(
        *("--allow", f"echo.test:{echo.port}", "--allow", f"sink.test:{sink.port}"),
        *("--add-host", "echo.test=127.0.0.1", "--add-host", "sink.test=127.0.0.1"),
    )
    try:
        base = [str(BIN / "wassh"), "run", "--relay", f"ws://127.0.0.1:{relay.port}/"]
        base += ["--relay-protocol", "corp-relay-v4"]
        total = 8 << 20
        out = subprocess.run(
            [*base, str(netclient), "bulk", "echo.test", str(echo.port), str(total)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.stdout == f"sent {total} got {total} bad 0\n", out
        assert [r.received for r in echo.records] == [total]
        # exit right after writing: the bytes still arrive (flushed before the CLI exits)
        sent = subprocess.run(
            [*base, str(relayclient), "-send", str(1 << 20), "sink.test", str(sink.port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert sent.returncode == 0, sent
        assert sink.wait_total(1 << 20) == [1 << 20]
        assert [e["host"] for e in relay.events("v4_connect")] == ["echo.test", "sink.test"]
    finally:
        relay.close()
        echo.close()
        sink.close()
