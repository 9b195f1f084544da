"""Signals, traps and exit status, as a terminal user sees them.

``wassh run`` is run as a user would (a subprocess in its own session), sent
signals, and its exit status, timing and stderr checked; the terminal tests run
it in a real terminal (tmux) and look at the terminal afterwards.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import wassh
from guestbuild import build_guest
from suitekit import GUESTS, EchoServer, wait_ready
from wassh.signals import STATE, STATE_VERSION, SignalAction, decide

WASSH = str(Path(sys.executable).parent / "wassh")
# A signal must stop the guest "within a second"; this leaves room for a loaded
# 2-core machine (measured: 10-60 ms).
PROMPT = 3.0


@pytest.fixture(scope="session")
def sigguest() -> Path:
    return build_guest(GUESTS / "signals" / "sigguest.c", sdk=True)


@pytest.fixture(scope="session")
def traps() -> Path:
    return build_guest(GUESTS / "signals" / "traps.c", sdk=True)


@pytest.fixture(scope="session")
def plain_spin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A guest built without the SDK: it publishes no signal table (like older guests)."""
    src = tmp_path_factory.mktemp("plain") / "plainspin.c"
    src.write_text(
        "#include <stdio.h>\n"
        "int main(void) { volatile unsigned long n = 0;"
        ' puts("ready"); fflush(stdout); for (;;) n++; }\n'
    )
    return build_guest(src)


class Guest:
    """A command (``wassh run``) in a session of its own, its stdout read until a marker."""

    def __init__(self, argv: list[str], stdin: int | None = subprocess.DEVNULL) -> None:
        self.proc = subprocess.Popen(
            argv,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.out = b""

    def wait_for(self, marker: bytes, timeout: float = 30) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while marker not in self.out:
            left = deadline - time.monotonic()
            if left <= 0 or not wait_ready(fd, select.POLLIN, left):
                raise AssertionError(f"no {marker!r} from the guest; got {self.out!r}")
            chunk = os.read(fd, 4096)
            if not chunk:
                raise AssertionError(f"guest ended before {marker!r}: {self.finish()}")
            self.out += chunk

    def signal_and_time(self, signum: int) -> tuple[int, float, bytes]:
        """Send ``signum``; the exit status, the seconds it took, and stderr."""
        start = time.monotonic()
        self.proc.send_signal(signum)
        # Waited for before communicate(), which closes stdin: a guest blocked
        # reading it would otherwise see the end of input and race the signal.
        self.proc.wait(timeout=30)
        elapsed = time.monotonic() - start
        out, err = self.proc.communicate(timeout=30)
        self.out += out
        return self.proc.returncode, elapsed, err

    def finish(self) -> tuple[int, bytes, bytes]:
        out, err = self.proc.communicate(timeout=30)
        self.out += out
        return self.proc.returncode, self.out, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr, self.proc.stdin):
            if stream is not None:
                stream.close()


@pytest.fixture
def guests() -> Iterator[list[Guest]]:
    started: list[Guest] = []
    try:
        yield started
    finally:
        for g in started:
            g.kill()


def start(
    guests: list[Guest], wasm: Path, *args: str, stdin: int | None = subprocess.DEVNULL
) -> Guest:
    g = Guest([WASSH, "run", str(wasm), "--", *args], stdin)
    guests.append(g)
    g.wait_for(b"ready")
    return g


# -- the default action: a guest that does not catch the signal stops ---------------


@pytest.mark.parametrize(
    ("signum", "status"),
    [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGQUIT, 131)],
)
def test_signal_stops_a_computing_guest(
    guests: list[Guest], sigguest: Path, signum: int, status: int
) -> None:
    g = start(guests, sigguest, "spin")
    time.sleep(0.2)  # well inside the loop, where no host call ever happens
    code, elapsed, err = g.signal_and_time(signum)
    assert code == status, err
    assert elapsed < PROMPT
    assert err == b""


