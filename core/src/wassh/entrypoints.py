"""Installed entry points, found as ``importlib.metadata.entry_points`` finds them.

Importing ``importlib.metadata`` (email parsing, zipfile, csv, ...) costs about
30 ms, as much as the rest of a small guest's start-up. This module reads the
same files the same way: every ``*.dist-info`` and ``*.egg-info`` directory of
each ``sys.path`` directory, in ``os.listdir`` order grouped by normalized
name, the first distribution of a name winning, and each one's
``entry_points.txt`` parsed as importlib.metadata parses it. Nothing is cached:
a plugin installed or removed a moment ago is seen, as before.

Where the installation holds anything this reader does not handle (a zip or
egg on ``sys.path``, a finder that finds distributions of its own, an unusual
distribution directory name, a malformed ``entry_points.txt``), it asks
``importlib.metadata`` itself, so the answer is the same either way.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator
from functools import reduce
from importlib import import_module
from typing import Any

# importlib.metadata.EntryPoint.pattern
_PATTERN = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$")
_SUFFIXES = (".dist-info", ".egg-info")


class _Unusual(Exception):
    """Something only importlib.metadata itself reads right: ask it."""


class EntryPoint:
    """One entry point: ``name``, ``value`` (``module:attr``), ``group``."""

    __slots__ = ("_dist", "_where", "group", "name", "value")

    def __init__(self, name: str, value: str, group: str, where: str | None, dist: Any = None):
        self.name = name
        self.value = value
        self.group = group
        self._where = where  # the distribution's metadata directory
        self._dist = dist  # or importlib.metadata's distribution

    def __repr__(self) -> str:
        return f"EntryPoint(name={self.name!r}, value={self.value!r}, group={self.group!r})"

    def load(self) -> object:
        """The object the entry point names (importlib.metadata's ``EntryPoint.load``)."""
        match = _PATTERN.match(self.value)
        if match is None:
            raise ValueError(f"malformed entry point value {self.value!r}")
        module = import_module(match.group("module"))
        attrs = filter(None, (match.group("attr") or "").split("."))
        return reduce(getattr, attrs, module)

    @property
    def dist_name(self) -> str | None:
        """The ``Name`` its distribution's metadata declares (read only when asked)."""
        if self._dist is not None:
            name: str | None = self._dist.name
            return name
        if self._where is None:
            return None
        for filename in ("METADATA", "PKG-INFO"):
            text = _read(os.path.join(self._where, filename))
            if text is not None:
                return _header(text, "name")
        return None


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
        return None


def _header(text: str, wanted: str) -> str | None:
    for line in text.splitlines():
        if not line.strip():
            break  # the headers end at the first blank line
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == wanted:
            return value.strip()
    return None


def _normalize(name: str) -> str:
    # importlib.metadata.Prepared.normalize
    return re.sub(r"[-_.]+", "-", name).lower().replace("-", "_")


def _distributions(paths: list[str]) -> list[str]:
    """Metadata directories of unique distributions, in importlib.metadata's order."""
    meta_path_finders = [f for f in sys.meta_path if hasattr(f, "find_distributions")]
    from importlib.machinery import PathFinder

    if meta_path_finders != [PathFinder]:
        raise _Unusual("a finder of distributions besides PathFinder")
    seen: set[str] = set()
    found: list[str] = []
    for root in paths:
        if not isinstance(root, str):
            raise _Unusual(f"sys.path entry {root!r}")
        if root.lower().endswith(".egg"):
            raise _Unusual(f"egg on sys.path: {root}")
        try:
            children = os.listdir(root or ".")
        except OSError:
            if os.path.exists(root or "."):
                raise _Unusual(f"not a directory: {root}") from None
            continue  # importlib.metadata finds nothing there either
        # Grouped by normalized name, each group where its first member stands.
        groups: dict[str, list[str]] = {}
        for child in children:
            if not child.lower().endswith(_SUFFIXES):
                continue
            if not child.endswith(_SUFFIXES):
                raise _Unusual(f"metadata directory {child!r}")
            stem = child.rpartition(".")[0]
            name = stem.partition("-")[0]
            if not name:
                raise _Unusual(f"metadata directory {child!r}")
            groups.setdefault(_normalize(name), []).append(child)
        for name, members in groups.items():
            for child in members:
                # Every member of a group has the group's name: the first is the one.
                if name not in seen:
                    seen.add(name)
                    found.append(os.path.join(root, child))
    return found


def _parse(text: str, where: str, into: dict[str, list[EntryPoint]]) -> None:
    """``entry_points.txt`` as importlib.metadata's ``Sectioned`` reads it."""
    section: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]")
            continue
        if section is None:
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise _Unusual(f"malformed line {line!r} in {where}")
        into.setdefault(section, []).append(EntryPoint(name.strip(), value.strip(), section, where))


def _scan() -> dict[str, list[EntryPoint]] | None:
    """Every group's entry points; None where only importlib.metadata reads them right."""
    found: dict[str, list[EntryPoint]] = {}
    try:
        for where in _distributions(list(sys.path)):
            path = os.path.join(where, "entry_points.txt")
            # Most distributions have none: asking costs a third of failing to open.
            text = _read(path) if os.access(path, os.F_OK) else None
            if text is not None:
                _parse(text, where, found)
    except _Unusual:
        return None
    return found


class _Snapshot:
    """The installation's entry points, read once (``pinned``)."""

    def __init__(self) -> None:
        self.scanned = _scan()
        self.asked: dict[str, list[EntryPoint]] = {}  # importlib.metadata's answers

    def get(self, group: str) -> list[EntryPoint]:
        if self.scanned is not None:
            return list(self.scanned.get(group, ()))
        if group not in self.asked:
            self.asked[group] = _from_importlib(group)
        return list(self.asked[group])


_pins: list[_Snapshot | None] = []  # innermost ``pinned()`` last; None until first asked


def entry_points(group: str) -> list[EntryPoint]:
    """The entry points of ``group``, in the order ``importlib.metadata`` gives them."""
    if not _pins:
        scanned = _scan()
        return list(scanned.get(group, ())) if scanned is not None else _from_importlib(group)
    snapshot = _pins[-1]
    if snapshot is None:
        snapshot = _pins[-1] = _Snapshot()
    return snapshot.get(group)


@contextlib.contextmanager
def pinned() -> Iterator[None]:
    """Within it the installation is read once: a command line's plugins are fixed
    from its start (its options, its commands and its run see the same set)."""
    _pins.append(None)
    try:
        yield
    finally:
        _pins.pop()


def _from_importlib(group: str) -> list[EntryPoint]:
    from importlib.metadata import entry_points as find_entry_points

    return [
        EntryPoint(ep.name, ep.value, ep.group, None, ep.dist)
        for ep in find_entry_points(group=group)
    ]
