"""``wassh cc`` as a toolchain: runnable programs, configure, modes, errors, packaging.

Every compile here is a real ``wassh cc`` run (zig and the guest SDK); where a
behaviour has a native counterpart, the same C source compiled with gcc is the
reference.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from suitekit import GUESTS

ROOT = Path(__file__).resolve().parent.parent
WASSH = Path(sys.executable).parent / "wassh"
CC = GUESTS / "cc"
WASM_MAGIC = b"\0asm"


def wassh_cc(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(WASSH), "cc", *(str(a) for a in args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def gcc(*args: str | Path, cwd: Path) -> None:
    subprocess.run(["gcc", *(str(a) for a in args)], cwd=cwd, check=True, timeout=120)


def run(program: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(program), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def sections(module: bytes) -> list[str]:
    """Section names of a wasm module: custom sections by name, others by id."""
    assert module.startswith(WASM_MAGIC)
    names = []
    at = 8

    def leb(at: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            byte = module[at]
            at += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value, at

    while at < len(module):
        kind = module[at]
        size, body = leb(at + 1)
        if kind == 0:
            length, name_at = leb(body)
            names.append(module[name_at : name_at + length].decode())
        else:
            names.append(str(kind))
        at = body + size
    return names


# -- runnable programs ------------------------------------------------------------


ARGV_CASES = [
    (),
    ("--",),
    ("--", "--"),
    ("--", "--", "x"),
    ("-v",),
    ("x", "--", "y"),
    ("--dir", "z"),
    ("-",),
    ("a b", "'q'", '"d"', "$HOME"),
]


def test_program_runs_as_the_native_one_does(tmp_path: Path) -> None:
    """``-o NAME`` writes a program that runs directly: the same arguments and exit
    status as gcc's build of the same source, whatever the arguments look like."""
    built = wassh_cc(CC / "argv.c", "-o", "argv", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    gcc(CC / "argv.c", "-o", "argv.native", cwd=tmp_path)
    program = tmp_path / "argv"
    assert os.access(program, os.X_OK)
    assert program.read_bytes().startswith(b"#!/bin/sh\n")
    for args in ARGV_CASES:
        guest = run(program, *args, cwd=tmp_path)
        native = run(tmp_path / "argv.native", *args, cwd=tmp_path)
        assert (guest.stdout, guest.returncode) == (native.stdout, native.returncode), args
        assert guest.stderr == ""


def test_program_without_o_is_a_out_and_wassh_run_takes_it(tmp_path: Path) -> None:
    built = wassh_cc(CC / "argv.c", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.out"]
    direct = run(tmp_path / "a.out", "one", cwd=tmp_path)
    assert (direct.stdout, direct.returncode) == ("[one]\n", 2)
    through_run = subprocess.run(
        [str(WASSH), "run", str(tmp_path / "a.out"), "--", "one", "two"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (through_run.stdout, through_run.returncode) == ("[one][two]\n", 3)


def test_wasm_output_is_the_bare_module_and_extract_gives_it_back(tmp_path: Path) -> None:
    assert wassh_cc(CC / "argv.c", "-o", "argv.wasm", cwd=tmp_path).returncode == 0
    assert wassh_cc(CC / "argv.c", "-o", "argv", cwd=tmp_path).returncode == 0
    assert (tmp_path / "argv.wasm").read_bytes().startswith(WASM_MAGIC)
    program = (tmp_path / "argv").read_bytes()
    header, newline, _ = program.partition(b"\n")
    header += newline + program[len(header) + 1 :].partition(b"\n")[0] + b"\n"
    assert b"\0" not in header and program[len(header) :].startswith(WASM_MAGIC)
    extracted = wassh_cc("--extract-module", "argv", "out.wasm", cwd=tmp_path)
    assert extracted.returncode == 0, extracted.stderr
    module = (tmp_path / "out.wasm").read_bytes()
    assert module == program[len(header) :]
    for wasm in ("argv.wasm", "out.wasm"):
        ran = subprocess.run(
            [str(WASSH), "run", str(tmp_path / wasm), "--", "x"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert (ran.stdout, ran.returncode) == ("[x]\n", 2)
    # A bare module extracts to itself; anything else is refused in one line.
    assert wassh_cc("--extract-module", "out.wasm", "again.wasm", cwd=tmp_path).returncode == 0
    assert (tmp_path / "again.wasm").read_bytes() == module
    refused = wassh_cc("--extract-module", CC / "argv.c", "x.wasm", cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and "not a wasm module" in refused.stderr
    assert not (tmp_path / "x.wasm").exists()


def test_program_sees_the_current_directory(tmp_path: Path) -> None:
    """The current directory is preopened as ``.``: relative paths land there, from
    wherever the program is started."""
    assert wassh_cc(CC / "writefile.c", "-o", "writefile", cwd=tmp_path).returncode == 0
    work = tmp_path / "work"
    work.mkdir()
    done = run(Path("..") / "writefile", "conftest.val", cwd=work)
    assert (done.stdout, done.returncode) == ("wrote conftest.val\n", 0), done.stderr
    assert (work / "conftest.val").read_text() == "wrote conftest.val\n"
    assert not (tmp_path / "conftest.val").exists()


def test_response_files_are_read(tmp_path: Path) -> None:
    """An ``-o`` inside an @file (build systems pass long command lines so) names
    the program; a response file that includes itself is one line, not a crash."""
    (tmp_path / "args.rsp").write_text(f'-O2 "{CC / "argv.c"}"\n-o "my prog"\n')
    done = wassh_cc("@args.rsp", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["args.rsp", "my prog"]
    assert run(tmp_path / "my prog", "a", cwd=tmp_path).stdout == "[a]\n"
    (tmp_path / "loop.rsp").write_text("@loop.rsp\n")
    looped = wassh_cc("@loop.rsp", cwd=tmp_path)
    assert looped.returncode == 1 and looped.stderr.count("\n") == 1, looped.stderr


def test_configure_test_programs_are_not_cached(tmp_path: Path) -> None:
    """A program named conftest (autoconf's, run once) runs with --no-cache; any
    other program's compiled code is cached as with wassh run."""
    for name in ("conftest", "prog"):
        assert wassh_cc(CC / "argv.c", "-o", name, cwd=tmp_path).returncode == 0
    assert b" --no-cache " in (tmp_path / "conftest").read_bytes().split(b"\n")[1]
    assert b" --no-cache " not in (tmp_path / "prog").read_bytes().split(b"\n")[1]
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    modules = tmp_path / "cache" / "wassh" / "modules"
    for name, cached in (("conftest", 0), ("prog", 1)):
        done = subprocess.run(
            [f"./{name}", "x"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert (done.stdout, done.returncode) == ("[x]\n", 2), done.stderr
        assert len(list(modules.glob("*.cwasm")) if modules.exists() else []) == cached


def test_configure_runs_its_test_programs(tmp_path: Path) -> None:
    """An autoconf configure with ``CC="wassh cc" --host=wasm32-unknown-wasi`` finds
    it can run programs (not cross compiling), and its AC_RUN_IFELSE and
    AC_COMPUTE_INT run real guests: gcc's configure of the same script is the
    reference for what ran, the values are wasm32-wasi's."""
    assert shutil.which("autoconf"), "autoconf missing: run scripts/system-deps.sh"
    results = {}
    for name, cc_args in {
        "native": ["CC=gcc"],
        "wassh": ["CC=wassh cc", "--host=wasm32-unknown-wasi"],
    }.items():
        src = tmp_path / name
        src.mkdir()
        for f in ("configure.ac", "probe.txt.in"):
            shutil.copy(CC / f, src / f)
        subprocess.run(["autoconf"], cwd=src, check=True, timeout=120)
        env = dict(os.environ, PATH=f"{WASSH.parent}:{os.environ['PATH']}")
        done = subprocess.run(
            ["./configure", *cc_args], cwd=src, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stdout + done.stderr + (src / "config.log").read_text()
        results[name] = dict(
            line.split("=", 1) for line in (src / "probe.txt").read_text().splitlines()
        )
    native, guest = results["native"], results["wassh"]
    for key in ("ran", "fails", "cross_compiling", "exeext"):
        assert guest[key] == native[key], key
    assert native["ran"] == "yes" and native["fails"] == "yes"
    assert native["cross_compiling"] == "no"
    assert (guest["sizeof_long"], guest["sizeof_pointer"]) == ("4", "4")  # wasm32
    assert (native["sizeof_long"], native["sizeof_pointer"]) == ("8", "8")
    assert guest["eintr"] == "27" and native["eintr"] == "4"  # WASI's numbering, Linux's


# -- modes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "flags", [["-shared"], ["-fPIC", "-shared"], ["-dynamiclib"], ["-Wl,-shared"]]
)
def test_shared_libraries_are_refused_in_one_line(tmp_path: Path, flags: list[str]) -> None:
    done = wassh_cc(*flags, CC / "util.c", "-o", "libutil.so", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith(f"wassh cc: {flags[-1]}: shared libraries are not supported")
    assert done.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_project_library_named_like_libc_is_linked(tmp_path: Path) -> None:
    """zig takes -lutil for libc's and drops it: a libutil.a found through -L is the
    project's and must be linked, as gcc's ld does."""
    lib = tmp_path / "lib"
    lib.mkdir()
    assert wassh_cc("-c", CC / "util.c", "-o", lib / "util.o", cwd=tmp_path).returncode == 0
    from wassh.cc import _zig_cc

    zig = _zig_cc()[0]
    subprocess.run([zig, "ar", "rcs", "libutil.a", "util.o"], cwd=lib, check=True, timeout=60)
    linked = wassh_cc(CC / "useutil.c", "-Llib", "-lutil", "-lm", "-o", "useutil", cwd=tmp_path)
    assert linked.returncode == 0, linked.stderr
    native_lib = tmp_path / "nlib"
    native_lib.mkdir()
    gcc("-c", CC / "util.c", "-o", native_lib / "util.o", cwd=tmp_path)
    subprocess.run(["ar", "rcs", "libutil.a", "util.o"], cwd=native_lib, check=True)
    gcc(CC / "useutil.c", "-L", "nlib", "-lutil", "-lm", "-o", "useutil.native", cwd=tmp_path)
    assert run(tmp_path / "useutil", cwd=tmp_path).returncode == 42
    assert run(tmp_path / "useutil.native", cwd=tmp_path).returncode == 42
    # -L after -l counts too, as with ld; without it the library is missing, as with gcc.
    late = wassh_cc(CC / "useutil.c", "-lutil", "-L", "lib", "-o", "late", cwd=tmp_path)
    assert late.returncode == 0 and run(tmp_path / "late", cwd=tmp_path).returncode == 42
    missing = wassh_cc(CC / "useutil.c", "-lutil", "-o", "missing", cwd=tmp_path)
    assert missing.returncode != 0 and "project_util" in missing.stderr


def test_syntax_only_checks_and_writes_nothing(tmp_path: Path) -> None:
    for source, status in ((CC / "argv.c", 0), (CC / "broken.c", 1)):
        native = subprocess.run(
            ["gcc", "-fsyntax-only", str(source)], cwd=tmp_path, capture_output=True, timeout=60
        )
        guest = wassh_cc("-fsyntax-only", "-Wall", source, cwd=tmp_path)
        assert (guest.returncode, native.returncode) == (status, status), guest.stderr
        assert list(tmp_path.iterdir()) == []
    assert "undeclared_name" in wassh_cc("-fsyntax-only", CC / "broken.c", cwd=tmp_path).stderr
    both = wassh_cc("-fsyntax-only", CC / "argv.c", CC / "writefile.c", cwd=tmp_path)
    assert both.returncode == 0 and list(tmp_path.iterdir()) == []


def test_debug_info_only_with_g_and_s_strips_all(tmp_path: Path) -> None:
    """Without -g the program carries no DWARF (zig's libc brings ~1 MB) but keeps
    its function names for trap reports; -g keeps DWARF; -s strips everything."""
    builds = {"plain": [], "g": ["-g"], "s": ["-s"]}
    sizes = {}
    for name, flags in builds.items():
        done = wassh_cc(*flags, CC / "argv.c", "-o", f"{name}.wasm", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        module = (tmp_path / f"{name}.wasm").read_bytes()
        sizes[name] = len(module)
        names = sections(module)
        assert ("name" in names) == (name != "s"), names
        assert (".debug_info" in names) == (name == "g"), names
        ran = subprocess.run(
            [str(WASSH), "run", str(tmp_path / f"{name}.wasm"), "--", "a"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert (ran.stdout, ran.returncode) == ("[a]\n", 2)
    assert sizes["s"] < sizes["plain"] < 64 * 1024 < sizes["g"]


def test_pthread_is_accepted_and_threads_are_refused_at_run_time(tmp_path: Path) -> None:
    """-pthread compiles (mutexes and once work single-threaded); pthread_create
    fails with EAGAIN, as on a system out of threads."""
    source = tmp_path / "thread.c"
    source.write_text(
        "#include <pthread.h>\n#include <stdio.h>\n#include <errno.h>\n"
        "static void *f(void *a) { return a; }\n"
        "int main(void) { pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER; pthread_t t;\n"
        "  int r = pthread_create(&t, 0, f, 0);\n"
        '  printf("create %s lock %d\\n", r == EAGAIN ? "EAGAIN" : "other", '
        "pthread_mutex_lock(&m));\n  return 0; }\n"
    )
    done = wassh_cc("-pthread", source, "-o", "thread", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert run(tmp_path / "thread", cwd=tmp_path).stdout == "create EAGAIN lock 0\n"


# -- the SDK and the record -------------------------------------------------------


def test_first_use_builds_the_sdk_once_with_progress_lines(tmp_path: Path) -> None:
    """A fresh cache: the SDK build says so on stderr, with its time; three
    compilers started together build it once (a lock) and all succeed."""
    env = dict(
        os.environ,
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        # zig's own cache (wasi-libc) stays where it is: what is tested is wassh's.
        ZIG_GLOBAL_CACHE_DIR=os.environ.get(
            "ZIG_GLOBAL_CACHE_DIR", str(Path.home() / ".cache" / "zig")
        ),
    )
    procs = [
        subprocess.Popen(
            [str(WASSH), "cc", "-c", str(CC / "util.c"), "-o", f"u{i}.o"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    errs = []
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        errs.append(err)
    joined = "".join(errs)
    assert (
        joined.count("wassh cc: building the guest SDK (once; about a minute the first time)...\n")
        == 1
    )
    assert joined.count("wassh cc: guest SDK built in ") == 1
    assert len(list((tmp_path / "cache" / "wassh").glob("sdk-*"))) == 1
    again = wassh_cc("-c", CC / "util.c", "-o", "u.o", cwd=tmp_path, env=env)
    assert again.returncode == 0 and again.stderr == ""
    assert len(list((tmp_path / "cache" / "wassh").glob("cc-*.record"))) == 1


def test_an_edited_sdk_source_renews_the_record(tmp_path: Path) -> None:
    """The record holds only while the SDK sources' size and mtime do: touching one
    makes the next call check the SDK again (by content) and write a new record."""
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    env["ZIG_GLOBAL_CACHE_DIR"] = os.environ.get(
        "ZIG_GLOBAL_CACHE_DIR", str(Path.home() / ".cache" / "zig")
    )
    assert wassh_cc("-c", CC / "util.c", "-o", "u.o", cwd=tmp_path, env=env).returncode == 0
    (record,) = (tmp_path / "cache" / "wassh").glob("cc-*.record")
    before = record.read_text()
    import _wassh_cc

    header = Path(_wassh_cc.SDK_DIR) / "include" / "sys" / "socket.h"
    st = header.stat()
    # Forward only, never back: an mtime set back could hide a real edit.
    os.utime(header, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert wassh_cc("-c", CC / "util.c", "-o", "u.o", cwd=tmp_path, env=env).returncode == 0
    after = record.read_text()
    # The header's mtime as it is now, not as this test set it: another suite run on
    # the same installation may have moved it forward again in between.
    now = header.stat().st_mtime_ns
    assert now > st.st_mtime_ns
    assert after != before and f"{header}:{st.st_size}:{now}:" in after
    assert after.split("\n")[2:] == before.split("\n")[2:]  # same flags, same SDK objects


# -- packaging ------------------------------------------------------------------


def test_without_ziglang_wassh_cc_says_how_to_get_it(tmp_path: Path) -> None:
    """``pip install wassh`` brings no compiler: ``wassh cc`` says in one line how to
    get one (exit 2); ``wassh[cc]`` is the extra that brings zig."""
    uv = _uv()
    env = dict(os.environ, CC="/bin/false", LDSHARED="/bin/false")  # no extension: faster
    subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(tmp_path), str(ROOT / "core")],
        check=True,
        capture_output=True,
        env=env,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("wassh-*.whl")
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        requires = [line for line in whl.read(meta).decode().splitlines() if "ziglang" in line]
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        assert "wassh = _wassh_entry:main" in whl.read(entry_points).decode()
    assert "_wassh_entry.py" in names and "_wassh_cc.py" in names
    assert requires and all("extra ==" in line for line in requires), requires
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "--quiet", str(venv)], check=True, timeout=120)
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), str(wheel)],
        check=True,
        timeout=300,
    )
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    done = subprocess.run(
        [str(venv / "bin" / "wassh"), "cc", "-c", str(CC / "util.c"), "-o", "u.o"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr == (
        "wassh cc: needs zig, which is not installed: pip install 'wassh[cc]' "
        "(or: pip install ziglang)\n"
    )
    assert not (tmp_path / "u.o").exists()


def _uv() -> str:
    for candidate in (Path.home() / ".local" / "bin" / "uv", Path(sys.executable).parent / "uv"):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("uv")
    assert found, "uv is needed to build the wheel"
    return found
