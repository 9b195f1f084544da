"""Real proxies for the tests, and a scripted hostile one.

``Danted`` and ``Tinyproxy`` start Debian's dante-server and tinyproxy on a
free loopback port with a generated configuration, as unprivileged as they
allow (as root, both drop to ``nobody`` once listening). danted dials from
127.0.0.1/::1 only and refuses any other destination by rule; tinyproxy has no
destination rules, and the tests ask it for loopback destinations only (and
224.0.0.1, which Linux refuses without sending a packet).
Nothing is skipped when they are missing: the tests fail and say what to
install (``scripts/system-deps.sh``).

``FakeProxy`` is a tiny Python server that plays a script against each
client: what a broken or hostile proxy would send.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import pytest
import wassh
from suitekit import stop_listening

ROOT = Path(__file__).resolve().parents[3]
WASSH = [sys.executable, "-m", "wassh"]
INSTALL_HINT = "install Debian's dante-server and tinyproxy (scripts/system-deps.sh)"
# The system account danted checks RFC 1929 logins against (scripts/system-deps.sh
# creates it locked and expired; a test gives it a random password while it runs).
PROXY_USER = "wassh-proxy-test"


def need(program: str) -> str:
    for found in (shutil.which(program), f"/usr/sbin/{program}", f"/usr/bin/{program}"):
        if found and os.access(found, os.X_OK):
            return found
    pytest.fail(f"{program} not found: {INSTALL_HINT}", pytrace=False)


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@dataclass
class Daemon:
    """A proxy daemon on ``host:port``, in its own process group, with its log."""

    dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    mark: int = 0  # log offset after start-up: what came later is the tests' traffic

    name = "daemon"

    def command(self) -> list[str]:
        raise NotImplementedError

    def write_config(self) -> None:
        raise NotImplementedError

    @property
    def log_path(self) -> Path:
        return self.dir / f"{self.name}.log"

    def start(self) -> Self:
        self.dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            self.dir.chmod(0o755)  # the daemon reads it after dropping to nobody
        for _attempt in range(5):
            self.port = free_port(self.host)
            self.write_config()
            with open(self.dir / f"{self.name}.stderr", "ab") as err:
                self.proc = subprocess.Popen(
                    self.command(), stdout=err, stderr=err, start_new_session=True
                )
            if self._wait_ready():
                self.mark = self._quiet_log()
                return self
            self.stop()
        pytest.fail(f"{self.name} did not start:\n{self.log()[-3000:]}", pytrace=False)

    def _wait_ready(self) -> bool:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                return False
            try:
                with socket.socket(family) as s:
                    s.settimeout(2)
                    s.connect((self.host, self.port))
                    if self.probe(s):
                        return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def probe(self, s: socket.socket) -> bool:
        return True

    def _quiet_log(self) -> int:
        """The log's length once the start-up probe's lines are in (it stops growing)."""
        size, since = len(self.log()), time.monotonic()
        deadline = since + 3
        while time.monotonic() < deadline and time.monotonic() - since < 0.3:
            time.sleep(0.05)
            now = len(self.log())
            if now != size:
                size, since = now, time.monotonic()
        return size

    def log(self) -> str:
        text = ""
        for path in (self.log_path, self.dir / f"{self.name}.stderr"):
            with contextlib.suppress(OSError):
                text += path.read_text(errors="replace")
        return text

    def traffic(self) -> str:
        """The log since start-up: what the tests' clients did."""
        time.sleep(0.2)  # the daemon writes its lines after answering
        return self.log()[self.mark :]

    def url(self, scheme: str, auth: str = "") -> str:
        return f"{scheme}://{auth}{bracket(self.host)}:{self.port}"

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        # The group is the daemon's own (start_new_session): its children go with it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@dataclass
class Danted(Daemon):
    """Debian's dante-server: SOCKS5, optionally with RFC 1929 logins (system accounts)."""

    username_auth: bool = False
    name = "danted"

    def command(self) -> list[str]:
        conf, pid = self.dir / "danted.conf", self.dir / "danted.pid"
        return [need("danted"), "-f", str(conf), "-p", str(pid), "-N", "1"]

    def write_config(self) -> None:
        privileges = ""
        if os.geteuid() == 0:
            # Root only to read /etc/shadow for logins; everything else as nobody.
            privileges = "user.privileged: root\nuser.unprivileged: nobody\n"
        method = "username" if self.username_auth else "none"
        clients = "::/0" if ":" in self.host else "127.0.0.0/8"
        rules = "".join(
            f"socks pass {{\n  from: 0/0 to: {dest}\n  command: connect\n"
            "  log: error connect disconnect\n}\n"
            for dest in ("127.0.0.0/8", "::1/128")
        )
        (self.dir / "danted.conf").write_text(
            f"logoutput: {self.log_path}\n"
            f"internal: {self.host} port = {self.port}\n"
            # Dials from loopback only, and only loopback destinations pass.
            "external: 127.0.0.1\nexternal: ::1\n"
            f"socksmethod: {method}\nclientmethod: none\n{privileges}"
            f"client pass {{\n  from: {clients} to: 0/0\n  log: error connect disconnect\n}}\n"
            f"{rules}"
            "socks block {\n  from: 0/0 to: 0/0\n  log: error connect\n}\n"
        )

    def probe(self, s: socket.socket) -> bool:
        s.sendall(b"\x05\x02\x00\x02")
        return s.recv(2)[:1] == b"\x05"


