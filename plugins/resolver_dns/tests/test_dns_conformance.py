"""wassh.testing's resolver conformance suite against the dns plugin and real servers.

Debian's dnsmasq serves the declared names from a hosts file (and a CNAME),
over UDP, over TCP behind a front that truncates every UDP answer, and behind
dnsdist as DNS-over-HTTPS with a certificate of the test CA. The name that is
never answered is forwarded by dnsmasq to a server that reads queries and
never replies.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from dnskit import MANY_ADDRESSES, MANY_NAME, Dnsmasq, DohServer, TruncatingDnsServer
from wassh.testing import ResolverConformance, ResolverUnderTest

pytest_plugins = ["wassh.testing"]

ANSWERS: Mapping[str, list[str]] = {
    "v4.conform.test": ["127.0.0.1"],
    "both.conform.test": ["::1", "127.0.0.1"],
    "v6.conform.test": ["::1"],
    "real.conform.test": ["127.0.0.3"],
    "alias.conform.test": ["127.0.0.3"],
    MANY_NAME: list(MANY_ADDRESSES),  # a truncated UDP answer: asked again over TCP
}
CNAMES = {"alias.conform.test": "real.conform.test"}
MISSING = "nowhere.conform.test"
SLOW = "slow.conform.test"


@dataclass(frozen=True)
class Servers:
    dnsmasq: Dnsmasq
    tcp_only: TruncatingDnsServer
    doh: DohServer
    ca_file: Path


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, ca: trustme.CA) -> Iterator[Servers]:
    tmp = tmp_path_factory.mktemp("dns-conformance")
    ca_file = tmp / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    hosts = {name: texts for name, texts in ANSWERS.items() if name not in CNAMES}
    with ExitStack() as stack:
        dnsmasq = stack.enter_context(
            Dnsmasq(tmp / "dnsmasq", hosts, silent_names=[SLOW], cnames=CNAMES)
        )
        tcp_only = stack.enter_context(TruncatingDnsServer(dnsmasq.address))
        doh = stack.enter_context(DohServer(tmp / "dnsdist", dnsmasq.address, ca))
        yield Servers(dnsmasq, tcp_only, doh, ca_file)


class TestDnsResolver(ResolverConformance):
    @pytest.fixture(params=["udp", "tcp", "doh"])
    def wassh_resolver(self, request: pytest.FixtureRequest, servers: Servers) -> ResolverUnderTest:
        settings: Mapping[str, object] = {
            "udp": {"resolver": servers.dnsmasq.url},
            "tcp": {"resolver": servers.tcp_only.url},
            "doh": {"resolver": servers.doh.url, "ca": str(servers.ca_file)},
        }[request.param]
        return ResolverUnderTest(
            "dns",
            settings=settings,
            answers=ANSWERS,
            missing=MISSING,
            unanswered=SLOW,
            canonical=CNAMES,
        )
