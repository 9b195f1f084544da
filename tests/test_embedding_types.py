"""The embedding API's arguments: a wrong one is refused by name before anything runs.

The guest writes a marker file into its first preopened directory and echoes its
argv, environment and stdin; the embedder's plugin is a class, instantiated when
plugins load. A refused call leaves no marker and no instance.
"""

from __future__ import annotations

import importlib.util
import io
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import MappingProxyType, ModuleType, SimpleNamespace
from typing import Any, ClassVar

import pytest
import trio
import wasmtime
import wassh

ROOT = Path(__file__).resolve().parent.parent
TYPING = Path(__file__).resolve().parent / "typing"

ECHO_WAT = r"""
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get"
    (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get"
    (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get"
    (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 32) "ran")
  (func $out (param $fd i32) (param $buf i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $buf))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 12))))
  (func (export "_start")
    ;; "ran" created in fd 3, the first preopened directory
    (drop (call $path_open (i32.const 3) (i32.const 0) (i32.const 32) (i32.const 3)
      (i32.const 1) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 8)))
    ;; argv then environ to stdout, each string NUL-terminated
    (drop (call $args_sizes_get (i32.const 16) (i32.const 20)))
    (drop (call $args_get (i32.const 1024) (i32.const 4096)))
    (call $out (i32.const 1) (i32.const 4096) (i32.load (i32.const 20)))
    (drop (call $environ_sizes_get (i32.const 16) (i32.const 20)))
    (drop (call $environ_get (i32.const 1024) (i32.const 8192)))
    (call $out (i32.const 1) (i32.const 8192) (i32.load (i32.const 20)))
    ;; stdin to stdout and to stderr, until end of file
    (block $done
      (loop $copy
        (i32.store (i32.const 0) (i32.const 16384))
        (i32.store (i32.const 4) (i32.const 4096))
        (br_if $done (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 24)))
        (br_if $done (i32.eqz (i32.load (i32.const 24))))
        (call $out (i32.const 1) (i32.const 16384) (i32.load (i32.const 24)))
        (call $out (i32.const 2) (i32.const 16384) (i32.load (i32.const 24)))
        (br $copy)))))
"""


class Recorder:
    """The embedder's plugin, given as a class: each instance is a load of the plugins."""

    name = "recorder"
    loaded: ClassVar[list[Recorder]] = []
    lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        with Recorder.lock:
            Recorder.loaded.append(self)


@pytest.fixture(scope="module")
def echo_guest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("guest") / "echo.wasm"
    path.write_bytes(wasmtime.wat2wasm(ECHO_WAT))
    return path


@pytest.fixture
def work(tmp_path: Path) -> Iterator[Path]:
    Recorder.loaded.clear()
    yield tmp_path
    Recorder.loaded.clear()


def _base(guest: Path, work: Path) -> dict[str, Any]:
    """A call that runs the guest: it leaves ``ran`` in ``work`` and loads ``Recorder``."""
    return {
        "wasm": guest,
        "argv": ["echo", "x"],
        "stdin": b"in\n",
        "stdout": wassh.Capture(),
        "dirs": [(str(work), "/out")],
        "plugins": [Recorder],
        "entry_points": False,
    }


def _call_prepare(arguments: dict[str, Any]) -> object:
    return wassh.prepare(**arguments)


def _call_run_sync(arguments: dict[str, Any]) -> object:
    return wassh.run_sync(**arguments)


def _call_run(arguments: dict[str, Any]) -> object:
    async def main() -> object:
        return await wassh.run(**arguments)

    return trio.run(main)


ENTRY_POINTS: dict[str, Callable[[dict[str, Any]], object]] = {
    "prepare": _call_prepare,
    "run_sync": _call_run_sync,
    "run": _call_run,
}


