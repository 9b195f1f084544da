"""Shared fixtures: real loopback servers and cached guest builds."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from guestbuild import build_guest
from suitekit import GUESTS, EchoServer


@pytest.fixture
def echo_server() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def echo_server_v6() -> Iterator[EchoServer]:
    server = EchoServer("::1")
    yield server
    server.close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


@pytest.fixture(scope="session")
def netclient() -> Path:
    return build_guest(GUESTS / "net" / "netclient.c", sdk=True)


@pytest.fixture(scope="session")
def netserver() -> Path:
    return build_guest(GUESTS / "net" / "netserver.c", sdk=True)