@pytest.mark.parametrize("mode", ["poll", "sleep", "read", "recv", "accept"])
@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_a_blocked_guest(
    guests: list[Guest],
    sigguest: Path,
    echo_server: EchoServer,
    mode: str,
    signum: int,
    status: int,
) -> None:
    args = [mode, str(echo_server.port)] if mode == "recv" else [mode]
    # "read" blocks on a pipe that stays open and empty.
    g = start(guests, sigguest, *args, stdin=subprocess.PIPE)
    time.sleep(0.2)
    code, elapsed, err = g.signal_and_time(signum)
    assert code == status, err
    assert elapsed < PROMPT
    assert err == b""
    assert b"returned" not in g.out  # stopped inside the call, which never came back


def test_a_guest_without_the_sdk_table_gets_the_default_action(
    guests: list[Guest], plain_spin: Path
) -> None:
    g = start(guests, plain_spin)
    code, elapsed, err = g.signal_and_time(signal.SIGINT)
    assert (code, err) == (130, b"")
    assert elapsed < PROMPT


# -- the guest's own handling --------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "signum"),
    [("catch", signal.SIGINT), ("catch", signal.SIGTERM), ("catch-signal", signal.SIGINT)],
)
def test_a_guest_handler_receives_the_signal(
    guests: list[Guest], sigguest: Path, mode: str, signum: int
) -> None:
    g = start(guests, sigguest, mode)
    code, elapsed, err = g.signal_and_time(signum)
    assert code == 10 + signum, err  # the guest's own status, chosen by its handler
    assert f"caught signal {signum}\n".encode() in g.out
    assert elapsed < PROMPT
    assert err == b""


def test_late_signals_leave_the_guest_status_alone(guests: list[Guest], sigguest: Path) -> None:
    g = start(guests, sigguest, "catch")
    g.proc.send_signal(signal.SIGINT)
    g.wait_for(b"caught signal 2\n")  # the guest now returns 12 and the host exits
    while g.proc.poll() is None:  # SIGTERMs all through the host's exit and shutdown
        g.proc.send_signal(signal.SIGTERM)
        time.sleep(0.001)
    code, _out, err = g.finish()
    assert (code, err) == (12, b"")


def test_an_ignored_signal_does_nothing(guests: list[Guest], sigguest: Path) -> None:
    g = start(guests, sigguest, "ignore")
    g.proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert g.proc.poll() is None
    code, _elapsed, err = g.signal_and_time(signal.SIGTERM)
    assert (code, err) == (143, b"")


def test_a_blocked_signal_waits_until_unblocked(guests: list[Guest], sigguest: Path) -> None:
    g = start(guests, sigguest, "block")
    g.proc.send_signal(signal.SIGINT)
    g.wait_for(b"pending")  # still alive: the signal waits in the guest
    code, _out, err = g.finish()
    assert (code, err) == (130, b"")  # unblocked: the default action, from the guest's SDK


def test_a_trap_in_a_signal_handler(guests: list[Guest], sigguest: Path) -> None:
    g = start(guests, sigguest, "handler-trap")
    code, _elapsed, err = g.signal_and_time(signal.SIGINT)
    assert code == 134
    text = err.decode()
    assert "integer divide by zero" in text
    assert "at on_signal_trap" in text
    assert "Traceback" not in text


STUCK_GUEST = """
import threading, time
from wassh.host_signals import SignalForwarder
from wassh.signals import SignalAction

class Terminals:
    def restore(self):
        print("terminals restored", flush=True)

class StuckGuest:
    # The default action applies, but the guest never stops, and no handler raises.
    killed_by = None
    stopped = threading.Event()
    terminals = Terminals()

    def send_signal(self, signum):
        return SignalAction.TERMINATED

with SignalForwarder(StuckGuest(), grace=0.5):
    print("ready", flush=True)
    time.sleep(30)
print("not reached", flush=True)
"""


def test_a_guest_that_cannot_be_stopped_is_left_behind(guests: list[Guest]) -> None:
    g = Guest([sys.executable, "-c", STUCK_GUEST])
    guests.append(g)
    g.wait_for(b"ready")
    code, elapsed, err = g.signal_and_time(signal.SIGTERM)
    assert code == 143
    assert 0.4 < elapsed < 0.5 + PROMPT
    assert g.out == b"ready\nterminals restored\n"
    assert b"did not stop within 0.5 s" in err


