"""Guest traps as a typed exception, and their short report for a terminal.

A trap (``unreachable``, an out-of-bounds access, stack exhaustion, division by
zero) is the guest's crash. Embedders get ``GuestTrap`` with the wasm backtrace
as plain values (wasmtime's frames die with the trap object); the command line
prints ``GuestTrap.report()`` and exits with 134, as a native program killed by
SIGABRT would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import wasmtime

TRAP_EXIT_STATUS = 134  # 128 + SIGABRT: what a shell shows for a native crash of this kind
_SHORT_FRAMES = 8


@dataclass(frozen=True)
class TrapFrame:
    """One wasm frame of a trap's backtrace, innermost first."""

    func_index: int
    func_name: str | None  # from the module's name section, if it has one
    module_name: str | None
    func_offset: int | None  # of the trapping instruction, from the function's start
    module_offset: int | None

    @property
    def name(self) -> str:
        return self.func_name or f"<wasm function {self.func_index}>"


def _offset(value: int) -> int | None:
    # wasmtime reports an unknown offset (a frame cut short by stack exhaustion) as -1.
    return None if value >= (1 << 63) or value < 0 else value


class GuestTrap(Exception):
    """The guest trapped: ``reason`` says why, ``frames`` where (innermost first)."""

    exit_status = TRAP_EXIT_STATUS

    def __init__(
        self,
        reason: str,
        frames: list[TrapFrame] | None = None,
        trap_code: wasmtime.TrapCode | None = None,
        details: str = "",
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.frames = list(frames or [])
        self.trap_code = trap_code
        self.details = details  # wasmtime's full message

    @classmethod
    def from_wasmtime(cls, error: wasmtime.Trap | wasmtime.WasmtimeError) -> GuestTrap:
        message = str(error)
        frames: list[TrapFrame] = []
        code = None
        if isinstance(error, wasmtime.Trap):
            code = error.trap_code
            for f in error.frames:
                frames.append(
                    TrapFrame(
                        func_index=f.func_index,
                        func_name=f.func_name,
                        module_name=f.module_name,
                        func_offset=_offset(f.func_offset),
                        module_offset=_offset(f.module_offset),
                    )
                )
        return cls(_reason(message), frames, code, message)

    def report(self, program: str = "guest", verbose: bool = False) -> str:
        """A few lines for stderr: the reason and the innermost frames (all of them if verbose)."""
        lines = [f"wassh: {program}: wasm trap: {self.reason}"]
        runs: list[tuple[TrapFrame, int]] = []  # recursion shows as one line with a count
        for frame in self.frames:
            if runs and _same_place(runs[-1][0], frame, verbose):
                runs[-1] = (runs[-1][0], runs[-1][1] + 1)
            else:
                runs.append((frame, 1))
        shown = runs if verbose else runs[:_SHORT_FRAMES]
        for frame, count in shown:
            line = f"    at {frame.name}"
            if verbose:
                line += f" (function {frame.func_index}"
                if frame.func_offset is not None:
                    line += f" +{frame.func_offset:#x}"
                if frame.module_offset is not None:
                    line += f", module offset {frame.module_offset:#x}"
                line += ")"
            if count > 1:
                line += f" (x{count})"
            lines.append(line)
        if len(runs) > len(shown):
            lines.append(f"    ... {len(runs) - len(shown)} more (-v shows all)")
        return "\n".join(lines) + "\n"


def _same_place(a: TrapFrame, b: TrapFrame, exact: bool) -> bool:
    if exact:
        return (a.func_index, a.func_offset) == (b.func_index, b.func_offset)
    return a.name == b.name


_CAUSE = re.compile(r"^(?:\d+:\s*)?(?:wasm trap:\s*)?(.*)$")


def _reason(message: str) -> str:
    """The cause out of wasmtime's message: its last line ("1: wasm trap: ..."), bare."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return "unknown trap"
    match = _CAUSE.match(lines[-1])
    return (match.group(1) if match else "") or lines[-1]


__all__ = ["TRAP_EXIT_STATUS", "GuestTrap", "TrapFrame"]
