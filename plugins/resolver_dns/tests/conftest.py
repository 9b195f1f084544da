"""Fixtures of the DNS resolver's tests: real dnsmasq and dnsdist on loopback, a trustme CA."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
# The project's shared test helpers (guest builds, echo servers), then ours.
for path in (ROOT / "tests", ROOT / "guests", HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from dnskit import Dnsmasq, DohServer, SilentDnsServer  # noqa: E402

# What the test dnsmasq serves: an IPv4-only name, a dual-stack one, an
# IPv6-only one, and names only the search domains complete.
HOSTS = {
    "www.test": ["127.0.0.5"],
    "dual.test": ["127.0.0.6", "::6", "127.0.0.7"],
    "six.test": ["::7"],
    "db.corp.test": ["127.0.0.8"],
    "db.lab.test": ["127.0.0.9"],
    "api.lab.test": ["127.0.0.10"],
    "x.y.test": ["127.0.0.11"],
    "x.y.lab.test": ["127.0.0.12"],
    "x.y.test.lab.test": ["127.0.0.13"],
}
SERVFAIL = ("broken.test",)


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def dnsmasq(tmp_path: Path) -> Iterator[Dnsmasq]:
    with Dnsmasq(tmp_path / "dnsmasq", HOSTS, servfail_names=SERVFAIL) as server:
        yield server


@pytest.fixture
def doh(tmp_path: Path, dnsmasq: Dnsmasq, ca: trustme.CA) -> Iterator[DohServer]:
    with DohServer(tmp_path / "dnsdist", dnsmasq.address, ca, servfail_names=["fails.test"]) as s:
        yield s


@pytest.fixture
def silent() -> Iterator[SilentDnsServer]:
    with SilentDnsServer() as server:
        yield server


@pytest.fixture
def ca_file(tmp_path: Path, ca: trustme.CA) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path
