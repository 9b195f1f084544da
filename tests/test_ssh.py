"""The showcase: OpenSSH's ssh and dropbear's dbclient, built from Debian's source by
``guests/debbuild.py``, talk to Debian's real sshd through wassh's transports.

Select them with ``-m ssh``. The first run builds the clients (a few minutes on
two cores); later runs reuse the cached .wasm files.
"""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from relayhelpers import FaultProxy, RelayProcess, WebsockifyProcess
from sshkit import (
    Client,
    Sshd,
    build_recipe,
    copy_key,
    free_port,
    keygen,
    need,
    ssh_options,
)
from suitekit import EchoServer

pytestmark = pytest.mark.ssh


@pytest.fixture(scope="session")
def ssh_wasm() -> Path:
    return build_recipe("openssh")["ssh"]


@pytest.fixture(scope="session")
def dropbear_wasm() -> dict[str, Path]:
    return build_recipe("dropbear")


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    server = Sshd(tmp_path / "sshd").start()
    yield server
    server.stop()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """The guest's home: preopened, holds its key and known_hosts."""
    h = tmp_path / "home"
    h.mkdir()
    return h


@pytest.fixture
def ssh(ssh_wasm: Path, home: Path, sshd: Sshd) -> Client:
    return Client(ssh_wasm, home, sshd)


def ssh_args(home: Path, sshd: Sshd, *rest: str) -> list[str]:
    key = copy_key(sshd.user_key, home)
    return [*ssh_options(home, sshd, key), f"{sshd.user}@localhost", *rest]


def out(r: subprocess.CompletedProcess[bytes]) -> str:
    return f"rc={r.returncode}\nstdout={r.stdout[-2000:]!r}\nstderr={r.stderr[-4000:]!r}"


# -- plain TCP --------------------------------------------------------------------------


def test_version_starts(ssh: Client) -> None:
    r = ssh.run("-V")
    assert r.returncode == 0, out(r)
    assert r.stderr.startswith(b"OpenSSH_9"), out(r)


def test_exec_prints_and_exits_with_the_remote_status(ssh: Client, home: Path, sshd: Sshd) -> None:
    r = ssh.run(*ssh_args(home, sshd, "echo hello; exit 3"))
    assert r.stdout == b"hello\n", out(r)
    assert r.returncode == 3, out(r)


def test_known_hosts_is_written_and_a_changed_host_key_is_refused(
    ssh: Client, home: Path, sshd: Sshd
) -> None:
    args = ssh_args(home, sshd, "echo first")
    r = ssh.run(*args)
    assert r.returncode == 0 and r.stdout == b"first\n", out(r)
    known = (home / "known_hosts").read_text()
    host_pub = (sshd.dir / "host_key.pub").read_text().split()[1]
    assert f"[localhost]:{sshd.port}" in known and host_pub in known

    r = ssh.run(*ssh_args(home, sshd, "echo second"))
    assert r.returncode == 0 and r.stdout == b"second\n", out(r)

    # The same server comes back on the same port with another host key.
    sshd.stop()
    for name in ("host_key", "host_key.pub"):
        (sshd.dir / name).unlink()
    sshd.host_key = keygen(sshd.dir / "host_key", "another-host-key")
    sshd.start_on(sshd.port)
    r = ssh.run(*ssh_args(home, sshd, "echo should-not-run"))
    assert r.returncode == 255, out(r)
    assert b"should-not-run" not in r.stdout
    assert b"REMOTE HOST IDENTIFICATION HAS CHANGED" in r.stderr, out(r)
    assert (home / "known_hosts").read_text() == known  # not rewritten


def test_64_mib_stream_is_byte_exact(ssh: Client, home: Path, sshd: Sshd) -> None:
    blob = sshd.dir / "blob"
    data = os.urandom(1 << 20) * 64
    blob.write_bytes(data)
    start = time.monotonic()
    r = ssh.run(*ssh_args(home, sshd, f"cat {blob}"), timeout=300)
    took = time.monotonic() - start
    assert r.returncode == 0, out(r)
    assert hashlib.sha256(r.stdout).hexdigest() == hashlib.sha256(data).hexdigest()
    print(f"\nssh.wasm over TCP: 64 MiB in {took:.1f} s = {64 / took:.1f} MiB/s")


