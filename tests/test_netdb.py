"""netdb as glibc answers it: services, protocols, getnameinfo's flags and the
reverse lookups of the host's own names (no DNS is ever asked)."""

from __future__ import annotations

from pathlib import Path

import pytest
from guestbuild import build_guest
from nativebuild import build_native, run_native
from suitekit import GUESTS, run_guest

SRC = GUESTS / "posix" / "netdb.c"


@pytest.fixture(scope="module")
def netdb_wasm() -> Path:
    return build_guest(SRC, sdk=True)


def test_services_protocols_and_loopback_names_match_glibc(netdb_wasm: Path) -> None:
    expected = run_native(build_native(SRC))
    lines = expected.splitlines()
    assert "getservbyname nicname/tcp: whois 43/tcp nicname" in lines
    assert "getnameinfo name 127.0.0.1 443: localhost https" in lines
    r = run_guest(netdb_wasm)
    assert r.code == 0, r.stderr
    assert r.stdout.splitlines() == lines


def test_reverse_lookups_know_add_host_names_and_resolved_names(netdb_wasm: Path) -> None:
    hosts = {"db.test": ["192.0.2.7"], "six.test": ["::1"]}
    r = run_guest(
        netdb_wasm,
        *("rev", "192.0.2.7", "rev", "::1", "rev", "192.0.2.8", "rev", "127.0.0.1"),
        *("rev", "::ffff:192.0.2.7"),
        *("fwd", "db.test", "fwd", "elsewhere.test"),
        hosts=hosts,
    )
    assert r.code == 0, r.stderr
    assert r.stdout.splitlines() == [
        "gethostbyaddr 192.0.2.7: db.test type 4 len 4 addr 192.0.2.7",
        "getnameinfo name 192.0.2.7 22: db.test ssh",
        "getnameinfo namereqd 192.0.2.7 22: db.test ssh",
        # An --add-host name comes before localhost, as the first /etc/hosts line would.
        "gethostbyaddr ::1: six.test type 6 len 16 addr ::1",
        "getnameinfo name ::1 22: six.test ssh",
        "getnameinfo namereqd ::1 22: six.test ssh",
        # No name: no DNS is asked, so the address stays numeric.
        "gethostbyaddr 192.0.2.8: h_errno 1 (Unknown host)",
        "getnameinfo name 192.0.2.8 22: 192.0.2.8 ssh",
        "getnameinfo namereqd 192.0.2.8 22: Name or service not known",
        "gethostbyaddr 127.0.0.1: localhost type 4 len 4 addr 127.0.0.1",
        "getnameinfo name 127.0.0.1 22: localhost ssh",
        "getnameinfo namereqd 127.0.0.1 22: localhost ssh",
        # An IPv4-mapped address is looked up as the IPv4 one.
        "gethostbyaddr ::ffff:192.0.2.7: db.test type 6 len 16 addr ::ffff:192.0.2.7",
        "getnameinfo name ::ffff:192.0.2.7 22: db.test ssh",
        "getnameinfo namereqd ::ffff:192.0.2.7 22: db.test ssh",
        # Names resolve at connect time: the guest holds reserved addresses (the
        # first names get 0.0.0.1, 0.0.0.2), whose names come back from them.
        "gethostbyname db.test: 0.0.0.1 len 4",
        "gethostbyaddr of it: db.test",
        "gethostbyname elsewhere.test: 0.0.0.2 len 4",
        "gethostbyaddr of it: elsewhere.test",
    ]


def test_classful_address_helpers_match_glibc() -> None:
    src = GUESTS / "posix" / "inetnet.c"
    expected = run_native(build_native(src))
    assert 'inet_network("10.1") = 0xa01' in expected.splitlines()
    r = run_guest(build_guest(src, sdk=True))
    assert r.code == 0, r.stderr
    assert r.stdout == expected


def test_the_guest_sees_the_loopback_interface_as_linux_shows_it() -> None:
    """getifaddrs and the if_* calls: the loopback interface only (the guest has
    no other), each line as this machine's own program prints it for lo."""
    src = GUESTS / "posix" / "ifaces.c"
    native = run_native(build_native(src)).splitlines()
    loopback = [
        line
        for line in native
        if line.startswith(("lo ", "if_nametoindex", "if_indextoname", "if_nameindex 1 "))
    ]
    assert "lo inet 127.0.0.1/255.0.0.0 flags 0x10049" in loopback
    r = run_guest(build_guest(src, sdk=True))
    assert r.code == 0, r.stderr
    assert r.stdout.splitlines() == loopback