# (argument, wrong value, exception, text the message contains)
WRONG: list[tuple[str, Callable[[Path], object], type[Exception], str]] = [
    ("wasm", lambda w: os.fsencode(w / "echo.wasm"), TypeError, "wasm must be a path"),
    ("wasm", lambda w: 42, TypeError, "wasm must be a path"),
    ("argv", lambda w: "upper", TypeError, "argv must be a list or tuple of str, not str"),
    ("argv", lambda w: b"upper", TypeError, "argv must be a list or tuple of str, not bytes"),
    ("argv", lambda w: ["echo", 1], TypeError, "argv must hold str only: item 1 is int"),
    ("argv", lambda w: {"echo"}, TypeError, "argv must be a list or tuple of str, not set"),
    ("env", lambda w: {"A": 1}, TypeError, "env values must be str: 'A' is int"),
    ("env", lambda w: {"A": b"1"}, TypeError, "env values must be str: 'A' is bytes"),
    ("env", lambda w: {1: "one"}, TypeError, "env keys must be str: 1 is int"),
    ("env", lambda w: [("A", "1")], TypeError, "env must be a mapping of str to str, not list"),
    ("env", lambda w: "A=1", TypeError, "env must be a mapping"),
    ("stdin", lambda w: "text", TypeError, "stdin must be bytes, a file descriptor"),
    ("stdin", lambda w: True, TypeError, "stdin must be bytes, a file descriptor"),
    ("stdin", lambda w: 1.5, TypeError, "not float"),
    ("stdin", lambda w: io.BytesIO(b"x"), TypeError, "stdin must be bytes"),
    ("stdin", lambda w: io.StringIO("x"), TypeError, "stdin must be bytes"),
    ("stdin", lambda w: -1, ValueError, "stdin must not be a negative file descriptor"),
    ("stdout", lambda w: str(w / "out.txt"), TypeError, "stdout must be a file descriptor"),
    ("stdout", lambda w: b"", TypeError, "stdout must be a file descriptor"),
    ("stdout", lambda w: False, TypeError, "stdout must be a file descriptor"),
    ("stdout", lambda w: io.BytesIO(), TypeError, "stdout must be a file descriptor"),
    ("stdout", lambda w: -1, ValueError, "stdout must not be a negative file descriptor"),
    ("stderr", lambda w: "err.txt", TypeError, "stderr must be a file descriptor"),
    ("stderr", lambda w: 2.0, TypeError, "stderr must be a file descriptor"),
    ("dirs", lambda w: str(w), TypeError, "dirs must be a list or tuple of 'HOST[::GUEST]'"),
    ("dirs", lambda w: {str(w): "/out"}, TypeError, "dirs must be a list or tuple"),
    ("dirs", lambda w: [(str(w),)], TypeError, "dirs must hold 'HOST[::GUEST]'"),
    ("dirs", lambda w: [w], TypeError, "item 0 is PosixPath"),
    ("dirs", lambda w: [(str(w), 1)], TypeError, "dirs must hold"),
    ("hosts", lambda w: [("a.test", "127.0.0.1")], TypeError, "hosts must be a mapping"),
    ("hosts", lambda w: {"a.test": 127}, TypeError, "hosts values must be an address"),
    ("hosts", lambda w: {"a.test": b"127.0.0.1"}, TypeError, "hosts values"),
    ("hosts", lambda w: {"a.test": [b"127.0.0.1"]}, TypeError, "hosts values"),
    ("hosts", lambda w: {1: "127.0.0.1"}, TypeError, "hosts keys must be str"),
    ("plugins", lambda w: Recorder, TypeError, "plugins must be a list or tuple of plugins"),
    ("plugins", lambda w: "recorder", TypeError, "plugins must be a list or tuple"),
    ("plugins", lambda w: [Recorder, "tcp"], TypeError, "item 1 is str (a plugin's name goes"),
    ("plugins", lambda w: [Recorder, None], TypeError, "item 1 is NoneType"),
    ("plugins", lambda w: [Recorder, 7], TypeError, "item 1 is int"),
    ("plugins", lambda w: [Recorder, [Recorder]], TypeError, "item 1 is list"),
    ("block", lambda w: "tcp", TypeError, "block must be a list, tuple or set of str, not str"),
    ("block", lambda w: [1], TypeError, "block must hold str only: item 0 is int"),
    ("block", lambda w: {"tcp": True}, TypeError, "block must be a list, tuple or set"),
    ("entry_points", lambda w: 1, TypeError, "entry_points must be bool, not int"),
    ("entry_points", lambda w: "yes", TypeError, "entry_points must be bool, not str"),
    ("config", lambda w: {"connect_timeout": 1.0}, TypeError, "config must be a wassh."),
    ("trace", lambda w: 1, TypeError, "trace must be bool, not int"),
    ("dev", lambda w: None, TypeError, "dev must be bool, not NoneType"),
    ("max_memory", lambda w: True, TypeError, "max_memory must be an int (bytes) or None"),
    ("max_memory", lambda w: 1.5, TypeError, "max_memory must be an int"),
    ("max_memory", lambda w: "64M", TypeError, "max_memory must be an int"),
    ("max_memory", lambda w: -1, ValueError, "max_memory must not be negative"),
    ("events", lambda w: 42, TypeError, "events must be a callable"),
    ("events", lambda w: "events.jsonl", TypeError, "events must be a callable"),
    ("settings", lambda w: {"recorder": 1}, TypeError, "settings values must be mappings"),
    ("settings", lambda w: {"recorder": {1: 2}}, TypeError, "settings values must be mappings"),
    ("settings", lambda w: [("recorder", {})], TypeError, "settings must be a mapping"),
    ("programs", lambda w: {"x": 1}, TypeError, "programs values must be paths"),
    ("programs", lambda w: {"x": b"x.wasm"}, TypeError, "programs values must be paths"),
    ("programs", lambda w: [("x", "x.wasm")], TypeError, "programs must be a mapping"),
    ("programs", lambda w: {1: "x.wasm"}, TypeError, "programs keys must be str"),
]