def test_stdin_reaches_the_remote_command(ssh: Client, home: Path, sshd: Sshd) -> None:
    r = ssh.run(*ssh_args(home, sshd, "wc -c; exit 0"), input=b"x" * 100_000)
    assert r.returncode == 0, out(r)
    assert r.stdout.strip() == b"100000"


def test_refused_port_exits_255(ssh: Client, home: Path, sshd: Sshd) -> None:
    sshd.stop()
    r = ssh.run(*ssh_args(home, sshd, "true"))
    assert r.returncode == 255, out(r)
    assert b"Connection refused" in r.stderr, out(r)


# -- relays -------------------------------------------------------------------------------


def test_exec_through_real_websockify(ssh: Client, home: Path, sshd: Sshd) -> None:
    ws = WebsockifyProcess(sshd.port)
    try:
        r = ssh.run(
            *ssh_args(home, sshd, "echo hello; exit 3"),
            wassh=["--relay", f"ws://127.0.0.1:{ws.port}", "--relay-protocol", "websockify"],
        )
    finally:
        ws.close()
    assert r.stdout == b"hello\n", out(r)
    assert r.returncode == 3, out(r)


def test_exec_through_wassh_relay_v4(ssh: Client, home: Path, sshd: Sshd) -> None:
    relay = RelayProcess("--allow", f"localhost:{sshd.port}", "--allow", f"*:{sshd.port}")
    try:
        r = ssh.run(
            *ssh_args(home, sshd, "echo hello; exit 3"),
            wassh=["--relay", f"ws://127.0.0.1:{relay.port}/", "--relay-protocol", "corp-relay-v4"],
        )
    finally:
        relay.close()
    assert r.stdout == b"hello\n", out(r)
    assert r.returncode == 3, out(r)


