"""redis-cli from Debian's redis source, unmodified, against Debian's redis-server.

Each case runs the same command line through the guest and through Debian's
native redis-cli and expects the same bytes and exit code, and checks the
server's state independently (over a plain socket).
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from portkit import Daemon, build, free_port, redis_server, run_guest, run_native

pytestmark = pytest.mark.ports


@pytest.fixture(scope="module")
def redis_cli() -> Path:
    return build("redis")["redis-cli"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Daemon]:
    daemon = redis_server(tmp_path)
    yield daemon
    daemon.close()


def resp(port: int, *words: bytes) -> bytes:
    """One command in RESP over a plain socket; the raw reply (one read is enough:
    the replies checked here are short)."""
    frame = b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(frame)
        return s.recv(65536)


def both(wasm: Path, port: int, *args: str, stdin: bytes = b"") -> tuple[bytes, int]:
    """The guest's stdout and exit code, asserted equal to native redis-cli's."""
    argv = ("-h", "127.0.0.1", "-p", str(port), *args)
    guest = run_guest(wasm, *argv, stdin=stdin)
    native = run_native("redis-cli", *argv, stdin=stdin)
    assert guest.stdout == native.stdout, guest.stderr.decode(errors="replace")
    assert guest.returncode == native.returncode
    return guest.stdout, guest.returncode


def test_version(redis_cli: Path) -> None:
    r = run_guest(redis_cli, "--version")
    assert r.returncode == 0
    assert r.stdout.startswith(b"redis-cli 7.0.15")


def test_set_get(redis_cli: Path, server: Daemon) -> None:
    out, code = both(redis_cli, server.port, "SET", "greeting", "hello from wasm")
    assert (out, code) == (b"OK\n", 0)
    assert resp(server.port, b"GET", b"greeting") == b"$15\r\nhello from wasm\r\n"
    out, _ = both(redis_cli, server.port, "GET", "greeting")
    assert out == b"hello from wasm\n"


def test_error_reply(redis_cli: Path, server: Daemon) -> None:
    resp(server.port, b"SET", b"word", b"abc")
    out, _ = both(redis_cli, server.port, "INCR", "word")
    assert out.startswith(b"ERR value is not an integer")
    out, _ = both(redis_cli, server.port, "NOSUCHCOMMAND", "x")
    assert b"unknown command" in out


def test_commands_from_stdin(redis_cli: Path, server: Daemon) -> None:
    script = b"".join(b"RPUSH list item%d\n" % i for i in range(200)) + b"LLEN list\n"
    r = run_guest(redis_cli, "-h", "127.0.0.1", "-p", str(server.port), stdin=script)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert r.stdout == b"".join(b"%d\n" % n for n in range(1, 201)) + b"200\n"
    assert resp(server.port, b"LINDEX", b"list", b"199") == b"$7\r\nitem199\r\n"


def test_pipe_mode(redis_cli: Path, server: Daemon) -> None:
    """--pipe: mass insertion, the client writing and reading at once."""
    count = 20000
    frames = b"".join(
        b"*3\r\n$3\r\nSET\r\n$%d\r\nkey:%d\r\n$%d\r\nvalue:%d\r\n"
        % (len(b"key:%d" % i), i, len(b"value:%d" % i), i)
        for i in range(count)
    )
    r = run_guest(redis_cli, "-h", "127.0.0.1", "-p", str(server.port), "--pipe", stdin=frames)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert f"errors: 0, replies: {count}".encode() in r.stdout
    assert resp(server.port, b"DBSIZE") == b":%d\r\n" % count
    assert resp(server.port, b"GET", b"key:12345") == b"$11\r\nvalue:12345\r\n"


def test_binary_value_byte_exact(redis_cli: Path, server: Daemon, tmp_path: Path) -> None:
    """-x reads the last argument from stdin; --raw prints it back unquoted."""
    blob = hashlib.sha256(b"seed").digest() * 4096 + bytes(range(256))  # 131,328 bytes
    run = run_guest(
        redis_cli, "-h", "127.0.0.1", "-p", str(server.port), "-x", "SET", "blob", stdin=blob
    )
    assert run.stdout == b"OK\n"
    got = run_guest(redis_cli, "-h", "127.0.0.1", "-p", str(server.port), "--raw", "GET", "blob")
    assert got.stdout == blob + b"\n"
    native = run_native("redis-cli", "-h", "127.0.0.1", "-p", str(server.port), "STRLEN", "blob")
    assert native.stdout == b"%d\n" % len(blob)


def test_refused(redis_cli: Path, tmp_path: Path) -> None:
    """Nothing listening: the same message and exit code as native redis-cli."""
    port = free_port()
    args = ("-h", "127.0.0.1", "-p", str(port), "PING")
    guest = run_guest(redis_cli, *args)
    native = run_native("redis-cli", *args)
    assert guest.returncode == native.returncode == 1
    assert b"Connection refused" in guest.stdout + guest.stderr
    assert (guest.stdout, guest.stderr) == (native.stdout, native.stderr)
