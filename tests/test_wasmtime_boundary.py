"""What wassh takes from wasmtime-py beyond its public API is still there, as it was.

Everything is listed in ``wassh.abi.wasmtime_private``; a failure here names the
symbol that changed and says to review that module before trusting the new
wasmtime (a changed callback signature would not fail: it would crash a guest).
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import importlib.util
import tomllib
from pathlib import Path

import pytest
import wasmtime
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from wassh.abi import wasmtime_private as wp

CORE_PYPROJECT = Path(__file__).parents[1] / "core" / "pyproject.toml"
MODULE = "core/src/wassh/abi/wasmtime_private.py"


def pinned_wasmtime() -> SpecifierSet:
    project = tomllib.loads(CORE_PYPROJECT.read_text())["project"]
    pins = [Requirement(d) for d in project["dependencies"] if Requirement(d).name == "wasmtime"]
    assert len(pins) == 1, f"{CORE_PYPROJECT} must name wasmtime once among its dependencies"
    return pins[0].specifier


# -- the installed wasmtime ----------------------------------------------------------


@pytest.mark.parametrize("reliance", wp.RELIED_ON, ids=lambda r: r.name)
def test_relied_on_is_unchanged(reliance: wp.Reliance) -> None:
    found = reliance.probe()
    assert found == reliance.expected, (
        f"{reliance.name} ({reliance.why}) changed in wasmtime "
        f"{importlib.metadata.version('wasmtime')}:\n  expected {reliance.expected}\n"
        f"  found    {found}\nreview {MODULE}"
    )


def test_check_passes_on_the_installed_wasmtime() -> None:
    wp.check()


def test_library_file_exists() -> None:
    assert wp.LIBRARY_PATH.is_file(), f"no libwasmtime at {wp.LIBRARY_PATH}; review {MODULE}"


def test_raw_values_are_four_int32_slots() -> None:
    # hostcall's generated callbacks index arguments with this stride.
    assert wp.RAW_VALUE_SLOTS == 4, f"wasmtime_val_raw_t is no longer 16 bytes; review {MODULE}"


def test_pin_is_the_reviewed_range() -> None:
    pin = pinned_wasmtime()
    assert pin == SpecifierSet(wp.TESTED_WASMTIME), (
        f"core/pyproject.toml pins wasmtime{pin}, but {MODULE} was reviewed for "
        f"wasmtime{wp.TESTED_WASMTIME}: review that module against the new releases, "
        "then update TESTED_WASMTIME there"
    )


def test_installed_wasmtime_is_inside_the_pin() -> None:
    installed = Version(importlib.metadata.version("wasmtime"))
    pin = pinned_wasmtime()
    assert pin.contains(installed, prereleases=True), (
        f"wasmtime {installed} is installed, outside the pinned wasmtime{pin}: "
        f"review {MODULE} for it before widening the pin in core/pyproject.toml"
    )


# -- the checker fails loudly and specifically ---------------------------------------

MISSING = [r.name for r in wp.RELIED_ON if r.name.count(".") >= 2 and "/" not in r.name]


@pytest.mark.parametrize("dotted", MISSING)
def test_a_missing_symbol_is_named(monkeypatch: pytest.MonkeyPatch, dotted: str) -> None:
    owner_path, _, attr = dotted.rpartition(".")
    owner: object = wasmtime
    for part in owner_path.split(".")[1:]:
        owner = getattr(owner, part)
    monkeypatch.delattr(owner, attr)
    with pytest.raises(wp.WasmtimeBoundaryError) as failure:
        wp.check()
    message = str(failure.value)
    assert f"has no {dotted}" in message
    assert MODULE in message


def test_a_changed_signature_shows_both(monkeypatch: pytest.MonkeyPatch) -> None:
    # A function object of its own (a fresh CDLL), so wasmtime's stays untouched.
    fake = ctypes.CDLL(str(wp.LIBRARY_PATH)).wasmtime_trap_new
    fake.argtypes = [ctypes.POINTER(ctypes.c_char)]
    fake.restype = wasmtime._bindings._wasmtime_trap_new.restype
    monkeypatch.setattr(wasmtime._bindings, "_wasmtime_trap_new", fake)
    with pytest.raises(wp.WasmtimeBoundaryError) as failure:
        wp.check()
    message = str(failure.value)
    assert "wasmtime._bindings._wasmtime_trap_new" in message
    assert "expected (char*, u64) -> wasm_trap*" in message
    assert "found    (char*) -> wasm_trap*" in message


def test_a_changed_callback_type_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # The kind the deadline callback writes, widened: a cast would hide it, a write corrupt.
    real = wasmtime._bindings._wasmtime_store_epoch_deadline_callback
    fake = ctypes.CDLL(str(wp.LIBRARY_PATH)).wasmtime_store_epoch_deadline_callback
    store_t, callback_t, data_t, finalizer_t = real.argtypes
    fake.argtypes = [
        store_t,
        ctypes.CFUNCTYPE(
            callback_t._restype_, *callback_t._argtypes_[:3], ctypes.POINTER(ctypes.c_uint32)
        ),
        data_t,
        finalizer_t,
    ]
    fake.restype = None
    monkeypatch.setattr(wasmtime._bindings, "_wasmtime_store_epoch_deadline_callback", fake)
    with pytest.raises(wp.WasmtimeBoundaryError, match=r"u64\*, u32\*\) -> u64"):
        wp.check()


def test_a_wrong_handle_type_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wasmtime.Linker, "ptr", lambda _self: ctypes.c_void_p(0))
    with pytest.raises(wp.WasmtimeBoundaryError, match=r"Linker\.ptr\(\) is c_void_p"):
        wp.check()


def test_import_refuses_a_changed_wasmtime(monkeypatch: pytest.MonkeyPatch) -> None:
    # A separate copy of the module: reloading the real one would rebind what others hold.
    monkeypatch.delattr(wasmtime._bindings, "_wasmtime_error_new")
    spec = importlib.util.spec_from_file_location("wasmtime_private_copy", wp.__file__)
    assert spec is not None and spec.loader is not None
    copy = importlib.util.module_from_spec(spec)
    # The copy has a WasmtimeBoundaryError class of its own, a RuntimeError like the real one.
    with pytest.raises(RuntimeError) as failure:
        spec.loader.exec_module(copy)
    assert type(failure.value).__name__ == "WasmtimeBoundaryError"
    assert "wasmtime._bindings._wasmtime_error_new" in str(failure.value)