async def test_relay_websocket_cut_twice_during_64_mib(ssh: Client, home: Path, sshd: Sshd) -> None:
    blob = sshd.dir / "blob"
    data = os.urandom(1 << 20) * 64
    blob.write_bytes(data)
    relay = RelayProcess("--allow", f"*:{sshd.port}")
    proxy = FaultProxy(relay.port, every=(64 << 20) // 3, cuts=2)
    try:
        async with trio.open_nursery() as nursery:
            port = await proxy.start(nursery)
            cmd = ssh.command(
                *ssh_args(home, sshd, f"cat {blob}"),
                wassh=["--relay", f"ws://127.0.0.1:{port}/", "--relay-protocol", "corp-relay-v4"],
            )
            with trio.fail_after(300):
                r = await trio.run_process(
                    cmd, capture_stdout=True, capture_stderr=True, check=False
                )
            nursery.cancel_scope.cancel()
    finally:
        relay.close()
    assert r.returncode == 0, out(r)
    assert len(proxy.cut_at) == 2, proxy.cut_at
    # two reconnects after the cuts (plus a refused first try when "localhost" means ::1)
    assert proxy.connections >= 3
    assert hashlib.sha256(r.stdout).hexdigest() == hashlib.sha256(data).hexdigest()


# -- the terminal (tmux) ---------------------------------------------------------------------


class Tmux:
    """A detached tmux session of a given size running one command."""

    def __init__(self, name: str, command: list[str], cols: int = 80, rows: int = 24) -> None:
        self.tmux = need("tmux")
        self.name = name
        self.socket = f"wassh-test-{os.getpid()}-{name}"
        shell_cmd = " ".join(_quote(c) for c in command)
        self._run(
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            str(cols),
            "-y",
            str(rows),
            "sh",
            "-c",
            f'stty sane; {shell_cmd}; echo "[exit $?]"; stty -a; sleep 600',
        )

    def _run(self, *args: str) -> str:
        r = subprocess.run(
            [self.tmux, "-L", self.socket, *args], capture_output=True, text=True, check=False
        )
        if r.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {r.stderr}")
        return r.stdout

    def send(self, *keys: str) -> None:
        self._run("send-keys", "-t", self.name, *keys)

    def screen(self) -> str:
        return self._run("capture-pane", "-p", "-J", "-t", self.name, "-S", "-200")

    def wait_for(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared on the screen:\n{self.screen()}")

    def resize(self, cols: int, rows: int) -> None:
        self._run("resize-window", "-t", self.name, "-x", str(cols), "-y", str(rows))

    def close(self) -> None:
        subprocess.run(
            [self.tmux, "-L", self.socket, "kill-server"], capture_output=True, check=False
        )


def _quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def test_interactive_pty_session_resize_and_clean_exit(ssh: Client, home: Path, sshd: Sshd) -> None:
    args = [*ssh_args(home, sshd), "-tt"]
    term = Tmux("pty", ssh.command(*args), cols=80, rows=24)
    try:
        term.send("stty size; echo MARK-$((6*7))", "Enter")
        term.wait_for("24 80")
        term.wait_for("MARK-42")
        term.resize(100, 30)  # the guest gets SIGWINCH and sends window-change
        time.sleep(0.5)
        term.send("clear; stty size; echo MARK-$((6*8))", "Enter")
        term.wait_for("MARK-48")
        term.wait_for("30 100")
        term.send("exit 7", "Enter")
        screen = term.wait_for("[exit 7]")
        # the host terminal is back in cooked mode with echo: wassh restored it
        settings = screen.split("[exit 7]", 1)[1]
        assert " icanon " in f" {settings} " and " echo " in f" {settings} ", screen
    finally:
        term.close()


@pytest.fixture
def password_user() -> Iterator[tuple[str, str]]:
    """A throwaway local user with a known password (needs root: CI runs as root)."""
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("password tests need root to create a user", pytrace=False)
        pytest.skip("password tests create a local user: run as root")
    name, password = "wasshpw", "correct horse 42"
    if subprocess.run(["id", name], capture_output=True, check=False).returncode != 0:
        subprocess.run(["useradd", "-M", "-d", "/tmp", "-s", "/bin/sh", name], check=True)
    subprocess.run(["chpasswd"], input=f"{name}:{password}".encode(), check=True)
    yield name, password


def test_password_login_through_a_prompt_on_the_terminal(
    ssh_wasm: Path, home: Path, tmp_path: Path, password_user: tuple[str, str]
) -> None:
    name, password = password_user
    server = Sshd(
        tmp_path / "sshd-pw",
        options={"PasswordAuthentication": "yes", "PubkeyAuthentication": "no"},
    ).start()
    try:
        client = Client(ssh_wasm, home, server)
        args = [
            *ssh_options(home, server, batch=False),
            "-o",
            "PreferredAuthentications=password",
            f"{name}@localhost",
            "echo logged-in-as-$(id -un)",
        ]
        term = Tmux("pw", client.command(*args))
        try:
            term.wait_for("password:")
            term.send(password, "Enter")
            screen = term.wait_for("[exit 0]")
            assert f"logged-in-as-{name}" in screen
            assert password not in screen  # no echo
        finally:
            term.close()
    finally:
        server.stop()


# -- dropbear dbclient --------------------------------------------------------------------------


@pytest.fixture
def dbclient(dropbear_wasm: dict[str, Path], home: Path, sshd: Sshd) -> Client:
    return Client(dropbear_wasm["dbclient"], home, sshd)


def _dropbear_key(dropbear_wasm: dict[str, Path], home: Path, sshd: Sshd) -> Path:
    src = copy_key(sshd.user_key, home)
    dest = home / "id_dropbear"
    conv = Client(dropbear_wasm["dropbearconvert"], home, sshd)
    r = conv.run("openssh", "dropbear", str(src), str(dest))
    assert r.returncode == 0, out(r)
    return dest


def test_dbclient_exec_exit_status(
    dbclient: Client, dropbear_wasm: dict[str, Path], home: Path, sshd: Sshd
) -> None:
    key = _dropbear_key(dropbear_wasm, home, sshd)
    args = ["-y", "-i", str(key), "-p", str(sshd.port), f"{sshd.user}@localhost"]
    r = dbclient.run(*args, "echo hello; exit 3")
    assert r.stdout == b"hello\n", out(r)
    assert r.returncode == 3, out(r)


def test_dbclient_asks_on_the_terminal_then_knows_the_host(
    dbclient: Client, dropbear_wasm: dict[str, Path], home: Path, sshd: Sshd
) -> None:
    key = _dropbear_key(dropbear_wasm, home, sshd)
    args = ["-i", str(key), "-p", str(sshd.port), f"{sshd.user}@localhost"]
    term = Tmux("dbkh", dbclient.command(*args, "echo first"))
    try:
        term.wait_for("(y/n)")
        term.send("y", "Enter")
        term.wait_for("[exit 0]")
    finally:
        term.close()
    known = (home / ".ssh" / "known_hosts").read_text()
    assert (sshd.dir / "host_key.pub").read_text().split()[1] in known
    r = dbclient.run(*args, "echo again")  # no tty needed now: the host is known
    assert r.returncode == 0 and r.stdout == b"again\n", out(r)

    sshd.stop()
    for name in ("host_key", "host_key.pub"):
        (sshd.dir / name).unlink()
    sshd.host_key = keygen(sshd.dir / "host_key", "another-host-key")
    sshd.start_on(sshd.port)
    r = dbclient.run(*args, "echo should-not-run")
    assert r.returncode != 0, out(r)
    assert b"should-not-run" not in r.stdout
    assert b"mismatch" in r.stderr.lower(), out(r)


def test_dbclient_64_mib_stream_is_byte_exact(
    dbclient: Client, dropbear_wasm: dict[str, Path], home: Path, sshd: Sshd
) -> None:
    key = _dropbear_key(dropbear_wasm, home, sshd)
    blob = sshd.dir / "blob"
    data = os.urandom(1 << 20) * 64
    blob.write_bytes(data)
    r = dbclient.run(
        "-y",
        "-i",
        str(key),
        "-p",
        str(sshd.port),
        f"{sshd.user}@localhost",
        f"cat {blob}",
        timeout=300,
    )
    assert r.returncode == 0, out(r)
    assert hashlib.sha256(r.stdout).hexdigest() == hashlib.sha256(data).hexdigest()


def test_dbclient_password_login_on_the_terminal(
    dropbear_wasm: dict[str, Path], home: Path, tmp_path: Path, password_user: tuple[str, str]
) -> None:
    name, password = password_user
    server = Sshd(
        tmp_path / "sshd-pw",
        options={"PasswordAuthentication": "yes", "PubkeyAuthentication": "no"},
    ).start()
    try:
        client = Client(dropbear_wasm["dbclient"], home, server)
        cmd = client.command(
            "-y", "-p", str(server.port), f"{name}@localhost", "echo logged-in-as-$(id -un)"
        )
        term = Tmux("dbpw", cmd)
        try:
            term.wait_for("password:")
            term.send(password, "Enter")
            screen = term.wait_for("[exit 0]")
            assert f"logged-in-as-{name}" in screen
        finally:
            term.close()
    finally:
        server.stop()


# -- forwarding (transport_listen) and agent forwarding (AF_UNIX mapping) -------------------


class Background:
    """ssh.wasm running in the background (-N) until the test ends."""

    def __init__(self, cmd: list[str]) -> None:
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )

    def wait_port(self, port: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"ssh.wasm exited: {self.proc.communicate()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"nothing listens on {port}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _echo_roundtrip(port: int, total: int, chunk: int = 1 << 16) -> str:
    """Send ``total`` random bytes through an echo path; returns 'ok' or what went wrong."""
    data = os.urandom(total)
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:

        def send() -> None:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send)
        sender.start()
        got = hashlib.sha256()
        n = 0
        while True:
            block = s.recv(chunk)
            if not block:
                break
            got.update(block)
            n += len(block)
        sender.join()
    if n != total:
        return f"got {n} of {total} bytes"
    return "ok" if got.digest() == hashlib.sha256(data).digest() else "bytes differ"


def _parallel_roundtrips(port: int, connections: int, each: int) -> list[str]:
    results: list[str] = [""] * connections

    def one(i: int) -> None:
        try:
            results[i] = _echo_roundtrip(port, each)
        except OSError as exc:
            results[i] = repr(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return results


def test_local_forwarding_64_mib_over_several_connections(
    ssh: Client, home: Path, sshd: Sshd, echo_server: EchoServer
) -> None:
    port = free_port()
    fwd = f"127.0.0.1:{port}:127.0.0.1:{echo_server.port}"
    bg = Background(
        ssh.command(*ssh_args(home, sshd), "-N", "-o", "ExitOnForwardFailure=yes", "-L", fwd)
    )
    try:
        bg.wait_port(port)
        start = time.monotonic()
        results = _parallel_roundtrips(port, connections=4, each=16 << 20)
        took = time.monotonic() - start
    finally:
        bg.stop()
    assert results == ["ok"] * 4, (results, bg.proc.communicate()[1][-2000:])
    assert sum(r.received for r in echo_server.records) == 64 << 20
    print(f"\n-L: 4 x 16 MiB echoed in {took:.1f} s")


def test_dynamic_forwarding_serves_a_socks_client(
    ssh: Client, home: Path, sshd: Sshd, echo_server: EchoServer
) -> None:
    port = free_port()
    bg = Background(
        ssh.command(
            *ssh_args(home, sshd), "-N", "-o", "ExitOnForwardFailure=yes", "-D", f"127.0.0.1:{port}"
        )
    )
    try:
        bg.wait_port(port)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"\x05\x01\x00")  # SOCKS5, no authentication
            assert s.recv(2) == b"\x05\x00"
            s.sendall(
                b"\x05\x01\x00\x01"
                + socket.inet_aton("127.0.0.1")
                + struct.pack(">H", echo_server.port)
            )
            reply = s.recv(10)
            assert reply[:2] == b"\x05\x00", reply
            s.sendall(b"through socks")
            assert s.recv(100) == b"through socks"
    finally:
        bg.stop()


def test_remote_forwarding(ssh: Client, home: Path, sshd: Sshd, echo_server: EchoServer) -> None:
    port = free_port()
    fwd = f"127.0.0.1:{port}:127.0.0.1:{echo_server.port}"
    bg = Background(
        ssh.command(*ssh_args(home, sshd), "-N", "-o", "ExitOnForwardFailure=yes", "-R", fwd)
    )
    try:
        bg.wait_port(port)  # sshd listens; each connection comes back through ssh.wasm
        results = _parallel_roundtrips(port, connections=2, each=1 << 20)
    finally:
        bg.stop()
    assert results == ["ok", "ok"], results


def test_agent_forwarding_with_a_host_agent_and_no_key_in_the_sandbox(
    ssh_wasm: Path, home: Path, sshd: Sshd, tmp_path: Path
) -> None:
    agent_sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(
        [need("ssh-agent"), "-D", "-a", str(agent_sock)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not agent_sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        env = dict(os.environ, SSH_AUTH_SOCK=str(agent_sock))
        subprocess.run(
            [need("ssh-add"), str(sshd.user_key)], env=env, check=True, capture_output=True
        )
        guest_sock = "/agent/ssh-agent.sock"
        client = Client(
            ssh_wasm,
            home,
            sshd,
            wassh_options=[
                "--unix",
                f"{guest_sock}={agent_sock}",
                "--env",
                f"SSH_AUTH_SOCK={guest_sock}",
            ],
        )
        assert not list(home.iterdir())  # no key file anywhere the guest can see
        r = client.run(
            *ssh_options(home, sshd), "-A", f"{sshd.user}@localhost", "ssh-add -l; echo agent-ok"
        )
    finally:
        agent.terminate()
        agent.wait(5)
    assert r.returncode == 0, out(r)
    lines = r.stdout.decode().splitlines()
    assert lines[-1] == "agent-ok", out(r)
    assert "wassh-test (ED25519)" in lines[0], out(r)  # the remote sees the forwarded agent