def _case_id(case: tuple[str, Callable[[Path], object], type[Exception], str]) -> str:
    name, _value, exc, text = case
    return f"{name}-{exc.__name__}-{re.sub(r'[^A-Za-z0-9]+', '_', text)[:40]}"


def _assert_nothing_ran(work: Path) -> None:
    assert not (work / "ran").exists(), "the guest ran"
    assert Recorder.loaded == [], "the plugins loaded"


def test_the_base_call_runs_the_guest_and_loads_the_plugins(echo_guest: Path, work: Path) -> None:
    """The control for every refused call below: with nothing wrong, both marks appear."""
    for entry in ENTRY_POINTS.values():
        (work / "ran").unlink(missing_ok=True)
        Recorder.loaded.clear()
        arguments = _base(echo_guest, work)
        result = entry(arguments)
        if isinstance(result, wassh.Process):
            assert result.run() == 0
        else:
            assert result == 0
        assert (work / "ran").exists()
        assert len(Recorder.loaded) >= 1
        assert arguments["stdout"].data == b"echo\0x\0in\n"


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("case", WRONG, ids=_case_id)
def test_a_wrong_argument_is_refused_by_name_before_anything_runs(
    echo_guest: Path,
    work: Path,
    entry: str,
    case: tuple[str, Callable[[Path], object], type[Exception], str],
) -> None:
    name, value, exc, text = case
    arguments = {**_base(echo_guest, work), name: value(work)}
    with pytest.raises(exc) as raised:
        ENTRY_POINTS[entry](arguments)
    assert name in str(raised.value)
    assert text in str(raised.value)
    _assert_nothing_ran(work)


@pytest.mark.parametrize("case", WRONG, ids=_case_id)
def test_the_checks_come_before_the_module_is_read(
    tmp_path: Path, work: Path, case: tuple[str, Callable[[Path], object], type[Exception], str]
) -> None:
    """A file that is no module would fail to compile: the wrong argument is found first."""
    not_wasm = tmp_path / "not.wasm"
    not_wasm.write_bytes(b"not a module")
    name, value, exc, text = case
    arguments = {**_base(not_wasm, work), name: value(work)}
    with pytest.raises(exc, match=re.escape(text)):
        wassh.prepare(**arguments)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_an_unknown_keyword_is_pythons_type_error(echo_guest: Path, work: Path, entry: str) -> None:
    arguments = {**_base(echo_guest, work), "stdn": b""}
    with pytest.raises(TypeError, match="unexpected keyword argument 'stdn'"):
        ENTRY_POINTS[entry](arguments)
    _assert_nothing_ran(work)


