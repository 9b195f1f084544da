"""Command-line parsing shared by ``wassh`` and the subcommands plugins add."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from _typeshed import SupportsWrite


def _columns() -> int:
    """``shutil.get_terminal_size().columns``, without importing shutil (~3 ms)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Formatter(argparse.HelpFormatter):
    """argparse's own formatter, as wide as argparse would make it.

    argparse sizes every formatter (one per ``add_argument``, to check its
    metavar) with ``shutil.get_terminal_size``, and importing shutil is a
    tenth of a small guest's start-up; the width is the same either way.
    """

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        super().__init__(
            prog, indent_increment, max_help_position, _columns() - 2 if width is None else width
        )


class OneLineArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line (plugin subcommands use it too)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if len(args) < 6:  # formatter_class is the sixth positional parameter
            kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        # argparse drops every OSError here; a closed pipe must reach wassh's main,
        # which ends with the status a closed pipe gives (as for any other output).
        if message:
            try:
                (file or sys.stderr).write(message)
            except BrokenPipeError:
                raise
            except (AttributeError, OSError):
                pass

    def error(self, message: str) -> NoReturn:
        # One clear line, not a usage dump: scripts and people read this.
        self.exit(2, f"wassh: {message} (see '{self.prog} --help')\n")
