"""``wassh.testing``: conformance suites for transport and resolver plugins, as a pytest plugin.

Point it at your transport and it runs a real guest (a C program built with
the wassh SDK, shipped here) through it against loopback servers it starts
itself, asserting bytes, errno names and (generous) time bounds: stream
echo, half-close, non-blocking connect and ``SO_ERROR``, refused and
unreachable destinations, socket options, poll readiness, a peer's reset,
cancellation of a blocked guest, and large transfers checked byte for byte.
Nothing is skipped because a transport lacks something: you declare what it
does differently (``Capabilities``) and the case asserts that instead.

Install ``wassh[testing]`` (pytest), load the plugin in ``conftest.py``:

    pytest_plugins = ["wassh.testing"]

(or run ``pytest -p wassh.testing``), and subclass a conformance class in a
test module:

    from wassh.testing import Capabilities, StreamConformance, TransportUnderTest
    from my_transport import MyTransport

    class TestMyTransport(StreamConformance):
        transport = TransportUnderTest(
            name="mine",                   # the plugin's registered name
            plugins=[MyTransport],         # or entry_points=["mine"]
            settings={"server": "..."},    # your plugin's settings, if any
            expects=Capabilities(half_close=False),
        )

Classes: ``StreamConformance`` (outgoing TCP), ``ListenConformance`` (the
guest binds, listens and accepts), ``DatagramConformance`` (UDP, client
and server). A transport that needs servers of its own (a relay, a proxy)
overrides the ``wassh_transport`` fixture instead of setting ``transport``,
and may parametrise it; a transport whose configuration depends on the
destination gives ``config_for`` (see ``TransportUnderTest``).

For example, with a relay server your own (synchronous) fixture starts:

    class TestThroughMyRelay(StreamConformance):
        @pytest.fixture
        def wassh_transport(self, my_relay: MyRelayServer) -> TransportUnderTest:
            settings = {"url": my_relay.url}
            return TransportUnderTest(
                name="myrelay",
                config_for=lambda endpoint: wassh.TransportConfig(
                    settings={"myrelay": settings}
                ),
                expects=Capabilities(local_address=False),
            )

A case that fails for a reason you know (a bug in a server you test
against) is overridden in the subclass and marked, so it fails loudly once
fixed:

        @pytest.mark.xfail(strict=True, reason="the server drops half-closed streams")
        def test_half_close(self, wassh_kit: Kit) -> None:
            super().test_half_close(wassh_kit)

Resolver plugins (an offer of kind ``NAMES`` and an ``async def
wassh_getaddrinfo``) have their own class, ``ResolverConformance``, told which
names the resolver knows:

    from wassh.testing import ResolverConformance, ResolverUnderTest

    class TestMyResolver(ResolverConformance):
        resolver = ResolverUnderTest(
            "mine",                        # the plugin's registered name
            plugins=[MyResolver],          # or entry_points=["mine"]
            settings={"server": "..."},
            answers={                      # names and exactly their addresses
                "v4.test": ["127.0.0.1"],  # required: 127.0.0.1 only
                "both.test": ["::1", "127.0.0.1"],  # required: both families
            },
            missing="nowhere.test",        # a name that does not exist
            unanswered="slow.test",        # a name whose lookup never completes
            canonical={},                  # aliases among the answers: {name: canonical}
        )

Its cases load the plugin as the core does and call its hook on a trio loop
of their own: each name answered with exactly its addresses for AF_UNSPEC,
AF_INET and AF_INET6 (only addresses of the family asked), EAI_NODATA for a
family a name has no address of, EAI_NONAME for the missing name, hostile
host strings ending in ``gaierror``, twenty lookups at once, and a cancelled
lookup of the unanswered name ending promptly with no task left behind.
Then they run a guest (``guests/resolve.c``): its getaddrinfo gets those
answers and EAI_* results, it connects by name to the kit's peer server, its
lookup of the unanswered name ends in EAI_AGAIN at a 1 s connect timeout, and
cancelling it while it waits ends it promptly; no case may make the host
record an unexpected error. The guest connects through the installed ``tcp``
transport (``ResolverUnderTest(transports=...)`` names others). A resolver
that needs servers of its own overrides the ``wassh_resolver`` fixture.

Fixtures (session-scoped unless said): ``wassh_transport`` (per test: the
class's ``transport``), ``wassh_peer`` (the TCP ``PeerServer``),
``wassh_udp_peer`` (the ``UdpEchoServer``), ``wassh_guest`` (the built
conformance guest's path), ``wassh_kit`` (per test: a ``Kit`` bundling
them, for the cases and for your own); for resolvers, ``wassh_resolver``
(per test: the class's ``resolver``), ``wassh_resolver_guest`` (the built
resolver guest's path) and ``wassh_resolver_kit`` (per test: a
``ResolverKit``).

Requirements: Linux (the errno and unreachable-address expectations are
Linux's), loopback networking, and ``ziglang`` (the ``testing`` extra brings it) to build
the guests once into ``$XDG_CACHE_HOME/wassh/testing/``. The cases are
synchronous tests that run their own trio loop: no async test plugin is
needed, and fixtures feeding ``wassh_transport`` or ``wassh_resolver`` must
be synchronous.

Stability: the names exported here, the fixtures and the case names
(``test_*``, which subclasses override) follow wassh's semantic versioning;
a minor release may add cases (and ``Capabilities`` or ``ResolverUnderTest``
fields, with defaults).

The kit's checks carry their own messages (the guest's output, what was
expected), so pytest need not rewrite its asserts: PYTEST_DONT_REWRITE.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ._cases import (
    DatagramConformance,
    Kit,
    ListenConformance,
    StreamConformance,
)
from ._guest import ConformanceFailure, GuestRun, conformance_guest, resolver_guest
from ._peer import PeerConnection, PeerServer, UdpEchoServer, pattern, pattern_digest
from ._resolver_cases import ResolverConformance, ResolverKit
from ._resolver_spec import ResolverUnderTest
from ._spec import Capabilities, ConnectFailure, Endpoint, TransportUnderTest

__all__ = [
    "Capabilities",
    "ConformanceFailure",
    "ConnectFailure",
    "DatagramConformance",
    "Endpoint",
    "GuestRun",
    "Kit",
    "ListenConformance",
    "PeerConnection",
    "PeerServer",
    "ResolverConformance",
    "ResolverKit",
    "ResolverUnderTest",
    "StreamConformance",
    "TransportUnderTest",
    "UdpEchoServer",
    "conformance_guest",
    "pattern",
    "pattern_digest",
    "resolver_guest",
]


@pytest.fixture
def wassh_transport(request: pytest.FixtureRequest) -> TransportUnderTest:
    """The transport under test: the test class's ``transport`` attribute.

    Override this fixture (in the class, the module or a conftest) to build
    the description from other fixtures, or to parametrise it.
    """
    found = getattr(request.cls, "transport", None) if request.cls is not None else None
    if not isinstance(found, TransportUnderTest):
        where = request.cls.__name__ if request.cls is not None else request.node.name
        raise pytest.UsageError(
            f"{where}: set `transport = wassh.testing.TransportUnderTest(...)` on the class, "
            "or define a `wassh_transport` fixture returning one"
        )
    return found


@pytest.fixture(scope="session")
def wassh_peer() -> Iterator[PeerServer]:
    """The TCP peer server on loopback, shared by every case of the session."""
    server = PeerServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def wassh_udp_peer() -> Iterator[UdpEchoServer]:
    """The UDP echo server on loopback."""
    server = UdpEchoServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def wassh_guest() -> Path:
    """The conformance guest (``guests/conform.c``), built with ``wassh.cc`` and cached."""
    return conformance_guest()


@pytest.fixture
def wassh_kit(
    wassh_transport: TransportUnderTest,
    wassh_peer: PeerServer,
    wassh_udp_peer: UdpEchoServer,
    wassh_guest: Path,
) -> Kit:
    """Everything a conformance case uses, for the transport under test."""
    return Kit(wassh_transport, wassh_peer, wassh_udp_peer, wassh_guest)


@pytest.fixture
def wassh_resolver(request: pytest.FixtureRequest) -> ResolverUnderTest:
    """The resolver under test: the test class's ``resolver`` attribute.

    Override this fixture (in the class, the module or a conftest) to build
    the description from other fixtures (the servers the resolver asks).
    """
    found = getattr(request.cls, "resolver", None) if request.cls is not None else None
    if not isinstance(found, ResolverUnderTest):
        where = request.cls.__name__ if request.cls is not None else request.node.name
        raise pytest.UsageError(
            f"{where}: set `resolver = wassh.testing.ResolverUnderTest(...)` on the class, "
            "or define a `wassh_resolver` fixture returning one"
        )
    return found


@pytest.fixture(scope="session")
def wassh_resolver_guest() -> Path:
    """The resolver guest (``guests/resolve.c``), built with ``wassh.cc`` and cached."""
    return resolver_guest()


@pytest.fixture
def wassh_resolver_kit(
    wassh_resolver: ResolverUnderTest, wassh_peer: PeerServer, wassh_resolver_guest: Path
) -> ResolverKit:
    """Everything a resolver conformance case uses, for the resolver under test."""
    return ResolverKit(wassh_resolver, wassh_peer, wassh_resolver_guest)
