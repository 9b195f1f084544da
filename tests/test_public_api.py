"""Plugins use only the public API; the per-socket hooks are called by their own names."""

from __future__ import annotations

import ast
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import wassh
from wassh import REQUIRED_HOOKS, hookspecs
from wassh.plugins import OWNER_HOOKS, SOCKET_HOOKS, Owner

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_SOURCES = sorted(p for p in (ROOT / "plugins").glob("*/src/*") if p.is_dir())
# Modules of the core that plugins may import; everything else is the core's own.
PUBLIC_MODULES = ("wassh", "wassh.os_socket", "wassh.policy", "wassh.events", "wassh.testing")


def _public_names(module: str) -> set[str]:
    try:
        loaded = importlib.import_module(module)
    except ImportError:
        return set()
    return set(getattr(loaded, "__all__", ()))


def _is_public(module: str, name: str) -> bool:
    return name in _public_names(module) or f"{module}.{name}" in PUBLIC_MODULES


def _wassh_imports(path: Path) -> list[tuple[int, str, str | None]]:
    """``(line, module, name)`` for each import of the core in a source file."""
    found: list[tuple[int, str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, None) for a in node.names if a.name.startswith("wassh")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(node.lineno, node.module, a.name) for a in node.names]
    return [f for f in found if f[1].split(".")[0] == "wassh"]


def test_every_plugin_imports_only_public_names() -> None:
    assert PLUGIN_SOURCES, "no plugin sources found"
    offences = []
    for package in PLUGIN_SOURCES:
        for path in package.rglob("*.py"):
            for line, module, name in _wassh_imports(path):
                where = f"{path.relative_to(ROOT)}:{line}"
                if module not in PUBLIC_MODULES:
                    offences.append(f"{where}: imports private module {module}")
                elif name is not None and not _is_public(module, name):
                    offences.append(f"{where}: {module}.{name} is not public")
    assert offences == []


BLOCKER = r"""
import importlib, json, pkgutil, sys, types
import wassh
public = set(json.loads(sys.argv[1]))
class Private(types.ModuleType):
    def __getattr__(self, name):
        raise ImportError(f"{self.__name__} is private to the core (plugin used {name})")
for name in [m for m in sys.modules if m.startswith("wassh.") and m not in public]:
    parent, _, child = name.rpartition(".")
    sys.modules[name] = Private(name)
    if parent in sys.modules and parent in public:
        try:
            delattr(sys.modules[parent], child)
        except AttributeError:
            pass
class Finder:
    def find_spec(self, fullname, path=None, target=None):
        if fullname.startswith("wassh.") and fullname not in public:
            raise ImportError(f"{fullname} is private to the core")
        return None
sys.meta_path.insert(0, Finder())
loaded = []
for package in sys.argv[2:]:
    pkg = importlib.import_module(package)
    loaded.append(package)
    for info in pkgutil.walk_packages(pkg.__path__, package + "."):
        importlib.import_module(info.name)
        loaded.append(info.name)
# Each installed transport builds its offer with nothing but the public API.
from importlib.metadata import entry_points
for ep in entry_points(group="wassh"):
    plugin = ep.load()
    plugin = plugin() if isinstance(plugin, type) else plugin
    plugin.wassh_transport_offer(config=wassh.TransportConfig(), settings={})
print(json.dumps(loaded))
"""


def test_plugin_modules_load_with_the_core_internals_unimportable() -> None:
    packages = [p.name for p in PLUGIN_SOURCES]
    r = subprocess.run(
        [sys.executable, "-c", BLOCKER, json.dumps(PUBLIC_MODULES), *packages],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    loaded = json.loads(r.stdout)
    # Every module, the relay server's too, was imported under the blocker.
    assert "wassh_transport_websocket.server" in loaded
    assert "wassh_transport_tcp.transport" in loaded


def test_the_blocker_does_catch_a_private_import(tmp_path: Path) -> None:
    """The check above can fail: a plugin reaching for ``wassh.plugins`` is stopped."""
    bad = tmp_path / "bad_plugin"
    bad.mkdir()
    (bad / "__init__.py").write_text("from wassh.plugins import Owner\n")
    r = subprocess.run(
        [sys.executable, "-c", BLOCKER, json.dumps(PUBLIC_MODULES), "bad_plugin"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert r.returncode != 0
    assert "wassh.plugins is private to the core" in r.stderr


def test_each_socket_hook_has_an_owner_slot_and_a_call_by_its_name() -> None:
    """One grep follows an operation: the core calls ``owner.wassh_sock_X`` for each hook
    (and ``owner.wassh_getaddrinfo`` for a name lookup)."""
    sockets = {n for n in dir(hookspecs) if n.startswith("wassh_sock_")}
    assert set(SOCKET_HOOKS) == sockets
    specs = sockets | {"wassh_getaddrinfo"}
    assert set(OWNER_HOOKS) == specs
    assert {s for s in Owner.__slots__ if s.startswith("wassh_")} == specs
    core = (ROOT / "core/src/wassh/host/sockets.py").read_text()
    core += (ROOT / "core/src/wassh/plugins.py").read_text()
    core += (ROOT / "core/src/wassh/names.py").read_text()
    for hook in specs:
        assert re.search(rf"\bowner\.{hook}\b", core), f"the core never calls {hook} by name"
    for kind, hooks in REQUIRED_HOOKS.items():
        assert set(hooks) <= specs, kind


@pytest.mark.parametrize("name", sorted(wassh.__all__))
def test_every_public_name_is_documented(name: str) -> None:
    obj = getattr(wassh, name)
    if isinstance(obj, str | int | frozenset | dict) or type(obj).__name__ == "mappingproxy":
        return  # constants: documented where they are defined
    assert (getattr(obj, "__doc__", None) or "").strip(), f"wassh.{name} has no docstring"
