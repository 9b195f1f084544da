"""Build C test guests once and cache them by content (zig is slow to start)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

GUESTS = Path(__file__).parent / "guests"


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wassh-tests"


def _sdk_fingerprint() -> bytes:
    import wassh

    sdk = Path(wassh.__file__).parent / "sdk"
    h = hashlib.sha256()
    for p in sorted(sdk.rglob("*")):
        if p.is_file():
            # Relative: the same SDK installed elsewhere (a wheel's venv) reuses the builds.
            h.update(p.relative_to(sdk).as_posix().encode() + p.read_bytes())
    h.update((Path(wassh.__file__).parent / "cc.py").read_bytes())
    return h.digest()


def build_guest(src: Path, *, sdk: bool = False, extra: tuple[str, ...] = ()) -> Path:
    """Compile ``src`` to wasm32-wasi (with the guest SDK when ``sdk``); returns the .wasm."""
    src = Path(src)
    h = hashlib.sha256(src.read_bytes() + repr(extra).encode())
    if sdk:
        h.update(_sdk_fingerprint())
    out = _cache_root() / f"{src.stem}-{'sdk-' if sdk else ''}{h.hexdigest()[:16]}.wasm"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=out.parent, suffix=".wasm.tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if sdk:
            from wassh.cc import compile_c

            compile_c([src], tmp, extra)
        else:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "ziglang",
                    "cc",
                    "-target",
                    "wasm32-wasi",
                    "-O2",
                    *extra,
                    str(src),
                    "-o",
                    str(tmp),
                ],
                check=True,
                capture_output=True,
            )
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
