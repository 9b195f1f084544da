"""Names and addresses through a relay, as the guest expects them.

Every test runs with host DNS off (``host_dns=False``): a name the tests do not
map is unresolvable here by construction, and no lookup leaves the machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from guestbuild import build_guest
from relayhelpers import RelayProcess, relay_config, run_guest_async
from suitekit import GUESTS, EchoServer

EHOSTUNREACH = 23
EACCES = 2


@pytest.fixture(scope="session")
def relayclient() -> Path:
    return build_guest(GUESTS / "net" / "relayclient.c", sdk=True)


@pytest.fixture
def relay(echo_server: EchoServer) -> Iterator[RelayProcess]:
    """`wassh relay` that alone knows `only.relay` (and `also.relay`)."""
    relay = RelayProcess(
        "--allow",
        f"*:{echo_server.port}",
        "--add-host",
        "only.relay=127.0.0.1",
        "--add-host",
        "also.relay=127.0.0.1",
    )
    yield relay
    relay.close()


def config_for(relay: RelayProcess, **settings: object) -> object:
    config = relay_config(f"ws://127.0.0.1:{relay.port}", "corp-relay-v4")
    config.host_dns = False
    for key, value in settings.items():
        setattr(config, key, value)
    return config


async def test_a_name_only_the_relay_knows_works_on_every_connect(
    relayclient: Path, echo_server: EchoServer, relay: RelayProcess
) -> None:
    port = str(echo_server.port)
    config = config_for(relay)  # first-connect: the relay claims only the first
    r = await run_guest_async(
        relayclient, "only.relay", port, "also.relay", port, "only.relay", port, config=config
    )
    assert r.stdout.splitlines() == [
        f"0 peer 100::1 {port}",
        f"1 peer 100::2 {port}",
        f"2 peer 100::1 {port}",
        "0 echo hello-0",
        "1 echo hello-1",
        "2 echo hello-2",
    ], r
    assert [e["host"] for e in relay.events("v4_connect")] == [
        "only.relay",
        "also.relay",
        "only.relay",
    ]
    assert echo_server.wait_connections(3) == 3


async def test_names_the_host_knows_still_go_direct(
    relayclient: Path, echo_server: EchoServer, relay: RelayProcess
) -> None:
    port = str(echo_server.port)
    config = config_for(relay, hosts={"direct.test": ["127.0.0.1"]})
    r = await run_guest_async(relayclient, "only.relay", port, "direct.test", port, config=config)
    assert r.stdout.splitlines() == [
        f"0 peer 100::1 {port}",
        f"1 peer 0.0.0.2 {port}",  # no IPv6 address here: the IPv4 fake one connected
        "0 echo hello-0",
        "1 echo hello-1",
    ], r
    assert [e["host"] for e in relay.events("v4_connect")] == ["only.relay"]


async def test_the_policy_applies_to_names_handed_to_the_relay(
    relayclient: Path, echo_server: EchoServer, relay: RelayProcess
) -> None:
    port = str(echo_server.port)
    config = config_for(relay, connect_deny=["also.relay"])
    r = await run_guest_async(relayclient, "only.relay", port, "also.relay", port, config=config)
    lines = r.stdout.splitlines()
    assert lines[1] == f"1 connect errno {EACCES}", r
    assert [e["host"] for e in relay.events("v4_connect")] == ["only.relay"]


async def test_without_a_relay_an_unknown_name_is_unreachable(
    relayclient: Path, echo_server: EchoServer
) -> None:
    import wassh

    config = wassh.TransportConfig(host_dns=False)
    r = await run_guest_async(relayclient, "only.relay", str(echo_server.port), config=config)
    assert r.stdout.splitlines() == [f"0 connect errno {EHOSTUNREACH}"], r
    assert echo_server.wait_connections(1, timeout=0.3) == 0
