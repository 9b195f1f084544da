"""The showcase through proxies: ssh.wasm (OpenSSH, built from Debian's source) to a
real sshd through danted (SOCKS5) and tinyproxy (HTTP CONNECT).

Select them with ``-m ssh``; the first run builds ssh.wasm (``guests/debbuild.py``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from proxykit import Danted, Tinyproxy, loopback_name
from sshkit import Client, Sshd, build_recipe, copy_key, ssh_options

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
def ssh(ssh_wasm: Path, tmp_path: Path, sshd: Sshd) -> Client:
    home = tmp_path / "home"
    home.mkdir()
    return Client(ssh_wasm, home, sshd)


def ssh_args(
    ssh: Client, *rest: str, host: str = "localhost", options: tuple[str, ...] = ()
) -> list[str]:
    key = copy_key(ssh.sshd.user_key, ssh.home)
    return [*ssh_options(ssh.home, ssh.sshd, key), *options, f"{ssh.sshd.user}@{host}", *rest]


def out(r: subprocess.CompletedProcess[bytes]) -> str:
    return f"rc={r.returncode}\nstdout={r.stdout[-2000:]!r}\nstderr={r.stderr[-4000:]!r}"


def test_ssh_through_danted(ssh: Client, danted: Danted) -> None:
    r = ssh.run(*ssh_args(ssh, "echo hello; exit 3"), wassh=["--proxy", danted.url("socks5h")])
    assert r.stdout == b"hello\n", out(r)
    assert r.returncode == 3, out(r)
    assert f"127.0.0.1.{ssh.sshd.port}" in danted.traffic()


def test_ssh_through_tinyproxy(ssh: Client, tinyproxy: Tinyproxy) -> None:
    # sshd speaks first: its banner may share a segment with tinyproxy's "200".
    r = ssh.run(*ssh_args(ssh, "echo hello; exit 3"), wassh=["--proxy", tinyproxy.url("http")])
    assert r.stdout == b"hello\n", out(r)
    assert r.returncode == 3, out(r)
    assert f"CONNECT 127.0.0.1:{ssh.sshd.port} HTTP/1.1" in tinyproxy.traffic()


@pytest.mark.parametrize("scheme", ["socks5h", "http"])
def test_ssh_stream_is_byte_exact_through_each_proxy(
    ssh: Client, danted: Danted, tinyproxy: Tinyproxy, scheme: str
) -> None:
    proxy = tinyproxy if scheme == "http" else danted
    blob = ssh.sshd.dir / "blob"
    data = os.urandom(1 << 20) * 8
    blob.write_bytes(data)
    r = ssh.run(*ssh_args(ssh, f"cat {blob}"), wassh=["--proxy", proxy.url(scheme)], timeout=300)
    assert r.returncode == 0, out(r)
    assert hashlib.sha256(r.stdout).hexdigest() == hashlib.sha256(data).hexdigest()


def test_ssh_connect_timeout_option_through_danted(ssh: Client, danted: Danted) -> None:
    # ConnectTimeout makes ssh connect non-blocking and poll for the result.
    r = ssh.run(
        *ssh_args(ssh, "echo nb", options=("-o", "ConnectTimeout=20")),
        wassh=["--proxy", danted.url("socks5h")],
    )
    assert r.stdout == b"nb\n", out(r)


def test_ssh_to_a_name_only_the_proxy_resolves(
    ssh_wasm: Path, tmp_path: Path, danted: Danted
) -> None:
    found = loopback_name()
    if found is None or found[1] != "127.0.0.1":
        pytest.skip("no name on this machine resolves to just 127.0.0.1 (see /etc/hosts)")
    name = found[0]
    server = Sshd(tmp_path / "sshd-named").start()
    try:
        home = tmp_path / "home-named"
        home.mkdir()
        client = Client(ssh_wasm, home, server)
        r = client.run(
            *ssh_args(client, "echo named", host=name),
            wassh=["--proxy", danted.url("socks5h"), "--no-host-dns"],
        )
        assert r.stdout == b"named\n", out(r)
        assert f"[{name}]:{server.port}" in (home / "known_hosts").read_text()
    finally:
        server.stop()


def test_ssh_refused_by_the_network_policy_never_reaches_the_proxy(
    ssh: Client, danted: Danted
) -> None:
    r = ssh.run(
        *ssh_args(ssh, "true"),
        wassh=["--proxy", danted.url("socks5h"), "--connect-deny", f"*:{ssh.sshd.port}"],
    )
    assert r.returncode == 255, out(r)
    assert b"Permission denied" in r.stderr, out(r)
    assert "tcp/accept" not in danted.traffic()
