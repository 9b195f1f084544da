"""A real OpenSSH server for the SSH showcase tests, and helpers to run the clients.

``Sshd`` starts Debian's ``sshd`` on a free loopback port as the current user,
with a fresh ed25519 host key and user key in a temporary directory. Nothing is
skipped: if sshd, ssh-keygen or the client builds cannot be had, the tests fail
and say what to install.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WASSH = [sys.executable, "-m", "wassh"]
INSTALL_HINT = "install Debian's openssh-server and openssh-client (scripts/system-deps.sh)"


def build_recipe(recipe: str) -> dict[str, Path]:
    """The programs of a ``guests/debbuild.py`` recipe, built or from its cache; a
    failed build fails the test with the build's own message."""
    if str(ROOT / "guests") not in sys.path:
        sys.path.insert(0, str(ROOT / "guests"))
    import debbuild

    try:
        built: dict[str, Path] = debbuild.build(recipe)
    except debbuild.BuildError as exc:
        pytest.fail(f"building {recipe} failed: {exc}", pytrace=False)
    return built


def need(program: str) -> str:
    found = shutil.which(program) or (
        f"/usr/sbin/{program}" if os.access(f"/usr/sbin/{program}", os.X_OK) else None
    )
    if found is None:
        pytest.fail(f"{program} not found: {INSTALL_HINT}", pytrace=False)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(path: Path, comment: str = "wassh-test") -> Path:
    subprocess.run(
        [need("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
    )
    return path


@dataclass
class Sshd:
    """Debian's sshd on 127.0.0.1:port, serving the current user (and, as root, a
    password user)."""

    dir: Path
    options: dict[str, str] = field(default_factory=dict)
    port: int = 0
    user: str = field(default_factory=getpass.getuser)
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host_key = keygen(self.dir / "host_key", "wassh-test-host")
        self.user_key = keygen(self.dir / "user_key")
        (self.dir / "authorized_keys").write_text((self.dir / "user_key.pub").read_text())

    def config(self) -> str:
        opts = {
            "ListenAddress": "127.0.0.1",
            "Port": str(self.port),
            "HostKey": str(self.host_key),
            "PidFile": str(self.dir / "sshd.pid"),
            "AuthorizedKeysFile": f"{self.dir}/authorized_keys",
            "UsePAM": "no",
            "StrictModes": "no",
            "PasswordAuthentication": "no",
            "KbdInteractiveAuthentication": "no",
            "PubkeyAuthentication": "yes",
            "PermitRootLogin": "prohibit-password",
            "AllowTcpForwarding": "yes",
            "AllowAgentForwarding": "yes",
            "GatewayPorts": "no",
            "PrintMotd": "no",
            "LogLevel": "VERBOSE",
        }
        opts.update(self.options)
        return "".join(f"{k} {v}\n" for k, v in opts.items())

    def start(self) -> Sshd:
        for _attempt in range(5):
            if self._launch(free_port()):
                return self
        pytest.fail(f"sshd did not start:\n{self.log()}", pytrace=False)

    def start_on(self, port: int) -> Sshd:
        """(Re)start on a given port, e.g. the one a client already knows."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._launch(port):
                return self
            time.sleep(0.2)
        pytest.fail(f"sshd did not start on port {port}:\n{self.log()}", pytrace=False)

    def _launch(self, port: int) -> bool:
        sshd = need("sshd")
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation
        self.port = port
        cfg = self.dir / "sshd_config"
        cfg.write_text(self.config())
        with open(self.dir / "sshd.log", "ab") as log:
            self.proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(cfg)], stderr=log)
        if self._wait_ready():
            return True
        self.stop()
        return False

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(64).startswith(b"SSH-"):
                        return True
            except OSError:
                time.sleep(0.05)
        return False

    def log(self) -> str:
        try:
            return (self.dir / "sshd.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@dataclass
class Client:
    """How to run a wasm SSH client under ``wassh run`` against an Sshd."""

    wasm: Path
    home: Path  # preopened, also $HOME inside the guest
    sshd: Sshd
    wassh_options: list[str] = field(default_factory=list)

    def command(self, *args: str, wassh: Sequence[str] = ()) -> list[str]:
        return [
            *WASSH,
            "run",
            "--dir",
            str(self.home),
            "--env",
            f"HOME={self.home}",
            "--env",
            f"USER={self.sshd.user}",
            *self.wassh_options,
            *wassh,
            str(self.wasm),
            *args,
        ]

    def run(
        self,
        *args: str,
        wassh: Sequence[str] = (),
        input: bytes | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            self.command(*args, wassh=wassh),
            input=input if input is not None else b"",
            capture_output=True,
            timeout=timeout,
            check=False,
        )


def ssh_options(
    home: Path, sshd: Sshd, key: Path | None = None, *, batch: bool = True
) -> list[str]:
    """Options for ssh.wasm: our key, a known_hosts file in the preopened home.

    ssh keeps the first value given for an option: pass ``batch=False`` rather
    than a later ``-o BatchMode=no``."""
    opts = [
        "-F",
        "none",
        "-p",
        str(sshd.port),
        "-o",
        f"UserKnownHostsFile={home}/known_hosts",
        "-o",
        "StrictHostKeyChecking=accept-new",
        "-o",
        f"BatchMode={'yes' if batch else 'no'}",
    ]
    if key is not None:
        opts += ["-i", str(key), "-o", "IdentitiesOnly=yes"]
    return opts


def copy_key(src: Path, home: Path) -> Path:
    dest = home / src.name
    shutil.copyfile(src, dest)
    dest.chmod(0o600)
    return dest