@dataclass
class Tinyproxy(Daemon):
    """Debian's tinyproxy: HTTP CONNECT, optionally with ``BasicAuth``."""

    basic_auth: tuple[str, str] | None = None
    name = "tinyproxy"

    def command(self) -> list[str]:
        # -d: in the foreground, logging to stderr (our log file).
        return [need("tinyproxy"), "-d", "-c", str(self.dir / "tinyproxy.conf")]

    @property
    def log_path(self) -> Path:
        return self.dir / "tinyproxy.stderr"

    def write_config(self) -> None:
        lines = [
            f"Port {self.port}",
            f"Listen {self.host}",
            f"Allow {'::1' if ':' in self.host else '127.0.0.1'}",
            "Timeout 60",
            "MaxClients 64",
            "LogLevel Info",
            "DisableViaHeader Yes",
        ]
        if os.geteuid() == 0:
            lines += ["User nobody", "Group nogroup"]
        if self.basic_auth is not None:
            lines.append(f"BasicAuth {self.basic_auth[0]} {self.basic_auth[1]}")
        (self.dir / "tinyproxy.conf").write_text("\n".join(lines) + "\n")

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""


@contextlib.contextmanager
def proxy_login() -> Iterator[tuple[str, str]]:
    """``PROXY_USER`` with a fresh random password while the block runs.

    danted checks RFC 1929 logins with the system's password database, which
    only root can read: as anyone else the test is skipped. The account has no
    shell, no home and has expired, so nothing but danted accepts the password,
    and it is locked again afterwards.
    """
    if os.geteuid() != 0:
        pytest.skip("danted checks SOCKS5 passwords against /etc/shadow: needs root")
    try:
        pwd.getpwnam(PROXY_USER)
    except KeyError:
        pytest.fail(f"no user {PROXY_USER}: run scripts/system-deps.sh as root", pytrace=False)
    password = secrets.token_urlsafe(18)
    with open("/run/lock/wassh-proxy-test.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs at once must not race
        subprocess.run(["chpasswd"], input=f"{PROXY_USER}:{password}\n".encode(), check=True)
        try:
            yield PROXY_USER, password
        finally:
            subprocess.run(["usermod", "--password", "!", PROXY_USER], check=True)


# -- guests and servers -------------------------------------------------------------------


@dataclass
class GuestResult:
    code: int
    stdout: str
    stderr: str


def run_guest(wasm: Path, *args: str, **options: Any) -> GuestResult:
    """Run a guest in this process (the embedding API) and capture its output."""
    out, err = wassh.Capture(), wassh.Capture()
    code = wassh.run_sync(wasm, [wasm.stem, *args], stdout=out, stderr=err, **options)
    return GuestResult(code, out.text(), err.text())


def proxied(url: str, **config: Any) -> dict[str, Any]:
    """``run_guest`` options for a run through the proxy at ``url``."""
    settings = {"url": url, **config.pop("proxy", {})}
    config.setdefault("connect_timeout", 10.0)
    return {"config": wassh.TransportConfig(settings={"proxy": settings}, **config)}


class EchoServer:
    """A loopback TCP echo server counting the connections it accepted."""

    def __init__(self, host: str = "127.0.0.1", *, greeting: bytes = b"") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(128)
        self.host = host
        self.port = int(self.sock.getsockname()[1])
        self.greeting = greeting
        self.accepted = 0
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                if self.greeting:
                    conn.sendall(self.greeting)
                while data := conn.recv(65536):
                    conn.sendall(data)
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def close(self) -> None:
        stop_listening(self.sock, self._acceptor)


def loopback_name() -> tuple[str, str] | None:
    """A name this machine's resolver (the one the proxies use) maps to one loopback
    address, that wassh does not treat as ``localhost`` itself: (name, address)."""
    candidates = [socket.gethostname(), "localhost.localdomain", "ip6-localhost", "ip6-loopback"]
    for name in candidates:
        folded = name.lower().rstrip(".")
        if not name or folded == "localhost" or folded.endswith(".localhost"):
            continue
        try:
            infos = socket.getaddrinfo(name, 1, type=socket.SOCK_STREAM)
        except OSError:
            continue
        addresses = {str(info[4][0]) for info in infos}
        if len(addresses) == 1:
            address = addresses.pop()
            if address in ("127.0.0.1", "::1"):
                return name, address
    return None


# -- a scripted proxy ----------------------------------------------------------------------

Script = Callable[[socket.socket, "FakeProxy"], None]


@dataclass
class FakeProxy:
    """A loopback server that runs ``script`` against every client, one thread each."""

    script: Script
    host: str = "127.0.0.1"
    clients: int = 0
    received: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self.sock = socket.socket(family)
        self.sock.bind((self.host, 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.lock = threading.Lock()
        self.conns: list[socket.socket] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def url(self, scheme: str) -> str:
        return f"{scheme}://{bracket(self.host)}:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.clients += 1
                self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(15)
        try:
            self.script(conn, self)
        except OSError:
            pass
        finally:
            conn.close()

    def record(self, data: bytes) -> None:
        with self.lock:
            self.received.append(data)

    def close(self) -> None:
        stop_listening(self.sock, self._acceptor)
        with self.lock:
            for conn in self.conns:
                with contextlib.suppress(OSError):
                    conn.close()


def recv_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionResetError("client went away")
        data += chunk
    return data


def recv_head(conn: socket.socket, limit: int = 65536) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < limit:
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionResetError("client went away")
        data += chunk
    return data


def socks_request(conn: socket.socket, proxy: FakeProxy) -> bytes:
    """Read a SOCKS5 greeting (answered with no-auth) and the CONNECT request; records it."""
    _version, count = recv_exactly(conn, 2)
    recv_exactly(conn, count)
    conn.sendall(b"\x05\x00")
    head = recv_exactly(conn, 4)
    atyp = head[3]
    if atyp == 1:
        rest = recv_exactly(conn, 4 + 2)
    elif atyp == 4:
        rest = recv_exactly(conn, 16 + 2)
    else:
        size = recv_exactly(conn, 1)
        rest = size + recv_exactly(conn, size[0] + 2)
    request = head + rest
    proxy.record(request)
    return request


def splice(a: socket.socket, b: socket.socket) -> None:
    """Copy both ways until both directions have ended (half-closes passed on)."""

    def pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    other = threading.Thread(target=pump, args=(b, a), daemon=True)
    other.start()
    pump(a, b)
    other.join(15)