# -- traps ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "reason", "function"),
    [
        ("divide", "integer divide by zero", "divide_by_zero"),
        ("memory", "out of bounds memory access", "read_far_away"),
        ("unreachable", "unreachable", "hit_unreachable"),
        ("stack", "call stack exhausted", "recurse_forever"),
        ("abort", "unreachable", "abort"),
    ],
)
def test_a_trap_exits_134_with_a_short_report(
    traps: Path, mode: str, reason: str, function: str
) -> None:
    r = subprocess.run(
        [WASSH, "run", str(traps), "--", mode], capture_output=True, timeout=60, check=False
    )
    assert r.returncode == 134
    assert r.stdout == f"trying {mode}\n".encode()
    text = r.stderr.decode()
    lines = text.splitlines()
    assert lines[0].startswith(f"wassh: {traps.name}: wasm trap: ")
    assert reason in lines[0]
    assert lines[1] == f"    at {function}" or lines[1].startswith(f"    at {function} (x")
    assert len(lines) <= 10
    assert "Traceback" not in text


def test_verbose_adds_offsets(traps: Path) -> None:
    r = subprocess.run(
        [WASSH, "run", "-v", str(traps), "--", "divide"], capture_output=True, timeout=60
    )
    assert r.returncode == 134
    assert re.search(
        r"at divide_by_zero \(function \d+ \+0x[0-9a-f]+, module offset", r.stderr.decode()
    )


def test_the_guest_exit_status_passes_through(traps: Path) -> None:
    r = subprocess.run([WASSH, "run", str(traps), "--", "exit"], capture_output=True, timeout=60)
    assert (r.returncode, r.stderr) == (42, b"")


# -- the embedding API ---------------------------------------------------------------


def test_embedders_get_a_typed_trap(traps: Path) -> None:
    proc = wassh.prepare(traps, ["traps", "divide"], stdout=wassh.Capture())
    with pytest.raises(wassh.GuestTrap) as info:
        proc.run()
    trap = info.value
    assert trap.reason == "integer divide by zero"
    assert trap.exit_status == 134
    assert [f.func_name for f in trap.frames[:3]] == ["divide_by_zero", "run_mode", "main"]
    assert all(isinstance(f, wassh.TrapFrame) for f in trap.frames)


def test_send_signal_from_another_thread(sigguest: Path) -> None:
    out = wassh.Capture()
    proc = wassh.prepare(sigguest, ["sigguest", "spin"], stdout=out)
    actions: list[SignalAction] = []

    def later() -> None:
        while b"ready" not in out.data:
            time.sleep(0.01)
        actions.append(proc.send_signal(2))

    sender = threading.Thread(target=later, daemon=True)
    sender.start()
    assert proc.run() == 130
    sender.join(timeout=60)  # the guest can end before send_signal's answer is stored
    assert actions == [SignalAction.TERMINATED]
    assert proc.killed_by == 2
    assert proc.send_signal(2) is SignalAction.IGNORED  # nothing left to act on


def test_send_signal_to_a_guest_that_catches_it(sigguest: Path) -> None:
    out = wassh.Capture()
    proc = wassh.prepare(sigguest, ["sigguest", "catch"], stdout=out)
    actions: list[SignalAction] = []

    def later() -> None:
        while b"ready" not in out.data:
            time.sleep(0.01)
        actions.append(proc.send_signal(15))

    sender = threading.Thread(target=later, daemon=True)
    sender.start()
    assert proc.run() == 25
    sender.join(timeout=60)  # the guest can end before send_signal's answer is stored
    assert actions == [SignalAction.QUEUED]
    assert b"caught signal 15" in out.data


def test_cancel_still_raises_guest_cancelled(sigguest: Path) -> None:
    out = wassh.Capture()
    proc = wassh.prepare(sigguest, ["sigguest", "spin"], stdout=out)

    def later() -> None:
        while b"ready" not in out.data:
            time.sleep(0.01)
        proc.cancel()

    threading.Thread(target=later, daemon=True).start()
    with pytest.raises(wassh.GuestCancelled) as info:
        proc.run()
    assert not isinstance(info.value, wassh.GuestKilled)


