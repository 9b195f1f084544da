"""The same C test programs built natively with gcc: Linux's answers to compare with."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from guestbuild import _cache_root


def build_native(src: Path) -> Path:
    """``src`` compiled for this machine (cached by content); the executable's path."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise RuntimeError("the native comparison needs gcc (apt-get install gcc)")
    digest = hashlib.sha256(Path(src).read_bytes()).hexdigest()[:16]
    out = _cache_root() / f"{Path(src).stem}-native-{digest}"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=out.parent, suffix=".tmp")
    os.close(fd)
    try:
        subprocess.run([gcc, "-O1", "-Wall", str(src), "-o", tmp_name], check=True)
        os.replace(tmp_name, out)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return out


def run_native(exe: Path, *args: str) -> str:
    done = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout
