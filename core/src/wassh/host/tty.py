"""The guest's view of the host terminal: termios attributes, restored at exit.

Attributes cross the ABI in Linux numbering (musl's ``<termios.h>``), which is
what a Linux host's ``termios`` module uses too; other hosts answer ENOTTY.
Before the guest first changes a terminal, its attributes are saved; they are
put back when the process ends, however it ends (a guest that dies in raw mode
must not leave the user's terminal raw). ``restore`` may also run on another
thread, when the host gives up on a guest that a signal could not stop.
"""

from __future__ import annotations

import os
import struct
import sys
import termios
import threading
from typing import Any

from ..abi.errno import Errno, WasiError
from .objects import OpenObject
from .stdio import HostStream

NCCS = 32
ICANON = 0o000002
VTIME = 5
VMIN = 6
# iflag, oflag, cflag, lflag, ispeed, ospeed, c_cc[32]
WIRE = struct.Struct("<6I32s")
_ACTIONS = {0: termios.TCSANOW, 1: termios.TCSADRAIN, 2: termios.TCSAFLUSH}
_SUPPORTED = sys.platform.startswith("linux")


def host_tty(obj: OpenObject) -> int:
    """The host descriptor of the terminal behind ``obj``; ENOTTY if there is none."""
    fd = obj.fd if isinstance(obj, HostStream) else None
    if fd is None or not _SUPPORTED or not os.isatty(fd):
        raise WasiError(Errno.ENOTTY)
    return fd


def encode(attrs: list[Any]) -> bytes:
    iflag, oflag, cflag, lflag, ispeed, ospeed, cc = attrs
    chars = bytearray(NCCS)
    for i, c in enumerate(cc[:NCCS]):
        chars[i] = c[0] if isinstance(c, bytes) else int(c)
    return WIRE.pack(iflag, oflag, cflag, lflag, ispeed, ospeed, bytes(chars))


def decode(raw: bytes) -> list[Any]:
    iflag, oflag, cflag, lflag, ispeed, ospeed, chars = WIRE.unpack(raw)
    cc: list[Any] = [bytes([c]) for c in chars]
    if not lflag & ICANON:
        cc[VMIN], cc[VTIME] = chars[VMIN], chars[VTIME]
    return [iflag, oflag, cflag, lflag, ispeed, ospeed, cc]


class Terminals:
    """Terminal attributes for one guest process, with the originals kept for exit."""

    def __init__(self) -> None:
        self._saved: dict[int, tuple[int, list[Any]]] = {}  # st_rdev -> (dup'd fd, attrs)
        self._lock = threading.Lock()  # one restore closes each saved fd once

    def get(self, obj: OpenObject) -> bytes:
        fd = host_tty(obj)
        try:
            return encode(termios.tcgetattr(fd))
        except termios.error as exc:
            raise WasiError(Errno.ENOTTY) from exc

    def set(self, obj: OpenObject, action: int, raw: bytes) -> None:
        fd = host_tty(obj)
        if action not in _ACTIONS:
            raise WasiError(Errno.EINVAL)
        try:
            device = os.fstat(fd).st_rdev
            if device not in self._saved:
                self._saved[device] = (os.dup(fd), termios.tcgetattr(fd))
            termios.tcsetattr(fd, _ACTIONS[action], decode(raw))
        except termios.error as exc:
            raise WasiError(Errno.EINVAL) from exc

    def restore(self) -> None:
        """Put every terminal the guest changed back as it was."""
        with self._lock:
            saved, self._saved = self._saved, {}
        for fd, attrs in saved.values():
            try:
                termios.tcsetattr(fd, termios.TCSADRAIN, attrs)
            except (termios.error, OSError):
                pass
            finally:
                os.close(fd)