def test_decide() -> None:
    def state(caught: int = 0, ignored: int = 0, blocked: int = 0) -> bytes:
        return STATE.pack(STATE_VERSION, STATE.size, caught, ignored, blocked, 0, 0)

    bit = 1 << (2 - 1)
    assert decide(2, None) is SignalAction.TERMINATED
    assert decide(2, state()) is SignalAction.TERMINATED
    assert decide(2, state(caught=bit)) is SignalAction.QUEUED
    assert decide(2, state(ignored=bit)) is SignalAction.IGNORED
    assert decide(2, state(ignored=bit, blocked=bit)) is SignalAction.QUEUED
    assert decide(28, None) is SignalAction.QUEUED  # SIGWINCH: ignored by default
    assert decide(9, state(caught=1 << 8)) is SignalAction.TERMINATED


# -- a real terminal -----------------------------------------------------------------


class Tmux:
    """A tmux server of our own (private socket), one 80x24 pane running bash."""

    def __init__(self) -> None:
        self.socket = f"wassh-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.tmux("new-session", "-d", "-s", "t", "-x", "80", "-y", "24",
                  "env PS1='$ ' bash --norc --noprofile -i")  # fmt: skip

    def tmux(self, *args: str) -> str:
        r = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        )
        return r.stdout

    def send(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "t", *keys)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-J", "-t", "t")

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            found = re.search(pattern, text)
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} in the pane:\n{text}")
            time.sleep(0.05)

    def run_wassh(self, wasm: Path, mode: str) -> int:
        """Start ``wassh run`` in the foreground of the pane; returns its pid."""
        tag = uuid.uuid4().hex[:8]
        self.send("clear", "Enter")
        self.send(
            f"sh -c 'echo pid=$$ {tag}; exec {WASSH} run {wasm} -- {mode}'; echo rc=$?", "Enter"
        )
        return int(self.wait_for(rf"pid=(\d+) {tag}").group(1))

    def stty_flags(self) -> set[str]:
        """The pane's terminal settings, as ``stty -a`` in the pane's shell shows them."""
        tag = uuid.uuid4().hex[:8]
        self.send("clear", "Enter")
        self.send(f"stty -a; echo stty-done-{tag}", "Enter")
        text = self.wait_for(rf"\nstty-done-{tag}").string
        return set(text.split("stty -a;")[-1].split())

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=20)


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    term = Tmux()
    try:
        yield term
    finally:
        term.close()


def _gone(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_sigterm_restores_a_raw_terminal(tmux: Tmux, sigguest: Path) -> None:
    before = tmux.stty_flags()
    assert {"icanon", "echo", "isig"} <= before
    pid = tmux.run_wassh(sigguest, "raw-spin")
    try:
        tmux.wait_for(r"\nraw")
        with open(f"/proc/{pid}/fd/0") as tty:  # the pane's terminal, as the guest left it
            raw = subprocess.run(["stty", "-a"], stdin=tty, capture_output=True, text=True)
        assert "-icanon" in raw.stdout.split()
        os.kill(pid, signal.SIGTERM)
        tmux.wait_for(r"\nrc=143")
    finally:
        _gone(pid)
    after = tmux.stty_flags()
    assert {"icanon", "echo", "isig"} <= after
    assert not {"-icanon", "-echo", "-isig"} & after


def test_ctrl_c_in_a_terminal_stops_a_computing_guest(tmux: Tmux, sigguest: Path) -> None:
    pid = tmux.run_wassh(sigguest, "spin")
    try:
        tmux.wait_for(r"\nready")
        tmux.send("C-c")
        tmux.wait_for(r"\n(\^C)?rc=130", timeout=PROMPT + 5)  # the tty echoes ^C
    finally:
        _gone(pid)
    assert "Traceback" not in tmux.screen()


def test_ctrl_c_in_raw_mode_is_a_byte_for_the_guest(tmux: Tmux, sigguest: Path) -> None:
    pid = tmux.run_wassh(sigguest, "raw-read")
    try:
        tmux.wait_for(r"\nraw")
        tmux.send("x")
        tmux.wait_for(r"byte 78")
        tmux.send("C-c")
        tmux.wait_for(r"byte 03")
        tmux.wait_for(r"\nrc=7")  # its own status: the guest chose to exit on 0x03
    finally:
        _gone(pid)
    after = tmux.stty_flags()
    assert {"icanon", "echo", "isig"} <= after
