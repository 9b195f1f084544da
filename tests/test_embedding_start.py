"""A module that cannot start is one ``wassh.StartError`` with a one-line reason, from
the embedding API as from the command line: never wasmtime's raw errors.

Each case is run through ``run_sync`` (a path), ``prepare`` + ``Process.run`` and the
async ``run``; all three must say the same thing before any guest code runs.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest
import trio
import wasmtime
import wassh

GOOD_START = '(func (export "_start"))'
MEMORY = '(memory (export "memory") 1)'

CASES = {
    "unknown-import": (
        f'(module (import "env" "f" (func)) {MEMORY} {GOOD_START})',
        "the module cannot run: it imports the function env.f, which this host does not provide",
    ),
    "imported-memory": (
        f'(module (import "env" "memory" (memory 1)) {GOOD_START})',
        "the module cannot run: it imports the memory env.memory, which this host does not provide",
    ),
    "no-memory": (
        f"(module {GOOD_START})",
        "the module cannot run: it exports no memory named 'memory' (not a WASI command module)",
    ),
    "no-start": (
        f"(module {MEMORY})",
        "the module cannot run: it has no _start function (not a WASI command module)",
    ),
    "start-takes-parameters": (
        f'(module {MEMORY} (func (export "_start") (param i32)))',
        "the module cannot run: its _start function takes parameters or returns values",
    ),
}


def _write(tmp_path: Path, name: str, wat: str) -> Path:
    path = tmp_path / f"{name}.wasm"
    path.write_bytes(wasmtime.wat2wasm(wat))
    return path


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_module_that_is_not_a_command_raises_start_error(tmp_path: Path, case: str) -> None:
    wat, said = CASES[case]
    path = _write(tmp_path, case, wat)
    with pytest.raises(wassh.StartError) as sync_error:
        wassh.run_sync(path, entry_points=False)
    assert str(sync_error.value) == said

    proc = wassh.prepare(path, entry_points=False)
    with pytest.raises(wassh.StartError) as run_error:
        proc.run()
    assert str(run_error.value) == said

    async def main() -> int:
        return await wassh.run(path, entry_points=False)

    with pytest.raises(wassh.StartError) as async_error:
        trio.run(main)
    assert str(async_error.value) == said


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"\0asm\x01\0\0\0garbage", "failed to parse WebAssembly module"),
        (b"\0asm\x02\0\0\0", "failed to parse WebAssembly module"),
        (b"", "failed to parse WebAssembly module"),
    ],
)
def test_bytes_that_are_not_webassembly_raise_start_error_in_prepare(
    tmp_path: Path, content: bytes, said: str
) -> None:
    path = tmp_path / "bad.wasm"
    path.write_bytes(content)
    with pytest.raises(wassh.StartError) as error:
        wassh.prepare(path, entry_points=False)
    message = str(error.value)
    assert message.startswith(f"{path} is not a usable WebAssembly module: "), message
    assert said in message and "\n" not in message


def test_a_memory_limit_below_the_module_minimum_raises_start_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "big", f'(module (memory (export "memory") 20) {GOOD_START})')
    with pytest.raises(wassh.StartError) as error:
        wassh.run_sync(path, entry_points=False, max_memory=65536)
    message = str(error.value)
    assert message.startswith("the module cannot start: ") and "limit" in message, message
    assert "\n" not in message
    # The same module runs with room for its memory.
    assert wassh.run_sync(path, entry_points=False, max_memory=20 * 65536) == 0


def test_a_trapping_start_section_is_a_guest_trap(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "startsection",
        f"(module {MEMORY} (func $boom unreachable) (start $boom) {GOOD_START})",
    )
    with pytest.raises(wassh.GuestTrap) as trap:
        wassh.run_sync(path, entry_points=False)
    assert trap.value.exit_status == 134


def test_a_missing_file_is_the_os_error() -> None:
    with pytest.raises(FileNotFoundError):
        wassh.prepare("/nonexistent/guest.wasm", entry_points=False)


def test_start_error_is_public() -> None:
    assert "StartError" in wassh.__all__
    assert issubclass(wassh.StartError, RuntimeError)


def _open_descriptors() -> int:
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


def test_many_prepared_or_refused_processes_leave_no_descriptor(tmp_path: Path) -> None:
    """An embedder that prepares guests it never runs, or whose start is refused,
    gets its descriptors back: each Process holds a wake pipe until it ends or goes."""
    good = _write(tmp_path, "good", f"(module {MEMORY} {GOOD_START})")
    bad = _write(tmp_path, "bad", f"(module {MEMORY})")
    wassh.prepare(good, entry_points=False)  # warm: the module cache, lazy imports
    before = _open_descriptors()
    for _ in range(50):
        wassh.prepare(good, entry_points=False)
        with pytest.raises(wassh.StartError):
            wassh.prepare(bad, entry_points=False).run()
        assert wassh.run_sync(good, entry_points=False) == 0
    # 150 processes: two descriptors each would be 300; a few may be a test server's.
    assert _open_descriptors() - before <= 3
