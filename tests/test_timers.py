"""alarm, interval timers, SIGALRM and EINTR, as Linux gives them.

Every mode of ``guests/posix/timers.c`` also runs built natively with gcc, and
both runs must print the same lines and end with the same status (a death by
SIGALRM is 142, as a shell shows it). Each test runs with the compiled fast
path and in pure Python (``WASSH_PURE_PYTHON=1``): a blocked call is served by
C in one and by Python in the other. Peers are real sockets on loopback.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from guestbuild import build_guest
from nativebuild import build_native
from suitekit import GUESTS, EchoServer, LoopbackServer, stop_listening, wait_ready

WASSH = str(Path(sys.executable).parent / "wassh")
SOURCE = GUESTS / "posix" / "timers.c"


@pytest.fixture(scope="session")
def programs() -> tuple[Path, Path]:
    """(guest, native) builds of the same source."""
    return build_guest(SOURCE, sdk=True), build_native(SOURCE)


@pytest.fixture(params=["fast", "pure"])
def engine(request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment of a ``wassh run``: compiled fast path or pure Python."""
    env = dict(os.environ)
    env.pop("WASSH_PURE_PYTHON", None)
    if request.param == "pure":
        env["WASSH_PURE_PYTHON"] = "1"
    return env


@dataclass
class Outcome:
    status: int  # as a shell shows it: 128 + signal for a death by signal
    out: str
    err: str


def _status(code: int) -> int:
    return 128 - code if code < 0 else code


def run(argv: list[str], env: dict[str, str] | None = None, timeout: float = 60) -> Outcome:
    done = subprocess.run(
        argv, capture_output=True, text=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL
    )
    return Outcome(_status(done.returncode), done.stdout, done.stderr)


def both(programs: tuple[Path, Path], env: dict[str, str], *args: str) -> tuple[Outcome, Outcome]:
    """(native, guest) runs of one mode."""
    wasm, native = programs
    return run([str(native), *args]), run([WASSH, "run", str(wasm), *args], env)


def same(programs: tuple[Path, Path], env: dict[str, str], *args: str) -> str:
    """Runs a mode both ways; they must agree (status 0). Returns the output."""
    native, guest = both(programs, env, *args)
    assert native.status == 0, native
    assert (guest.status, guest.out, guest.err) == (0, native.out, ""), guest
    return guest.out


# -- the timer itself ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("sleep", "sleep_left_ok=1 handled=1\n"),
        ("nanosleep", "rc=-1 errno=EINTR handled=1 rem_ok=1\n"),
        ("ignore", "rc=0\n"),
        (
            "cancel",
            "alarm=0,5,0 ualarm=0 ualarm_left_ok=1 ualarm_second=-1/EINVAL\n",
        ),
        ("periodic", "ticks=10 interval=50000 value_ok=1 elapsed_ok=1\n"),
        ("getitimer", "value_ok=1 old_ok=1 after=0.000000 bad_usec=-1/EINVAL\n"),
        ("select", "select=-1 errno=EINTR handled=1 left_ok=1\n"),
        ("poll", "poll=-1 errno=EINTR handled=1\n"),
        ("sigsuspend", "sigsuspend=-1 errno=EINTR handled=1 blocked=1\n"),
        ("busy", "handled=1 after_calls=1\n"),
    ],
)
def test_timer_and_interrupted_waits_match_linux(
    programs: tuple[Path, Path], engine: dict[str, str], mode: str, expected: str
) -> None:
    """alarm interrupting sleep (seconds left, glibc's rounding), nanosleep's time
    left, SIG_IGN, alarm(0) and ualarm returning what was left, ten periodic
    setitimer ticks and getitimer while armed, select (time left written back),
    poll and sigsuspend ending with EINTR after the handler ran, and a handler
    run while the program only makes calls that never block."""
    assert same(programs, engine, mode) == expected


@pytest.mark.parametrize("mode", ["default", "default-spin"])
def test_sigalrm_default_action_ends_the_program_with_142(
    programs: tuple[Path, Path], engine: dict[str, str], mode: str
) -> None:
    """Blocked in pause() or computing without any host call: the same death."""
    native, guest = both(programs, engine, mode)
    assert native.status == 142, native
    assert (guest.status, guest.out, guest.err) == (142, "", ""), guest


def test_cpu_time_timers_are_refused(programs: tuple[Path, Path], engine: dict[str, str]) -> None:
    """ITIMER_VIRTUAL counts CPU time, which the host does not account per guest:
    EINVAL rather than a timer that never fires (Linux arms it)."""
    wasm, _native = programs
    guest = run([WASSH, "run", str(wasm), "virtual"], engine)
    assert (guest.status, guest.out) == (0, "virtual=-1/EINVAL\n"), guest


# -- blocked calls ---------------------------------------------------------------------


class AnsweringServer(LoopbackServer):
    """Answers "hello" on each connection once the client's handler sent a byte."""

    def handle(self, conn: socket.socket) -> None:
        with conn:
            if conn.recv(1) == b"x":
                conn.sendall(b"hello")
            while conn.recv(4096):
                pass


@pytest.fixture
def answering() -> Iterator[AnsweringServer]:
    server = AnsweringServer()
    yield server
    server.close()


class DrainServer:
    """Takes connections in pairs (data, control) and reads the data connection only
    once a byte arrives on the control one: until then the client's sends block."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self._acceptor = threading.Thread(target=self._serve, daemon=True)
        self._acceptor.start()

    def _serve(self) -> None:
        while True:
            try:
                data, _ = self.sock.accept()
                control, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._drain, args=(data, control), daemon=True).start()

    @staticmethod
    def _drain(data: socket.socket, control: socket.socket) -> None:
        with data, control:
            if control.recv(1) == b"x":
                while data.recv(1 << 16):
                    pass

    def close(self) -> None:
        stop_listening(self.sock, self._acceptor)


@pytest.fixture
def drain_server() -> Iterator[DrainServer]:
    server = DrainServer()
    yield server
    server.close()


class FullListener:
    """A listener whose queue is full: a connect to it waits (no SYN-ACK comes)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = int(self.sock.getsockname()[1])
        self.fillers: list[socket.socket] = []
        # Linux queues backlog + 1 connections; fill until one stays unanswered.
        while True:
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setblocking(False)
            self.fillers.append(c)
            try:
                c.connect(("127.0.0.1", self.port))
            except BlockingIOError:
                pass
            if not wait_ready(c, select.POLLOUT, 0.5):
                break  # this one waits: so will the program's

    def close(self) -> None:
        for c in self.fillers:
            c.close()
        self.sock.close()


@pytest.fixture
def full_listener() -> Iterator[FullListener]:
    listener = FullListener()
    yield listener
    listener.close()


@pytest.mark.parametrize("call", ["read", "recv"])
@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("restart", "{call}=hello handled=1\n"),
        ("eintr", "{call}=-1 errno=EINTR handled=1\nagain=hello\n"),
    ],
)
def test_a_blocked_socket_read_restarts_or_fails_with_eintr(
    programs: tuple[Path, Path],
    engine: dict[str, str],
    answering: AnsweringServer,
    call: str,
    flags: str,
    expected: str,
) -> None:
    """read()/recv() blocked on a socket: the timer's handler runs (and tells the
    peer, which answers only then); under SA_RESTART the call goes on and gets the
    answer, without it it fails with EINTR and the next call gets it."""
    out = same(programs, engine, "answer", call, flags, str(answering.port))
    assert out == expected.format(call=call)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("accept", "restart"), "accept=connection handled=1\n"),
        (("accept", "eintr"), "accept=-1 errno=EINTR handled=1\nagain=connection\n"),
        (("pipe-write", "restart"), "write=1 handled=1\n"),
        (("pipe-write", "eintr"), "write=-1 errno=EINTR handled=1\n"),
    ],
)
def test_a_blocked_accept_or_pipe_write_restarts_or_fails_with_eintr(
    programs: tuple[Path, Path], engine: dict[str, str], args: tuple[str, str], expected: str
) -> None:
    """accept() with nobody dialling and write() to a full pipe: the handler makes
    the call able to finish (it dials the listener, or reads from the pipe); under
    SA_RESTART the call then finishes, without it it fails with EINTR."""
    assert same(programs, engine, *args) == expected


