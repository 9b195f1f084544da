"""Fixtures of the proxy transport's tests: real danted and tinyproxy, guests, servers."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
# The project's shared test helpers (guest builds, echo servers, sshd), then ours.
for path in (ROOT / "tests", ROOT / "guests", HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from guestbuild import build_guest  # noqa: E402
from proxykit import Danted, Tinyproxy  # noqa: E402

GUESTS = ROOT / "tests" / "guests"


@pytest.fixture(scope="session")
def netclient() -> Path:
    return build_guest(GUESTS / "net" / "netclient.c", sdk=True)


@pytest.fixture
def danted(tmp_path: Path) -> Iterator[Danted]:
    proxy = Danted(tmp_path / "danted").start()
    yield proxy  # type: ignore[misc]
    proxy.stop()


@pytest.fixture
def danted_v6(tmp_path: Path) -> Iterator[Danted]:
    proxy = Danted(tmp_path / "danted6", host="::1").start()
    yield proxy  # type: ignore[misc]
    proxy.stop()


@pytest.fixture
def tinyproxy(tmp_path: Path) -> Iterator[Tinyproxy]:
    proxy = Tinyproxy(tmp_path / "tinyproxy").start()
    yield proxy  # type: ignore[misc]
    proxy.stop()