@pytest.mark.parametrize("entry", ["run", "run_sync"])
def test_run_takes_no_trio_token(echo_guest: Path, work: Path, entry: str) -> None:
    """``run`` uses the loop it is called on; ``run_sync`` starts its own."""
    arguments = {**_base(echo_guest, work), "trio_token": None}
    with pytest.raises(TypeError, match="trio_token"):
        ENTRY_POINTS[entry](arguments)
    _assert_nothing_ran(work)


def test_prepare_refuses_what_is_no_trio_token(echo_guest: Path, work: Path) -> None:
    arguments = {**_base(echo_guest, work), "trio_token": "token"}
    with pytest.raises(TypeError, match=re.escape("trio_token must be a trio.lowlevel.TrioToken")):
        wassh.prepare(**arguments)
    _assert_nothing_ran(work)


def test_a_closed_file_object_is_refused(echo_guest: Path, work: Path) -> None:
    closed = open(work / "closed", "wb")  # noqa: SIM115 (closed at once: that is the point)
    closed.close()
    arguments = {**_base(echo_guest, work), "stdout": closed}
    with pytest.raises(TypeError, match=r"stdout must be .* without a file descriptor"):
        wassh.prepare(**arguments)
    _assert_nothing_ran(work)


def test_a_run_cancelled_before_its_guest_starts_returns(echo_guest: Path, work: Path) -> None:
    """The embedder's scope is cancelled already: ``run`` raises Cancelled, starts nothing."""
    caught: list[bool] = []

    async def main() -> None:
        with trio.CancelScope() as scope:
            scope.cancel()
            await wassh.run(**_base(echo_guest, work))
        caught.append(scope.cancelled_caught)

    # A thread: a run that never returns must fail this test, not hang the suite.
    runner = threading.Thread(target=trio.run, args=(main,), daemon=True)
    runner.start()
    runner.join(60)
    assert not runner.is_alive(), "run did not return"
    assert caught == [True]
    assert not (work / "ran").exists()


# -- every accepted shape still works ------------------------------------------------------


def _run(guest: Path, work: Path, **changes: object) -> tuple[int, bytes, bytes]:
    out, err = wassh.Capture(), wassh.Capture()
    arguments: dict[str, Any] = {**_base(guest, work), "stdout": out, "stderr": err, **changes}
    code = wassh.run_sync(**arguments)
    return code, bytes(out.data), bytes(err.data)


def test_stdin_as_bytes_bytearray_descriptor_and_file_object(echo_guest: Path, work: Path) -> None:
    assert _run(echo_guest, work, stdin=b"bytes\n")[1] == b"echo\0x\0bytes\n"
    assert _run(echo_guest, work, stdin=bytearray(b"array\n"))[1] == b"echo\0x\0array\n"
    read_end, write_end = os.pipe()
    os.write(write_end, b"pipe\n")
    os.close(write_end)
    try:
        assert _run(echo_guest, work, stdin=read_end)[1] == b"echo\0x\0pipe\n"
    finally:
        os.close(read_end)
    (work / "input").write_bytes(b"file\n")
    with open(work / "input", "rb") as stdin:
        assert _run(echo_guest, work, stdin=stdin)[1] == b"echo\0x\0file\n"


