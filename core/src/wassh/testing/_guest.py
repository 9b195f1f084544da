"""The conformance guest: built once per SDK and source, run with a transport under test."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import trio

from .. import cc
from ..embed import run
from ..plugins import TransportConfig

GUEST_SOURCE = Path(__file__).resolve().parent / "guests" / "conform.c"
RESOLVER_GUEST_SOURCE = GUEST_SOURCE.with_name("resolve.c")


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wassh" / "testing"


def _fingerprint(source: Path) -> str:
    h = hashlib.sha256(source.read_bytes())
    for path in sorted(p for p in cc.SDK_DIR.rglob("*") if p.is_file()):
        if path.suffix in (".c", ".h"):
            h.update(path.relative_to(cc.SDK_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    h.update(Path(cc.__file__).read_bytes())
    try:
        h.update(metadata.version("ziglang").encode())
    except metadata.PackageNotFoundError:  # pragma: no cover - ziglang is a dependency
        pass
    return h.hexdigest()[:16]


def conformance_guest(source: Path = GUEST_SOURCE) -> Path:
    """The conformance guest as a ``.wasm`` file, compiled with ``wassh.cc`` if needed.

    Cached under ``$XDG_CACHE_HOME/wassh/testing/`` by the content of the
    source, the SDK and the compiler, so it is compiled once per change
    (zig takes seconds); concurrent builds never see a half-written file.
    """
    out = _cache_dir() / f"{source.stem}-{_fingerprint(source)}.wasm"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=out.parent, suffix=".wasm.tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        cc.compile_c([source], tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def resolver_guest() -> Path:
    """The resolver conformance guest (``guests/resolve.c``), built and cached likewise."""
    return conformance_guest(RESOLVER_GUEST_SOURCE)


class ConformanceFailure(AssertionError):
    """A conformance case found the transport behaving otherwise than declared."""


R = TypeVar("R")


def run_case(main: Callable[..., Awaitable[R]], *args: object) -> R:
    """``trio.run`` for a case: a failure raised inside a nursery reaches the test
    as the ``ConformanceFailure`` it is, not nested in trio's exception group."""
    try:
        return trio.run(main, *args)
    except BaseExceptionGroup as group:
        failures = group.subgroup(ConformanceFailure)
        if failures is None:
            raise
        first: BaseException = failures
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from group


class Output:
    """A guest's stdout or stderr as it arrives (written from the guest's thread)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def __call__(self, chunk: bytes) -> None:
        self.data += chunk

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()


class GuestRun:
    """One run of the conformance guest: its arguments, output and exit status.

    ``transport`` names the plugin under test, a ``role`` (``"resolver"``) in messages.
    """

    def __init__(self, transport: str, argv: Sequence[str], role: str = "transport") -> None:
        self.transport = transport
        self.role = role
        self.argv = list(argv)
        self.stdout = Output()
        self.stderr = Output()
        self.code: int | None = None
        self.cancelled = False
        self.seconds = 0.0

    @property
    def lines(self) -> list[str]:
        return self.stdout.lines

    def value(self, key: str) -> str:
        """The rest of the first output line whose first word is ``key``."""
        for line in self.lines:
            word, _, rest = line.partition(" ")
            if word == key:
                return rest
        raise ConformanceFailure(f"the guest printed no {key!r} line\n{self.describe()}")

    def values(self, key: str) -> list[str]:
        """The rest of every output line whose first word is ``key``."""
        found = []
        for line in self.lines:
            word, _, rest = line.partition(" ")
            if word == key:
                found.append(rest)
        return found

    async def wait_line(self, key: str, timeout: float = 20.0) -> str:
        """Wait (on the trio loop) until the guest printed a ``key`` line; its rest."""
        with trio.move_on_after(timeout):
            while True:
                for line in self.lines:
                    word, _, rest = line.partition(" ")
                    if word == key or line == key:
                        return rest
                if self.code is not None:
                    break
                await trio.sleep(0.01)
        raise ConformanceFailure(
            f"the guest printed no {key!r} line within {timeout} s\n{self.describe()}"
        )

    def describe(self) -> str:
        status = (
            "cancelled" if self.cancelled else "running" if self.code is None else str(self.code)
        )
        out = "\n".join("    " + line for line in self.lines) or "    (nothing)"
        err = self.stderr.text.strip()
        text = f"  {self.role} {self.transport!r}, guest: {' '.join(self.argv)}, exit {status}\n"
        text += f"  stdout:\n{out}\n"
        if err:
            text += "  stderr:\n" + "\n".join("    " + line for line in err.splitlines()) + "\n"
        return text


async def run_guest(
    wasm: Path,
    run_state: GuestRun,
    config: TransportConfig,
    options: dict[str, Any],
    *,
    timeout: float,
    program: str = "conform",
) -> GuestRun:
    """Run the guest to its end with ``wassh.run``; a hang fails after ``timeout`` seconds."""
    with trio.move_on_after(timeout) as deadline:
        run_state.code = await run(
            wasm,
            [program, *run_state.argv],
            stdin=b"",
            stdout=run_state.stdout,
            stderr=run_state.stderr,
            config=config,
            **options,
        )
    if deadline.cancelled_caught:
        raise ConformanceFailure(
            f"the guest did not finish within {timeout} s\n{run_state.describe()}"
        )
    return run_state
