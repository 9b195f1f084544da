"""The documents the code relies on say what the code does."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _registered() -> dict[str, int]:
    """wassh host calls -> parameter count, read from the registration table."""
    source = (ROOT / "core/src/wassh/abi/wassh_calls.py").read_text()
    calls = re.findall(r'(?:d|table\.define)\((?:module|WASSH), "(\w+)", "([is]*)"', source)
    return {name: len(signature) for name, signature in calls}


def _documented() -> dict[str, int]:
    text = (ROOT / "docs/abi.md").read_text()
    section = text.split("## The wassh calls", 1)[1].split("\n### ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| (.+) \|$", section, re.M)
    return {name: len(re.findall(r"`\w+`", params)) for name, params in rows}


def test_abi_md_lists_every_wassh_call_with_its_parameters() -> None:
    registered = _registered()
    assert len(registered) >= 20, registered
    assert _documented() == registered


def test_comments_cite_only_documents_in_the_repository() -> None:
    cited = set()
    for path in [*ROOT.glob("core/src/**/*.py"), *ROOT.glob("plugins/*/src/**/*.py")]:
        cited |= set(re.findall(r"\bdocs/[\w./-]+\.md", path.read_text()))
    assert cited, "no citations found: the pattern is wrong"
    missing = sorted(c for c in cited if not (ROOT / c).exists())
    assert missing == []
