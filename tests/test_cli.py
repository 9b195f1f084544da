"""The command line, run as a user would: subprocesses of .venv/bin/wassh."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import wasmtime
from suitekit import EchoServer

WASSH = str(Path(sys.executable).parent / "wassh")
ROOT = Path(__file__).parent.parent


def wassh(
    *args: str, stdin: bytes = b"", timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([WASSH, *args], input=stdin, capture_output=True, timeout=timeout)


def test_cc_then_run_reaches_a_server_by_name(tmp_path: Path, echo_server: EchoServer) -> None:
    out = tmp_path / "client.wasm"
    cc = wassh("cc", "-O2", str(ROOT / "examples" / "hello_client.c"), "-o", str(out))
    assert cc.returncode == 0, cc.stderr
    r = wassh(
        "run",
        "--add-host",
        "echo.example=127.0.0.1",
        str(out),
        "--",
        "echo.example",
        str(echo_server.port),
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"hello from a WebAssembly guest\n"


def test_exit_status_stdin_and_env_pass_through(netclient: Path, echo_server: EchoServer) -> None:
    r = wassh(
        "run",
        str(netclient),
        "--",
        "relay",
        "127.0.0.1",
        str(echo_server.port),
        stdin=b"line one\nline two\n",
    )
    assert r.returncode == 0
    assert r.stdout == b"line one\nline two\n"
    r = wassh("run", str(netclient), "--", "no-such-mode", "h", "p")
    assert r.returncode == 2
    assert r.stderr == b"unknown mode no-such-mode\n"


def test_trace_logs_host_calls(netclient: Path, closed_port: int) -> None:
    r = wassh(
        "run", "--trace", str(netclient), "--", "connect-errno", "127.0.0.1", str(closed_port)
    )
    assert r.stdout == b"errno 14 Connection refused\n"
    trace = r.stderr.decode()
    assert "[wassh] sock_create(" in trace
    assert "[wassh] sock_connect(" in trace and "ECONNREFUSED" in trace


def test_dir_preopen_and_env(tmp_path: Path) -> None:
    src = tmp_path / "cat.c"
    src.write_text(
        "#include <stdio.h>\n#include <stdlib.h>\n"
        'int main(void) { FILE *f = fopen("/data/in.txt", "r"); char b[64] = {0};'
        ' if (!f) { perror("fopen"); return 1; } fgets(b, sizeof b, f);'
        ' printf("%s|%s\\n", b, getenv("GREETING")); return 0; }\n'
    )
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "in.txt").write_text("from the host")
    wasm = tmp_path / "cat.wasm"
    assert wassh("cc", str(src), "-o", str(wasm)).returncode == 0
    r = wassh("run", "--dir", f"{tmp_path / 'data'}::/data", "--env", "GREETING=hi", str(wasm))
    assert r.stdout == b"from the host|hi\n", r.stderr


def test_bad_arguments_give_one_clear_line(tmp_path: Path) -> None:
    cases = [
        ("run", "--add-host", "nohost", "x.wasm"),
        ("run", "--add-host", "a=not-an-ip", "x.wasm"),
        ("run", str(tmp_path / "missing.wasm")),
        ("run", "--dir", str(tmp_path / "nope"), "x.wasm"),
        ("run", "--relay-protocol", "carrier-pigeon", "x.wasm"),
        ("run", "--frobnicate", "x.wasm"),
        ("relay", "--bogus"),
        ("relay", "--listen", "nope"),
        ("no-such-command",),
    ]
    for args in cases:
        r = wassh(*args)
        assert r.returncode == 2, args
        lines = r.stderr.decode().splitlines()
        assert len(lines) == 1 and lines[0].startswith("wassh: "), (args, lines)
    garbage = tmp_path / "garbage.wasm"
    garbage.write_bytes(b"\0asm not really")
    r = wassh("run", str(garbage))
    assert r.returncode == 2
    assert r.stderr.decode().count("\n") == 1
    assert "not a usable WebAssembly module" in r.stderr.decode()


@pytest.mark.parametrize(
    ("wat", "said"),
    [
        ('(module (func (export "_start")))', "exports no memory"),
        ('(module (memory (export "memory") 1))', "no _start function"),
        (
            '(module (memory (export "memory") 1) (func (export "_start") (param i32)))',
            "_start function takes parameters",
        ),
        (
            '(module (import "env" "f" (func)) (memory (export "memory") 1)'
            ' (func (export "_start")))',
            "imports the function env.f",
        ),
        (
            '(module (import "wassh" "m" (memory 1)) (func (export "_start")))',
            "imports the memory wassh.m",
        ),
    ],
)
def test_a_module_that_is_no_command_is_one_line(tmp_path: Path, wat: str, said: str) -> None:
    module = tmp_path / "module.wasm"
    module.write_bytes(wasmtime.wat2wasm(wat))
    r = wassh("run", str(module))
    lines = r.stderr.decode().splitlines()
    assert (r.returncode, len(lines)) == (2, 1), lines
    assert lines[0].startswith(f"wassh: {module} cannot run: ") and said in lines[0], lines


def test_transports_lists_the_ranking() -> None:
    r = wassh("transports")
    assert r.returncode == 0
    assert any(line.startswith("tcp ") for line in r.stdout.decode().splitlines())
