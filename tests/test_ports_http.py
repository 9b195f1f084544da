"""curl from Debian's source, unmodified (HTTP only), against Debian's nginx.

Downloads are checked byte for byte against the files nginx serves; status
handling (an error status, 404 with --fail, redirects, a range) is checked against
Debian's native curl running the same command line: same output, same exit code.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from portkit import Daemon, build, free_port, nginx_server, run_guest, run_native

pytestmark = pytest.mark.ports

BIG = 3 * 1024 * 1024 + 17  # not a multiple of any buffer size

LOCATIONS = """\
        location = /moved { return 301 /files/big.bin; }
        location = /hop { return 302 /moved; }
        location = /teapot { return 418 "short and stout\\n"; }
"""


@pytest.fixture(scope="module")
def curl() -> Path:
    return build("curl")["curl"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("site")
    files = root / "files"
    files.mkdir()
    (files / "big.bin").write_bytes(os.urandom(BIG))
    (files / "hello.txt").write_bytes(b"hello, unmodified world\n")
    (files / "empty").write_bytes(b"")
    return root


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory, site: Path) -> Iterator[Daemon]:
    daemon = nginx_server(tmp_path_factory.mktemp("nginx"), site, LOCATIONS)
    yield daemon
    daemon.close()


def url(nginx: Daemon, path: str) -> str:
    return f"http://127.0.0.1:{nginx.port}{path}"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- curl ---------------------------------------------------------------------------------


def curl_both(curl: Path, *args: str) -> tuple[bytes, int]:
    """The guest's stdout and exit code, asserted equal to native curl's."""
    guest = run_guest(curl, "-s", *args)
    native = run_native("curl", "-s", *args)
    assert guest.stdout == native.stdout, guest.stderr.decode(errors="replace")
    assert guest.returncode == native.returncode
    return guest.stdout, guest.returncode


def test_curl_version(curl: Path) -> None:
    r = run_guest(curl, "--version")
    assert r.returncode == 0
    first = r.stdout.splitlines()[0]
    assert first.startswith(b"curl 7.88.1 (wasm32-unknown-wasi)"), first
    assert b"http" in r.stdout.splitlines()[2]  # Protocols: ...


def test_curl_download_byte_exact(curl: Path, nginx: Daemon, site: Path) -> None:
    r = run_guest(curl, "-sS", url(nginx, "/files/big.bin"))
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert len(r.stdout) == BIG
    assert sha(r.stdout) == sha((site / "files/big.bin").read_bytes())


def test_curl_writes_a_file(curl: Path, nginx: Daemon, site: Path, tmp_path: Path) -> None:
    r = run_guest(
        curl,
        "-sS",
        "-o",
        "/out/copy.bin",
        url(nginx, "/files/big.bin"),
        options=("--dir", f"{tmp_path}::/out"),
    )
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert (tmp_path / "copy.bin").read_bytes() == (site / "files/big.bin").read_bytes()


def test_curl_status_and_errors(curl: Path, nginx: Daemon) -> None:
    out, code = curl_both(curl, "-w", "%{http_code} %{size_download}\n", url(nginx, "/teapot"))
    assert out == b"short and stout\n418 16\n" and code == 0
    out, code = curl_both(curl, "-f", url(nginx, "/files/missing"))
    assert code == 22  # --fail on a 404
    out, code = curl_both(curl, "-o", "/dev/null", "-w", "%{http_code}", url(nginx, "/empty"))
    assert out == b"404"


def test_curl_redirect(curl: Path, nginx: Daemon, site: Path) -> None:
    out, code = curl_both(curl, "-w", "%{http_code} %{redirect_url}", url(nginx, "/moved"))
    assert code == 0 and out.endswith(b"301 " + url(nginx, "/files/big.bin").encode())
    out, code = curl_both(curl, "-L", "-w", "\n%{num_redirects}", url(nginx, "/hop"))
    body, _, hops = out.rpartition(b"\n")
    assert hops == b"2"
    assert body == (site / "files/big.bin").read_bytes()


def test_curl_range_and_head(curl: Path, nginx: Daemon, site: Path) -> None:
    out, _ = curl_both(curl, "-r", "1000-1999", url(nginx, "/files/big.bin"))
    assert out == (site / "files/big.bin").read_bytes()[1000:2000]
    guest = run_guest(curl, "-sI", url(nginx, "/files/hello.txt"))
    assert guest.returncode == 0
    head = guest.stdout.decode()
    assert head.startswith("HTTP/1.1 200 OK\r\n")
    assert "Content-Length: 24\r\n" in head


def test_curl_refused(curl: Path) -> None:
    _, code = curl_both(curl, f"http://127.0.0.1:{free_port()}/")
    assert code == 7  # couldn't connect