def test_stdout_and_stderr_as_descriptor_file_object_and_callable(
    echo_guest: Path, work: Path
) -> None:
    chunks: list[bytes] = []
    with open(work / "out", "wb") as out_file:
        out_file.write(b"before\n")  # buffered: flushed before the guest writes
        err_fd = os.open(work / "err", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            code = wassh.run_sync(
                echo_guest,
                ["echo"],
                stdin=b"data\n",
                stdout=out_file,
                stderr=err_fd,
                entry_points=False,
            )
        finally:
            os.close(err_fd)
    assert code == 0
    assert (work / "out").read_bytes() == b"before\necho\0data\n"
    assert (work / "err").read_bytes() == b"data\n"
    code = wassh.run_sync(
        echo_guest, ["echo"], stdin=b"data\n", stdout=wassh.Capture(), stderr=chunks.append
    )
    assert code == 0 and b"".join(chunks) == b"data\n"


def test_argv_env_and_dirs_in_each_shape(echo_guest: Path, work: Path) -> None:
    code, out, _ = _run(
        echo_guest, work, argv=("echo", "tuple"), env=MappingProxyType({"A": "1", "B": "2"})
    )
    assert code == 0 and out == b"echo\0tuple\0A=1\0B=2\0in\n"
    for dirs in ([f"{work}::/out"], [str(work)], ((str(work), "/out"),)):
        (work / "ran").unlink(missing_ok=True)
        assert _run(echo_guest, work, dirs=dirs)[0] == 0
        assert (work / "ran").exists(), dirs


def test_argv_defaults_to_the_file_name(echo_guest: Path, work: Path) -> None:
    arguments = {**_base(echo_guest, work), "argv": None}
    proc = wassh.prepare(**arguments)
    assert proc.config.argv == ["echo.wasm"]


def test_hosts_block_and_plugins_in_each_shape(echo_guest: Path, work: Path) -> None:
    proc = wassh.prepare(
        echo_guest,
        hosts={"one.test": "127.0.0.1", "two.test": ("127.0.0.1", "::1")},
        block={"websocket"},
        plugins=(Recorder, SimpleNamespace(name="namespace_plugin"), ModuleType("module_plugin")),
        stdin=b"",
        stdout=wassh.Capture(),
    )
    assert proc.transports.config.hosts == {
        "one.test": ["127.0.0.1"],
        "two.test": ["127.0.0.1", "::1"],
    }
    assert proc.transports.pm.is_blocked("websocket")
    for name in ("recorder", "namespace_plugin", "module_plugin"):
        assert proc.transports.pm.get_plugin(name) is not None


def _typing_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("embedding_ok", TYPING / "embedding_ok.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_typed_example_runs(echo_guest: Path, work: Path) -> None:
    """What the types accept, the checks accept: the mypy-clean example runs as written."""
    example = _typing_example()
    out_fd = os.open(work / "prepared", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        proc = example.prepare_with_every_argument(echo_guest, work, out_fd)
        assert proc.run() == 0
    finally:
        os.close(out_fd)
    assert (work / "prepared").read_bytes() == (
        b"echo\0prepared\0ONE=1\0from bytearray\nfrom bytearray\n"
    )
    (work / "stdin").write_bytes(b"from a file\n")
    assert trio.run(example.run_with_every_argument, echo_guest, work) == 0
    assert (work / "stdout").read_bytes() == b"echo\0run\0TWO=2\0from a file\n"
    code, received = example.run_sync_with_every_argument(echo_guest, work)
    assert code == 0
    # stdout and stderr are the same Capture: the echo to stderr follows each chunk.
    assert received == b"echo\0sync\0from a pipe\nfrom a pipe\n"
    proc = example.prepare_on_a_loop(echo_guest)
    assert isinstance(proc, wassh.Process)


# -- the types, as mypy sees them --------------------------------------------------------------


def _mypy(path: Path) -> list[tuple[int, str]]:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "wassh-tests"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--no-pretty",
            "--cache-dir",
            str(cache / f"mypy-{path.stem}"),
            str(path.relative_to(ROOT)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode in (0, 1), done.stderr or done.stdout
    errors = []
    for line in done.stdout.splitlines():
        found = re.match(rf"{re.escape(str(path.relative_to(ROOT)))}:(\d+): error: (.*)", line)
        if found:
            errors.append((int(found[1]), found[2]))
        else:
            assert ": note: " in line, line  # nothing but errors and their notes
    return errors


def _expected(path: Path) -> dict[int, str]:
    marks = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        found = re.search(r"# E: (.+)$", line)
        if found:
            marks[number] = found[1].strip()
    return marks


def test_mypy_accepts_the_typed_example_and_reports_each_wrong_call() -> None:
    assert _mypy(TYPING / "embedding_ok.py") == []
    bad = TYPING / "embedding_bad.py"
    expected = _expected(bad)
    assert len(expected) >= 30
    reported: dict[int, list[str]] = {}
    for number, message in _mypy(bad):
        reported.setdefault(number, []).append(message)
    unmarked = {n: m for n, m in reported.items() if n not in expected}
    assert unmarked == {}
    missing = {
        n: text
        for n, text in expected.items()
        if not any(text in message for message in reported.get(n, []))
    }
    assert missing == {}
