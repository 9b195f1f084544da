"""wassh.testing's stream conformance suite through real proxies.

Declared differences: a proxy refuses or cannot reach a destination in its own
words (danted's rules here pass loopback only: ``224.0.0.1`` is refused by rule,
EACCES; tinyproxy answers 500 for anything it cannot reach, ECONNREFUSED).
Through tinyproxy, getsockname is the unspecified address (HTTP CONNECT does
not say where the proxy connects from; SOCKS5 does), a peer's reset arrives as
end of stream (tinyproxy closes gracefully), and a half-close ends the tunnel.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator

import pytest
from proxykit import Danted, Tinyproxy
from wassh import TransportConfig
from wassh.testing import Capabilities, ConnectFailure, StreamConformance, TransportUnderTest

pytest_plugins = ["wassh.testing"]


@pytest.fixture(scope="class")
def class_danted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Danted]:
    proxy = Danted(tmp_path_factory.mktemp("danted")).start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="class")
def class_tinyproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tinyproxy]:
    proxy = Tinyproxy(tmp_path_factory.mktemp("tinyproxy")).start()
    yield proxy
    proxy.stop()


def through(url: str) -> TransportConfig:
    return TransportConfig(settings={"proxy": {"url": url}}, connect_timeout=10.0)


class TestProxyDanted(StreamConformance):
    @pytest.fixture
    def wassh_transport(self, class_danted: Danted) -> TransportUnderTest:
        url = class_danted.url("socks5h")
        return TransportUnderTest(
            name="proxy",
            config_for=lambda endpoint: through(url),
            expects=Capabilities(unreachable=ConnectFailure(errno.EACCES)),
        )


class TestProxyTinyproxy(StreamConformance):
    @pytest.fixture
    def wassh_transport(self, class_tinyproxy: Tinyproxy) -> TransportUnderTest:
        url = class_tinyproxy.url("http")
        return TransportUnderTest(
            name="proxy",
            config_for=lambda endpoint: through(url),
            expects=Capabilities(
                unreachable=ConnectFailure(errno.ECONNREFUSED),
                local_address=False,
                reset=None,
                half_close="ends-connection",
            ),
        )
