"""wassh.entrypoints finds what importlib.metadata finds, in the same order."""

from __future__ import annotations

import importlib.metadata
import sys
import zipfile
from pathlib import Path

import pytest
from wassh import entrypoints


def _theirs(group: str) -> list[tuple[str, str, str, str | None]]:
    return [
        (ep.name, ep.value, ep.group, ep.dist.name if ep.dist else None)
        for ep in importlib.metadata.entry_points(group=group)
    ]


def _ours(group: str) -> list[tuple[str, str, str, str | None]]:
    return [(ep.name, ep.value, ep.group, ep.dist_name) for ep in entrypoints.entry_points(group)]


def _groups() -> set[str]:
    found = {"wassh", "wassh.commands", "no.such.group"}
    for dist in importlib.metadata.distributions():
        found.update(ep.group for ep in dist.entry_points)
    return found


def _dist(root: Path, dirname: str, name: str, entry_points: str | None) -> None:
    where = root / dirname
    where.mkdir()
    (where / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    if entry_points is not None:
        (where / "entry_points.txt").write_text(entry_points)


def test_this_installation() -> None:
    for group in sorted(_groups()):
        assert _ours(group) == _theirs(group), group


def test_order_duplicates_and_odd_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    _dist(first, "Some_Plugin-2.0.dist-info", "Some-Plugin", "[wassh]\na = mod_a:A\n")
    _dist(first, "other-1.0.dist-info", "other", "# comment\n[wassh]\n  b =  mod_b : B [x] \n")
    _dist(first, "some.plugin-1.0.dist-info", "some.plugin", "[wassh]\nshadowed = x\n")
    _dist(second, "some_plugin-3.0.dist-info", "some_plugin", "[wassh]\nalso = shadowed\n")
    _dist(
        second,
        "third-1.0.egg-info",
        "third",
        "stray = before any section\n\n[[wassh]]\nc = mod_c\n[wassh.commands]\nd = mod_d:d\n",
    )
    _dist(second, "nothing-1.0.dist-info", "nothing", None)
    (second / "legacy-1.0.egg-info").write_text("Metadata-Version: 1.0\nName: legacy\n")
    monkeypatch.setattr(sys, "path", [str(first), str(tmp_path / "missing"), str(second)])
    for group in ("wassh", "wassh.commands", "[wassh]"):
        assert _ours(group) == _theirs(group), group
    # One of the two directories named some-plugin wins (whichever listdir gives first).
    names = sorted(ep.name for ep in entrypoints.entry_points("wassh"))
    assert names in (["a", "b", "c"], ["b", "c", "shadowed"])


def test_unusual_installations_ask_importlib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("zipped-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: zipped\n")
        z.writestr("zipped-1.0.dist-info/entry_points.txt", "[wassh]\nz = zipped:Z\n")
    monkeypatch.setattr(sys, "path", [str(archive)])
    assert _ours("wassh") == _theirs("wassh") == [("z", "zipped:Z", "wassh", "zipped")]

    plain = tmp_path / "plain"
    plain.mkdir()
    _dist(plain, "broken-1.0.dist-info", "broken", "[wassh]\nno equals sign\n")
    monkeypatch.setattr(sys, "path", [str(plain)])
    with pytest.raises(TypeError):  # importlib.metadata's own failure, as before
        entrypoints.entry_points("wassh")


def test_loading_and_pinning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pinmod.py").write_text("class Outer:\n    class Inner:\n        pass\n")
    _dist(tmp_path, "pinmod-1.0.dist-info", "pinmod", "[wassh]\np = pinmod:Outer.Inner\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    (ep,) = entrypoints.entry_points("wassh")
    assert ep.load().__qualname__ == "Outer.Inner"
    with entrypoints.pinned():
        assert [e.name for e in entrypoints.entry_points("wassh")] == ["p"]
        (tmp_path / "pinmod-1.0.dist-info" / "entry_points.txt").write_text("[wassh]\n")
        assert [e.name for e in entrypoints.entry_points("wassh")] == ["p"]  # read once
    assert entrypoints.entry_points("wassh") == []  # and afresh outside
