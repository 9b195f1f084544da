"""The compiled-module cache on disk: where it is, its size bound, eviction.

Each entry is one ``<key>.cwasm`` file, written under a temporary name and
renamed into place, so a reader sees a whole entry or none. Several processes
may compile, read and evict at once: any file may vanish between listing and
use, and that is never an error. An entry's modification time is when it was
last used (a hit touches it), which makes eviction least-recently-used.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX = 512 << 20
MAX_ENV = "WASSH_CACHE_MAX"
SUFFIX = ".cwasm"
# A temporary file this old is a crashed writer's: no compile takes an hour.
_STALE_TEMP = 3600.0
_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


class CacheSizeError(ValueError):
    """A bad size bound; one line for the user."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "wassh" / "modules"


def parse_size(text: str) -> int:
    """``1048576``, ``64K``, ``512M``, ``2G`` (or ``512MiB``) -> bytes.

    :raises CacheSizeError: naming the text.
    """
    body = text.strip().upper().removesuffix("IB").removesuffix("B")
    scale = _UNITS.get(body[-1:], 1)
    digits = body[:-1] if scale != 1 else body
    if not digits.isascii() or not digits.isdigit():
        raise CacheSizeError(f"bad size {text!r}: bytes, or a number with K, M or G")
    return int(digits) * scale


def max_bytes() -> int:
    """The bound ``WASSH_CACHE_MAX`` sets (``DEFAULT_MAX`` when unset or empty).

    :raises CacheSizeError: one line naming the variable.
    """
    text = os.environ.get(MAX_ENV, "")
    if not text.strip():
        return DEFAULT_MAX
    try:
        return parse_size(text)
    except CacheSizeError as exc:
        raise CacheSizeError(f"{MAX_ENV}: {exc}") from None


@dataclass(frozen=True)
class Entry:
    path: Path
    size: int
    used: float  # the modification time: its last use


def entries(directory: Path | None = None) -> list[Entry]:
    """The cache's entries, least recently used first (vanished ones left out)."""
    where = cache_dir() if directory is None else directory
    found: list[Entry] = []
    try:
        names = os.listdir(where)
    except OSError:
        return found
    for name in names:
        if not name.endswith(SUFFIX):
            continue
        path = where / name
        try:
            st = path.stat()
        except OSError:
            continue  # evicted or replaced by another process meanwhile
        found.append(Entry(path, st.st_size, st.st_mtime))
    found.sort(key=lambda e: (e.used, e.path.name))
    return found


def touch(path: Path) -> None:
    """Mark an entry used now (a read-only cache stays as it is)."""
    try:
        os.utime(path)
    except OSError:
        pass


def evict(limit: int, directory: Path | None = None) -> list[Entry]:
    """Remove least recently used entries until the rest fit in ``limit`` bytes.

    Returns what this call removed. Another process's concurrent eviction
    only means some files are already gone.
    """
    where = cache_dir() if directory is None else directory
    _drop_stale_temporaries(where)
    found = entries(where)
    total = sum(e.size for e in found)
    removed: list[Entry] = []
    for entry in found:
        if total <= limit:
            break
        total -= entry.size
        try:
            entry.path.unlink()
        except FileNotFoundError:
            continue
        except OSError:
            continue  # not ours to remove (permissions): it still counts, nothing to do
        removed.append(entry)
    return removed


def clear(directory: Path | None = None) -> list[Entry]:
    """Remove every entry (``wassh cache clear``)."""
    return evict(-1, directory)


def _drop_stale_temporaries(where: Path) -> None:
    try:
        names = [n for n in os.listdir(where) if n.endswith(".tmp")]
    except OSError:
        return
    now = time.time()
    for name in names:
        path = where / name
        try:
            if now - path.stat().st_mtime > _STALE_TEMP:
                path.unlink()
        except OSError:
            continue


def human(size: int) -> str:
    """``1536`` -> ``1.5 KiB``."""
    if size < 1024:
        return f"{size} bytes"
    value = size / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
