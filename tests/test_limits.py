"""What one guest may take from the host: its linear memory is capped on request."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from guestbuild import build_guest
from suitekit import GUESTS

WASSH = str(Path(sys.executable).parent / "wassh")


@pytest.fixture(scope="session")
def hog() -> Path:
    return build_guest(GUESTS / "limits" / "hog.c")


def test_max_memory_caps_the_guest_and_growing_fails_cleanly(hog: Path) -> None:
    r = subprocess.run(
        [WASSH, "run", "--max-memory", "64M", str(hog)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r
    got = int(r.stdout.split()[0])
    # Grown 1 MiB at a time from its initial size: within a step of the cap, never past it.
    assert 63 <= got <= 64, r.stdout


@pytest.mark.parametrize("size", ["0", "5G", "12X", "-1M", "1.5G", "\u0663M"])
def test_bad_sizes_are_one_line(hog: Path, size: str) -> None:
    r = subprocess.run(
        [WASSH, "run", f"--max-memory={size}", str(hog)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2 and r.stdout == "", r
    assert len(r.stderr.splitlines()) == 1 and "bad size" in r.stderr, r.stderr
