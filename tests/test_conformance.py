"""wassh.testing's conformance suite against the project's own transports."""

from __future__ import annotations

from wassh.testing import (
    DatagramConformance,
    ListenConformance,
    StreamConformance,
    TransportUnderTest,
)

pytest_plugins = ["wassh.testing"]


class TestTcp(StreamConformance):
    transport = TransportUnderTest(name="tcp")


class TestListen(ListenConformance):
    transport = TransportUnderTest(name="listen")


class TestUdp(DatagramConformance):
    transport = TransportUnderTest(name="listen")
