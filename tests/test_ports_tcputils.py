"""tcputils (Debian's tcputils 0.6.2): tcpconnect, tcplisten and tcpbug, unmodified.

Each relays with select() between stdio (or a second socket) and a TCP
connection. The peers are plain Python sockets on loopback; every line sent is
read back before the next, so the checks never depend on timing.
"""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from portkit import RUN_TIMEOUT, LineEcho, build, free_port, listening, wait_until
from sshkit import WASSH

pytestmark = pytest.mark.ports


@pytest.fixture(scope="module")
def tcputils() -> dict[str, Path]:
    return build("tcputils")


@pytest.fixture
def echo() -> Iterator[LineEcho]:
    server = LineEcho()
    yield server
    server.close()


def start(wasm: Path, *args: str, options: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*WASSH, "run", *options, str(wasm), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def finish(guest: subprocess.Popen[bytes]) -> bytes:
    """Close the guest's stdin and wait; its stderr."""
    assert guest.stdin is not None and guest.stderr is not None
    guest.stdin.close()
    try:
        guest.wait(RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        guest.kill()
        guest.wait()
    return guest.stderr.read()


def lines(count: int) -> list[bytes]:
    return [b"line %d %s\n" % (i, b"y" * (i * 97)) for i in range(count)]


def test_tcpconnect_talks_to_a_server(tcputils: dict[str, Path], echo: LineEcho) -> None:
    guest = start(tcputils["tcpconnect"], "127.0.0.1", str(echo.port))
    assert guest.stdin is not None and guest.stdout is not None
    for line in lines(100):
        guest.stdin.write(line)
        guest.stdin.flush()
        assert guest.stdout.readline() == b"echo: " + line
    err = finish(guest)
    assert guest.returncode == 0, err.decode(errors="replace")


def test_tcplisten_serves_a_native_client(tcputils: dict[str, Path]) -> None:
    port = free_port()
    guest = start(tcputils["tcplisten"], "127.0.0.1", str(port))
    assert guest.stdin is not None and guest.stdout is not None
    try:
        wait_until(lambda: listening(port), f"tcplisten on port {port}", timeout=30)
        with (
            socket.create_connection(("127.0.0.1", port), timeout=RUN_TIMEOUT) as client,
            client.makefile("rb") as replies,  # closed too, so the client really hangs up
        ):
            for line in lines(50):
                client.sendall(line)  # client -> guest's stdout
                assert guest.stdout.readline() == line
                guest.stdin.write(b"re: " + line)  # guest's stdin -> client
                guest.stdin.flush()
                assert replies.readline() == b"re: " + line
    finally:
        err = finish(guest)
    assert guest.returncode == 0, err.decode(errors="replace")


def test_tcpbug_relays_and_shows_both_directions(tcputils: dict[str, Path], echo: LineEcho) -> None:
    """tcpbug listens, connects each client on to a server and prints what passes."""
    port = free_port()
    # tcpbug binds its port on every address: the policy lets it, for this port only
    guest = start(
        tcputils["tcpbug"],
        str(port),
        "127.0.0.1",
        str(echo.port),
        options=("--listen-allow", f"0.0.0.0:{port}"),
    )
    assert guest.stdout is not None
    try:
        wait_until(lambda: listening(port, any_address=True), f"tcpbug on {port}", timeout=30)
        with socket.create_connection(("127.0.0.1", port), timeout=RUN_TIMEOUT) as client:
            replies = client.makefile("rb")
            for line in lines(20):
                client.sendall(line)
                assert replies.readline() == b"echo: " + line
    finally:
        guest.terminate()
        out, err = guest.communicate(timeout=RUN_TIMEOUT)
    shown = out.decode(errors="replace")
    assert "line 19 " + "y" * 40 in shown, err.decode(errors="replace")
    assert "echo: line 19" in shown


def test_tcpconnect_reads_the_reply_that_follows_its_half_close(
    tcputils: dict[str, Path],
) -> None:
    """At the end of its input tcpconnect calls ``shutdown(fd, 1)`` (Linux's
    SHUT_WR, written as a number) and goes on reading: a server that answers only
    after the end of the request is heard, as with the native build."""
    server = socket.create_server(("127.0.0.1", 0))
    port = int(server.getsockname()[1])
    replies: list[bytes] = []

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            total = 0
            while chunk := conn.recv(4096):
                total += len(chunk)
            reply = b"got %d\n" % total
            conn.sendall(reply)
            replies.append(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        result = subprocess.run(
            [*WASSH, "run", str(tcputils["tcpconnect"]), "127.0.0.1", str(port)],
            input=b"hello\n" * 1000,
            capture_output=True,
            timeout=RUN_TIMEOUT,
        )
        thread.join(RUN_TIMEOUT)
        assert replies == [b"got 6000\n"]
        assert result.stdout == b"got 6000\n", result.stderr
        assert result.returncode == 0
    finally:
        server.close()