@pytest.mark.parametrize(
    ("flags", "expected"),
    [("restart", "send=1 handled=1\n"), ("eintr", "send=-1 errno=EINTR handled=1\n")],
)
def test_a_blocked_send_restarts_or_fails_with_eintr(
    programs: tuple[Path, Path],
    engine: dict[str, str],
    drain_server: DrainServer,
    flags: str,
    expected: str,
) -> None:
    """send() on a connection whose buffers are full: the handler tells the peer
    (on a second connection) to read; under SA_RESTART the send then completes."""
    assert same(programs, engine, "send", flags, str(drain_server.port)) == expected


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("restart", "handled\nread=data\n handled=1\n"),
        ("eintr", "handled\nread=-1 errno=EINTR handled=1\n"),
    ],
)
def test_a_blocked_stdin_read_restarts_or_fails_with_eintr(
    programs: tuple[Path, Path], engine: dict[str, str], flags: str, expected: str
) -> None:
    """read(0) on a pipe: the data is written only once the handler has run."""
    wasm, native = programs
    outs = []
    for argv, env in (
        ([str(native)], None),
        ([WASSH, "run", str(wasm)], engine),
    ):
        proc = subprocess.Popen(
            [*argv, "stdin", flags],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            bufsize=0,  # the first line only: the rest stays for communicate()
        )
        assert proc.stdout is not None and proc.stdin is not None
        line = proc.stdout.readline()
        if flags == "restart":
            proc.stdin.write(b"data\n")
            proc.stdin.flush()
        out, err = proc.communicate(timeout=60)
        outs.append((proc.returncode, (line + out).decode(), err.decode()))
    assert outs[0][0] == 0, outs[0]
    assert outs[1] == (0, outs[0][1], ""), outs
    assert outs[1][1] == expected


def test_a_blocked_connect_fails_with_eintr(
    programs: tuple[Path, Path], engine: dict[str, str], full_listener: FullListener
) -> None:
    """alarm(1) then connect() to a peer that never answers (netcat's timeout): EINTR
    after the handler ran, about a second later; the connection attempt goes on
    (a second, non-blocking connect is EALREADY)."""
    out = same(programs, engine, "connect", str(full_listener.port))
    assert out == "connect=-1 errno=EINTR handled=1 elapsed_ok=1 again=-1/EALREADY\n"


@pytest.mark.parametrize("call", ["poll", "select", "read", "recv", "sleep", "connect"])
def test_siglongjmp_out_of_a_handler_that_interrupted_a_blocked_call(
    programs: tuple[Path, Path],
    engine: dict[str, str],
    echo_server: EchoServer,
    full_listener: FullListener,
    call: str,
) -> None:
    """The handler jumps out of the interrupted call, twice (siglongjmp puts the
    mask back each time: SIGALRM is not left blocked), and the program then uses
    its socket (or a new one, after connect) as if nothing had happened."""
    out = same(programs, engine, "jump", call, str(full_listener.port), str(echo_server.port))
    assert out == "jumps=2 blocked=0 echo=ping\n"


def test_the_timer_fires_on_time(programs: tuple[Path, Path], engine: dict[str, str]) -> None:
    """The default action of alarm(1) takes about a second, not more."""
    wasm, _native = programs
    start = time.monotonic()
    guest = run([WASSH, "run", str(wasm), "default"], engine)
    elapsed = time.monotonic() - start
    assert guest.status == 142, guest
    assert 1.0 <= elapsed < 5.0, elapsed


def test_handlers_of_every_shape_run(engine: dict[str, str]) -> None:
    """A K&R ``void h()`` handler (no parameters: called with the signal number,
    wasm's typed indirect call would trap), ``void h(int)`` and SA_SIGINFO's: each
    runs, as natively."""
    source = GUESTS / "posix" / "knrhandler.c"
    wasm, native = build_guest(source, sdk=True), build_native(source)
    expected = run([str(native)])
    assert expected.status == 0 and "K&R handler ran: 1\n" in expected.out
    got = run([WASSH, "run", str(wasm)], env=engine)
    assert (got.status, got.out) == (expected.status, expected.out), got.err
