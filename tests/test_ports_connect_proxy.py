"""connect-proxy (Debian's connect-proxy 1.105, the SSH ProxyCommand helper),
unmodified, through Debian's danted (SOCKS5) and tinyproxy (HTTP CONNECT) to a
line echo server on loopback.

The guest relays stdin to the proxied connection and the connection to stdout
with select(); each line written is read back through both proxies before the
next, and the proxies' logs show the connections they made.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from portkit import RUN_TIMEOUT, LineEcho, build
from sshkit import ROOT, WASSH

sys.path.insert(0, str(ROOT / "plugins" / "transport_proxy" / "tests"))
from proxykit import Daemon, Danted, Tinyproxy

pytestmark = pytest.mark.ports


@pytest.fixture(scope="module")
def connect_proxy() -> Path:
    return build("connect-proxy")["connect-proxy"]


@pytest.fixture
def echo() -> Iterator[LineEcho]:
    server = LineEcho()
    yield server
    server.close()


@pytest.fixture
def danted(tmp_path: Path) -> Iterator[Danted]:
    proxy = Danted(tmp_path / "danted").start()
    yield proxy
    proxy.stop()


@pytest.fixture
def tinyproxy(tmp_path: Path) -> Iterator[Tinyproxy]:
    proxy = Tinyproxy(tmp_path / "tinyproxy").start()
    yield proxy
    proxy.stop()


def converse(wasm: Path, flag: str, proxy: Daemon, port: int) -> None:
    """Lines through the guest and the proxy, each answered before the next."""
    guest = subprocess.Popen(
        [*WASSH, "run", str(wasm), flag, f"127.0.0.1:{proxy.port}", "127.0.0.1", str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert guest.stdin is not None and guest.stdout is not None
    try:
        for i in range(50):
            line = b"line %d %s\n" % (i, b"x" * (i * 100))
            guest.stdin.write(line)
            guest.stdin.flush()
            assert guest.stdout.readline() == b"echo: " + line
    finally:
        guest.stdin.close()
        try:
            guest.wait(RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            guest.kill()
            guest.wait()
    assert guest.returncode == 0, guest.stderr.read().decode(errors="replace")


def test_socks5_through_danted(connect_proxy: Path, danted: Danted, echo: LineEcho) -> None:
    converse(connect_proxy, "-S", danted, echo.port)
    assert f"127.0.0.1.{echo.port}" in danted.traffic()


def test_http_connect_through_tinyproxy(
    connect_proxy: Path, tinyproxy: Tinyproxy, echo: LineEcho
) -> None:
    converse(connect_proxy, "-H", tinyproxy, echo.port)
    assert f"CONNECT 127.0.0.1:{echo.port}" in tinyproxy.traffic()


def test_refused_by_the_proxy(connect_proxy: Path, danted: Danted) -> None:
    """danted passes loopback destinations only: 192.0.2.1 (TEST-NET-1) is refused
    at the proxy, and connect-proxy says so and fails."""
    r = subprocess.run(
        [*WASSH, "run", str(connect_proxy), "-S", f"127.0.0.1:{danted.port}", "192.0.2.1", "80"],
        input=b"",
        capture_output=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    # what the same source built with gcc prints
    assert (r.returncode, r.stderr) == (
        1,
        b"ERROR: Got error response from SOCKS server: 2 (connection not allowed by ruleset).\n"
        b"FATAL: failed to begin relaying via SOCKS.\n",
    )


def test_a_proxy_that_never_answers_times_out(connect_proxy: Path) -> None:
    """``-w 1``: alarm(1) and a handler defined ``(void)`` (cast to the handler
    type) end the wait for a SOCKS server that accepts and says nothing."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        start = time.monotonic()
        argv = ["-w", "1", "-S", f"127.0.0.1:{port}", "127.0.0.1", "22"]
        r = subprocess.run(
            [*WASSH, "run", str(connect_proxy), *argv],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=RUN_TIMEOUT,
        )
        took = time.monotonic() - start
    assert r.returncode == 1 and r.stderr.endswith(b"ERROR: timed out\n"), r.stderr
    assert 0.9 <= took < 10
