"""ssh -J and ProxyCommand: ssh.wasm starts ssh.wasm as its proxy, through pipes.

Two hops on loopback against Debian's sshd (the jump host and the target are
the same server): the client runs ``ssh -W`` as its ProxyCommand through
``sh -c 'exec ssh ... -W ...'`` (fork + exec in the SDK, the host's minimal
shell, the program map), and logs in to the target through that tunnel. The
network policy applies to the proxy too. Select with ``-m ssh``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sshkit import Client, Sshd, build_recipe, copy_key

pytestmark = pytest.mark.ssh


@pytest.fixture(scope="session")
def ssh_wasm() -> Path:
    return build_recipe("openssh")["ssh"]


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    server = Sshd(tmp_path / "sshd").start()
    yield server
    server.stop()


@pytest.fixture
def home(tmp_path: Path, sshd: Sshd) -> Path:
    """The guest's home: a key, known_hosts, and a config both hops read (-F)."""
    h = tmp_path / "home"
    h.mkdir()
    key = copy_key(sshd.user_key, h)
    common = (
        f"  HostName 127.0.0.1\n  Port {sshd.port}\n  User {sshd.user}\n"
        f"  IdentityFile {key}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {h}/known_hosts\n  StrictHostKeyChecking accept-new\n"
        "  BatchMode yes\n"
    )
    (h / "ssh_config").write_text(f"Host jump\n{common}Host jump2\n{common}Host target\n{common}")
    return h


def named_ssh(ssh_wasm: Path, tmp_path: Path) -> Path:
    """ssh.wasm under the name ssh: ``-J`` runs ``ssh``, found as the program itself."""
    link = tmp_path / "ssh.wasm"
    os.symlink(ssh_wasm, link)
    return link


def out(r: subprocess.CompletedProcess[bytes]) -> str:
    return f"rc={r.returncode}\nstdout={r.stdout!r}\nstderr={r.stderr[-3000:]!r}"


def test_ssh_jump_two_hops(ssh_wasm: Path, tmp_path: Path, home: Path, sshd: Sshd) -> None:
    client = Client(named_ssh(ssh_wasm, tmp_path), home, sshd)
    r = client.run("-F", f"{home}/ssh_config", "-J", "jump", "target", "echo", "over two hops")
    assert r.returncode == 0, out(r)
    assert r.stdout == b"over two hops\n", out(r)
    assert b"Traceback" not in r.stderr
    # both logins reached the server: the jump (with a direct-tcpip forward), then the target
    log = sshd.log()
    assert log.count("Accepted publickey") == 2, log


def test_ssh_jump_three_hops(ssh_wasm: Path, tmp_path: Path, home: Path, sshd: Sshd) -> None:
    # the proxy runs "ssh -J jump2 -W ... jump": a grandchild for the first hop
    client = Client(named_ssh(ssh_wasm, tmp_path), home, sshd)
    r = client.run("-F", f"{home}/ssh_config", "-J", "jump,jump2", "target", "echo", "three")
    assert r.returncode == 0, out(r)
    assert r.stdout == b"three\n", out(r)
    log = sshd.log()
    assert log.count("Accepted publickey") == 3, log


def test_proxy_command_runs_a_mapped_program(ssh_wasm: Path, home: Path, sshd: Sshd) -> None:
    client = Client(ssh_wasm, home, sshd)
    r = client.run(
        "-F",
        f"{home}/ssh_config",
        "-o",
        f"ProxyCommand=ssh -F {home}/ssh_config -W %h:%p jump",
        "target",
        "echo",
        "through a proxy command",
        wassh=["--program", f"ssh={ssh_wasm}"],
    )
    assert r.returncode == 0, out(r)
    assert r.stdout == b"through a proxy command\n", out(r)


def test_the_policy_applies_to_the_proxy(ssh_wasm: Path, home: Path, sshd: Sshd) -> None:
    client = Client(ssh_wasm, home, sshd)
    r = client.run(
        "-F",
        f"{home}/ssh_config",
        "-o",
        f"ProxyCommand=ssh -F {home}/ssh_config -W %h:%p jump",
        "target",
        "echo",
        "never",
        wassh=["--program", f"ssh={ssh_wasm}", "--connect-deny", f"127.0.0.1:{sshd.port}"],
    )
    assert r.returncode == 255, out(r)
    assert r.stdout == b""
    # the proxy's own connect was refused by the policy, and said so
    assert f"denied connect to 127.0.0.1:{sshd.port}".encode() in r.stderr, out(r)
    assert f"connect to host 127.0.0.1 port {sshd.port}: Permission denied".encode() in r.stderr
    assert "Accepted publickey" not in sshd.log()


def test_an_unsupported_proxy_command_fails_cleanly(ssh_wasm: Path, home: Path, sshd: Sshd) -> None:
    client = Client(ssh_wasm, home, sshd)
    r = client.run(
        "-F",
        f"{home}/ssh_config",
        "-o",
        "ProxyCommand=nc %h %p | cat",
        "target",
        "echo",
        "never",
    )
    assert r.returncode == 255, out(r)
    assert b"wassh: sh -c: pipes not supported in 'exec nc 127.0.0.1 " in r.stderr, out(r)
    assert b"Traceback" not in r.stderr
