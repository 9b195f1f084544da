"""AF_UNIX guests: guest paths mapped to host sockets by the embedder, nothing else."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from suitekit import run_guest, stop_listening
from wassh import TransportConfig

WASSH = Path(sys.executable).parent / "wassh"
AGENT = "/AF_UNIX/agent/test-agent"


class UnixEchoServer:
    """A host Unix-socket server answering each connection with b"echo:" + what it read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(16)
        self.connections = 0
        self._acceptor = threading.Thread(target=self._serve, daemon=True)
        self._acceptor.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                data = b""
                while chunk := conn.recv(4096):
                    data += chunk
                conn.sendall(b"echo:" + data)

    def close(self) -> None:
        stop_listening(self.sock, self._acceptor)


@pytest.fixture
def unix_echo(tmp_path: Path) -> Iterator[UnixEchoServer]:
    server = UnixEchoServer(tmp_path / "agent.sock")
    yield server
    server.close()


def test_mapped_path_reaches_the_host_socket(netserver: Path, unix_echo: UnixEchoServer) -> None:
    config = TransportConfig(settings={"listen": {"unix": {AGENT: str(unix_echo.path)}}})
    r = run_guest(netserver, "unix", AGENT, "sign this", config=config)
    assert r.code == 0, r
    assert r.stdout.splitlines() == [
        "read before connect -1 errno 28",  # EINVAL, as the original
        "reply echo:sign this",
        "getpeername -1 errno 66",  # AF_UNIX names are not reported (EPROTONOSUPPORT)
    ]
    assert unix_echo.connections == 1


def test_unmapped_path_is_refused_even_if_it_exists_on_the_host(
    netserver: Path, unix_echo: UnixEchoServer
) -> None:
    config = TransportConfig(settings={"listen": {"unix": {AGENT: str(unix_echo.path)}}})
    r = run_guest(netserver, "unix", str(unix_echo.path), "hi", config=config)
    assert r.stdout.splitlines()[1] == "connect errno 14 Connection refused"
    r = run_guest(netserver, "unix", "/AF_UNIX/agent/other", "hi", config=config)
    assert r.stdout.splitlines()[1] == "connect errno 14 Connection refused"
    assert unix_echo.connections == 0


def test_mapped_path_without_a_server(netserver: Path, tmp_path: Path) -> None:
    config = TransportConfig(settings={"listen": {"unix": {AGENT: str(tmp_path / "missing.sock")}}})
    r = run_guest(netserver, "unix", AGENT, "hi", config=config)
    assert r.stdout.splitlines()[1] == "connect errno 44 No such file or directory"


def test_cli_unix_mapping(netserver: Path, unix_echo: UnixEchoServer) -> None:
    out = subprocess.run(
        [
            *(str(WASSH), "run", "--unix", f"{AGENT}={unix_echo.path}", str(netserver)),
            *("unix", AGENT, "over the cli"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[1] == "reply echo:over the cli"
