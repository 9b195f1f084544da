"""Command-line parsing shared by ``wassh`` and the subcommands plugins add."""

from __future__ import annotations

import argparse
from typing import NoReturn


class OneLineArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line (plugin subcommands use it too)."""

    def error(self, message: str) -> NoReturn:
        # One clear line, not a usage dump: scripts and people read this.
        self.exit(2, f"wassh: {message} (see '{self.prog} --help')\n")
