"""Real programs from Debian's sources, built by ``guests/debbuild.py``, and the real
peers they talk to on loopback: Debian's redis-server and nginx, native curl, wget
and redis-cli as the reference for output and exit codes.

Nothing is skipped: a missing peer or a failed build fails the test and says what
to install or where the build log is.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from sshkit import WASSH, build_recipe, free_port, need
from suitekit import stop_listening

__all__ = [
    "RUN_TIMEOUT",
    "Daemon",
    "LineEcho",
    "accepts",
    "build",
    "free_port",
    "listening",
    "nginx_server",
    "redis_server",
    "run_guest",
    "run_native",
    "wait_until",
]
# The guests' own runs are short; the limit only stops a hung test.
RUN_TIMEOUT = 120.0


build = build_recipe


def run_guest(
    wasm: Path,
    *args: str,
    options: Sequence[str] = (),
    stdin: bytes = b"",
    timeout: float = RUN_TIMEOUT,
) -> subprocess.CompletedProcess[bytes]:
    """``wassh run [options] wasm args...`` with the program's name as argv[0]."""
    return subprocess.run(
        [*WASSH, "run", *options, str(wasm), *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def run_native(
    program: str, *args: str, stdin: bytes = b"", timeout: float = RUN_TIMEOUT
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [need(program), *args], input=stdin, capture_output=True, timeout=timeout, check=False
    )


def wait_until(predicate: object, what: str, timeout: float = 10.0) -> None:
    """Poll ``predicate()`` until true; fail the test with ``what`` on timeout."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}", pytrace=False)


def accepts(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def listening(port: int, *, any_address: bool = False) -> bool:
    """Whether something listens on 127.0.0.1:port (or 0.0.0.0:port), read from
    /proc (connecting to find out would use up a one-shot listener's accept)."""
    want = f"{'00000000' if any_address else '0100007F'}:{port:04X}"
    with open("/proc/net/tcp") as f:
        return any(line.split()[1] == want and line.split()[3] == "0A" for line in list(f)[1:])


class Daemon:
    """A real server in the foreground, its output in a log file, stopped on close."""

    def __init__(self, argv: list[str], log: Path, port: int) -> None:
        self.port = port
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

        def ready() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"{argv[0]} exited:\n{self.output()}", pytrace=False)
            return accepts(port)

        wait_until(ready, f"{argv[0]} to listen on port {port}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def redis_server(directory: Path) -> Daemon:
    """Debian's redis-server on a free loopback port, nothing persisted."""
    port = free_port()
    argv = [
        need("redis-server"),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(directory),
        "--daemonize", "no",
    ]  # fmt: skip
    return Daemon(argv, directory / "redis.log", port)


def nginx_server(directory: Path, root: Path, locations: str = "") -> Daemon:
    """Debian's nginx serving ``root`` on a free loopback port (one process, no root)."""
    port = free_port()
    temp = "".join(
        f"    {kind}_temp_path {directory / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    config = (
        f"daemon off;\nmaster_process off;\npid {directory / 'nginx.pid'};\n"
        f"error_log {directory / 'error.log'} notice;\n"
        "events { worker_connections 64; }\n"
        "http {\n"
        f"    access_log {directory / 'access.log'};\n{temp}"
        "    default_type application/octet-stream;\n"
        f"    server {{\n        listen 127.0.0.1:{port};\n        root {root};\n"
        f"{locations}    }}\n"
        "}\n"
    )
    path = directory / "nginx.conf"
    path.write_text(config)
    nginx = need("nginx")
    # -e: the error log nginx opens before it reads the config
    argv = [nginx, "-p", str(directory), "-e", str(directory / "error.log"), "-c", str(path)]
    return Daemon(argv, directory / "nginx.out", port)


class LineEcho:
    """Echoes each line back with a prefix, per connection, until the client closes."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _serve(conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as lines:
            for line in lines:
                conn.sendall(b"echo: " + line)

    def close(self) -> None:
        stop_listening(self.sock, self._acceptor)
