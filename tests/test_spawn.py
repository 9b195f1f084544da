"""Guests starting guests: posix_spawn, fork + exec, system, popen, waitpid, kill.

``tests/guests/spawn/spawner.c`` is built twice, natively with gcc and as a
wassh guest, and the two print the same lines for the same scenarios (exit
statuses, pipes both ways, signals, WNOHANG, ECHILD, ENOENT, the ProxyCommand
shape of fork + exec, sh -c, system, popen, the environment). What only wassh
does — a program map instead of host binaries, a minimal sh -c, fork without
exec refused — is checked on its own, with the exit status and the one line.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import wassh
from guestbuild import build_guest
from suitekit import GUESTS

WASSH = [sys.executable, "-m", "wassh", "run"]
SOURCE = GUESTS / "spawn" / "spawner.c"


@pytest.fixture(scope="session")
def spawner() -> Path:
    return build_guest(SOURCE, sdk=True)


@pytest.fixture(scope="session")
def native(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.fail("gcc not found: install Debian's build-essential", pytrace=False)
    out = tmp_path_factory.mktemp("native") / "spawner"
    subprocess.run([gcc, "-O2", "-Wall", "-o", str(out), str(SOURCE)], check=True)
    return out


def run(
    spawner: Path, *args: str, wassh_args: tuple[str, ...] = (), timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*WASSH, *wassh_args, str(spawner), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_the_guest_sees_what_the_native_program_sees(spawner: Path, native: Path) -> None:
    expected = subprocess.run(
        [str(native)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    got = run(spawner)
    assert got.returncode == 0, got.stderr
    assert got.stdout == expected
    # the scenarios really ran: one line each, both ways
    for line in (
        "exit 300: exited 44",
        "pipes: read HELLO THROUGH A PIPE",
        "nohang: 0",
        "SIGTERM: killed by 15",
        "SIGKILL: killed by 9",
        "kill after reaping: -1 ESRCH",
        "no children: -1 ECHILD",
        "posix_spawn missing: ENOENT",
        "fork+exec: read THROUGH FORK AND EXEC",
        "parent's SIGPIPE kept: ignored",
        "one two three four five",
        "system exit 4: exited 4",
        "popen read: from popen",
        "SPAWN_VAR=inherited",
    ):
        assert line + "\n" in got.stdout
    assert "Traceback" not in got.stderr


def test_exec_without_fork_becomes_the_program(spawner: Path, native: Path) -> None:
    expected = subprocess.run([str(native), "replace", "7"], timeout=60, check=False)
    got = run(spawner, "replace", "7")
    assert expected.returncode == got.returncode == 7
    assert got.stderr == ""


def test_a_shell_command_is_words_quotes_and_exec(spawner: Path) -> None:
    got = run(spawner, "exec", "/bin/sh", "-c", f"exec {spawner.name} child exit 6")
    assert got.stdout == "exec: exited 6\n"
    got = run(spawner, "sh", "")
    assert got.stdout == "sh: exited 0\n"


@pytest.mark.parametrize(
    ("command", "why"),
    [
        ("a | b", "pipes"),
        ("a; b", "';' (one command only)"),
        ("a > out", "redirections"),
        ("echo $HOME", "'$' expansions"),
        ("a && b", "'&' and '&&'"),
        ("X=1 a", "variable assignments"),
    ],
)
def test_shell_syntax_beyond_simple_commands_fails_with_127(
    spawner: Path, command: str, why: str
) -> None:
    got = run(spawner, "sh", command)
    assert got.returncode == 0
    assert got.stdout == "sh: exited 127\n"
    assert got.stderr == f"wassh: sh -c: {why} not supported in {command!r}\n"


def test_an_unknown_program_is_a_child_exiting_127(spawner: Path) -> None:
    got = run(spawner, "exec", "nosuch", "x")
    assert got.stdout == "exec: exited 127\n"
    assert got.stderr == ("wassh: nosuch: no such program (add it with --program NAME=PATH.wasm)\n")
    got = run(spawner, "sh", "nosuch x")
    assert got.stdout == "sh: exited 127\n"
    assert "nosuch: no such program" in got.stderr


def test_programs_come_from_the_program_map(spawner: Path) -> None:
    got = run(
        spawner, "exec", "helper", "child", "args", "via", "map",
        wassh_args=("--program", f"helper={spawner}"),
    )  # fmt: skip
    assert got.stdout == "via map\nexec: exited 0\n", got.stderr
    bad = run(spawner, wassh_args=("--program", "helper=/nonexistent/helper.wasm"))
    assert bad.returncode == 2
    assert bad.stderr == "wassh: --program helper=/nonexistent/helper.wasm: no such file\n"


def test_a_fork_that_continues_without_exec_is_refused(spawner: Path) -> None:
    got = run(spawner, "forkonly")
    assert got.returncode == 127
    assert got.stderr.endswith(
        f"wassh: wassh.children: {spawner.name}: the child of fork() exited without exec: "
        "a fork that continues without exec is not supported\n"
    )
    assert "forkonly:" not in got.stdout  # the parent's side never ran


def test_the_network_policy_applies_to_children(spawner: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = str(listener.getsockname()[1])
        allowed = run(spawner, "connect", "127.0.0.1", port)
        assert allowed.stdout == "child connect: ok\nconnect: exited 0\n", allowed.stderr
        denied = run(
            spawner, "connect", "127.0.0.1", port,
            wassh_args=("--connect-deny", f"127.0.0.1:{port}"),
        )  # fmt: skip
    assert denied.stdout == "child connect: EACCES\nconnect: exited 1\n"
    assert f"denied connect to 127.0.0.1:{port}" in denied.stderr


def test_stopping_the_parent_stops_its_children(spawner: Path) -> None:
    # The child blocks reading the host's stdin (a pipe nobody writes); SIGTERM
    # stops the parent, which must not wait for the child.
    proc = subprocess.Popen(
        [*WASSH, str(spawner), "exec", spawner.name, "child", "block"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert proc.stderr is not None
        assert proc.stderr.readline() == b"child blocking\n"
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 128 + signal.SIGTERM
        assert time.monotonic() - started < 5
        assert b"Traceback" not in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()


def test_embedding_gives_a_program_map(spawner: Path) -> None:
    out = wassh.Capture()
    code = wassh.run_sync(
        spawner,
        ["spawner", "exec", "helper", "child", "args", "embedded"],
        programs={"helper": spawner},
        stdin=b"",
        stdout=out,
    )
    assert code == 0
    assert out.text() == "embedded\nexec: exited 0\n"


def test_a_fork_child_may_not_open_sockets_or_fork_again(spawner: Path) -> None:
    got = run(spawner, "forkmore")
    assert got.returncode == 127
    assert got.stdout == "child socket: -1 ENOSYS\nchild fork: -1 ENOSYS\n"
    name = spawner.name
    assert got.stderr == (
        f"wassh: wassh.children: {name}: the child of fork() opened a socket without exec: "
        "a fork that continues without exec is not supported\n"
        "wassh: fork() in the child of fork() before exec is not supported\n"
        f"wassh: wassh.children: {name}: the child of fork() exited without exec: "
        "a fork that continues without exec is not supported\n"
    )


def test_children_not_waited_for_are_bounded(spawner: Path) -> None:
    got = run(spawner, "many", "70", timeout=120)
    assert got.returncode == 0, got.stderr
    assert got.stdout == "started 64, then EAGAIN\nreaped 64, then ECHILD\n"


def test_cancelling_an_embedded_parent_stops_its_children(spawner: Path) -> None:
    import threading

    import trio

    read_end, write_end = os.pipe()  # the child's stdin: nobody ever writes

    async def main() -> None:
        blocking = trio.Event()
        token = trio.lowlevel.current_trio_token()

        def stderr(chunk: bytes) -> None:
            if b"child blocking" in chunk:
                token.run_sync_soon(blocking.set)

        async with trio.open_nursery() as nursery:

            async def parent() -> None:
                await wassh.run(
                    spawner,
                    [spawner.name, "exec", spawner.name, "child", "block"],
                    stdin=read_end,
                    stdout=wassh.Capture(),
                    stderr=stderr,
                )

            nursery.start_soon(parent)
            with trio.fail_after(30):
                await blocking.wait()
            nursery.cancel_scope.cancel()

    try:
        trio.run(main)
    finally:
        os.close(read_end)
        os.close(write_end)
    alive = [t.name for t in threading.enumerate() if t.name.startswith("wassh-child-")]
    assert alive == []
