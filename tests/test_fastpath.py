"""The compiled fast path (``wassh._fastpath``): built, used, and answering as Python does.

The whole suite runs twice in CI, with the extension and with
``WASSH_PURE_PYTHON=1``; these tests check what only this layer can get wrong:
that it is there at all, that the calls it claims are served in C, and that
its hand-overs to Python (a peek, a reset, a shutdown, a bad pointer) keep the
answers the Python host gives.
"""

from __future__ import annotations

import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from guestbuild import build_guest
from suitekit import GUESTS, EchoServer
from wassh import fastpath

ROOT = Path(__file__).resolve().parent.parent
WASSH = Path(sys.executable).parent / "wassh"
PURE = not fastpath.enabled()
SERVED = re.compile(r"host calls served in C: (.*)")


@pytest.fixture(scope="module")
def fastcalls() -> Path:
    return build_guest(GUESTS / "net" / "fastcalls.c", sdk=True)


def run(wasm: Path, *args: str, events: Path | None = None) -> subprocess.CompletedProcess[str]:
    extra = ["--events", str(events)] if events is not None else []
    return subprocess.run(
        [str(WASSH), "-vv", "run", *extra, str(wasm), "--", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def served(stderr: str) -> dict[str, tuple[int, int]]:
    """``{operation: (served in C, calls)}`` from the runtime's closing log line."""
    match = SERVED.search(stderr)
    if match is None:
        return {}
    out = {}
    for part in match.group(1).split(", "):
        name, counts = part.rsplit(" ", 1)
        fast, calls = counts.split("/")
        out[name] = (int(fast), int(calls))
    return out


def test_extension_is_built() -> None:
    # Machines that run the suite have a compiler: a build that silently fell
    # back to pure Python would leave the fast path untested.
    assert fastpath.built()
    assert fastpath.enabled() == (os.environ.get("WASSH_PURE_PYTHON", "") in ("", "0"))


def test_every_call_shape_answers_alike(fastcalls: Path, echo_server: EchoServer) -> None:
    done = run(fastcalls, str(echo_server.port))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    assert lines["recvfrom_port"] == str(echo_server.port)
    assert done.stdout.rstrip().endswith("done")
    counts = served(done.stderr)
    if PURE:
        assert counts == {}
        return
    # Every call left to Python is one the guest made on purpose: sendto after
    # shutdown and with a bad pointer, the peek and the read after shutdown, the
    # two-buffer writev. The rest never left C.
    assert counts["sendto"][1] - counts["sendto"][0] == 2, counts
    assert counts["recvfrom"][1] - counts["recvfrom"][0] == 2, counts
    assert counts["fd_write"][1] - counts["fd_write"][0] == 1, counts
    assert counts["fd_read"][0] == counts["fd_read"][1] >= 3, counts
    assert counts["poll"][0] == counts["poll"][1] >= 6, counts


class ResetServer:
    """Accepts one connection; on the byte ``R`` it resets it (SO_LINGER 0)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = int(self.sock.getsockname()[1])
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        if conn.recv(1) == b"R":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()


@pytest.fixture
def reset_server() -> Iterator[ResetServer]:
    server = ResetServer()
    yield server
    server.sock.close()


def test_reset_is_reported_once_then_end_of_stream(
    fastcalls: Path, reset_server: ResetServer
) -> None:
    done = run(fastcalls, str(reset_server.port), "reset")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reset_errno=" in done.stdout and "after_reset=0" in done.stdout


def test_byte_counts_reach_the_closed_event(
    fastcalls: Path, echo_server: EchoServer, tmp_path: Path
) -> None:
    log = tmp_path / "events.jsonl"
    done = run(fastcalls, str(echo_server.port), events=log)
    assert done.returncode == 0, done.stdout + done.stderr
    closed = [e for e in map(json.loads, log.read_text().splitlines()) if e["event"] == "closed"]
    first = min(closed, key=lambda e: e["socket"])
    # hello, world, x, peek, abcd and the 1 MiB both ways: what the echo server saw.
    payload = 5 + 5 + 1 + 4 + 4 + (1 << 20)
    assert first["bytes_sent"] == payload
    assert first["bytes_received"] == payload
    assert echo_server.wait_total(payload)[0] == payload


def test_core_installs_and_runs_without_a_compiler(tmp_path: Path) -> None:
    """``pip install wassh`` where no C compiler exists: the build goes on without the
    extension, and the installed wassh runs a guest on the Python host calls."""
    env = dict(os.environ, CC="/bin/false", LDSHARED="/bin/false", PYTHONDONTWRITEBYTECODE="1")
    uv = _uv()
    subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(tmp_path), str(ROOT / "core")],
        check=True,
        capture_output=True,
        env=env,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("wassh-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert not [n for n in names if n.endswith(".so")], names
    assert "wassh/_fastpath.c" in names and "wassh/sdk/src/socket.c" in names
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "--quiet", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(py), str(wheel)],
        check=True,
        timeout=300,
    )
    probe = subprocess.run(
        [str(py), "-c", "from wassh import fastpath; print(fastpath.built())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "False"
    guest = build_guest(GUESTS / "net" / "fastcalls.c", sdk=True)
    done = subprocess.run(
        [str(venv / "bin" / "wassh"), "run", str(guest)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2  # the guest's usage error: it ran


def _uv() -> str:
    for candidate in (Path.home() / ".local" / "bin" / "uv", Path(sys.executable).parent / "uv"):
        if candidate.exists():
            return str(candidate)
    return "uv"


def test_accept_in_c_serves_a_blocking_server() -> None:
    """A blocking accept loop: the accepts (and the non-blocking EAGAIN) never leave C,
    and each accepted socket is the host's, with its peer and its events."""
    wasm = build_guest(GUESTS / "net" / "acceptloop.c", sdk=True)
    proc = subprocess.Popen(
        [str(WASSH), "-vv", "run", str(wasm), "--", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        for i in range(20):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
                payload = f"connection {i}".encode()
                conn.sendall(payload)
                got = b""
                while len(got) < len(payload):
                    got += conn.recv(100)
                assert got == payload
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, out + err
    # "connection 0" .. "connection 19": 10 of 12 bytes and 10 of 13
    assert "served 20 connections, 250 bytes" in out
    counts = served(err)
    if PURE:
        assert counts == {}
    else:
        assert counts["accept"] == (21, 21), counts  # the EAGAIN one too
