"""Where ``wassh run``'s own arguments end and the guest's begin.

Everything after the program's path is the guest's, verbatim, but for one
``--`` right after the path. argparse cannot be asked for that: depending on
the Python version it drops the first ``--`` of the whole command line, so
``wassh run g.wasm -- --`` would give the guest nothing. The split is made
here, before argparse sees ``run``'s arguments, with ``run``'s own options.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping


def split_guest_arguments(
    options: Mapping[str, argparse.Action], argv: list[str]
) -> tuple[list[str], list[str]] | None:
    """``run``'s arguments (after ``run``) -> (wassh's, through the program's path;
    the guest's). ``options`` maps each of ``run``'s option strings to its action.

    None when wassh's part holds an option ``run`` does not have: argparse, given
    everything, says which in one line.
    """
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":  # wassh's options end; the program's path is next
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        takes = _takes_a_value(options, arg)
        if takes is None:
            return None
        i += 2 if takes else 1
    if i >= len(argv):
        return argv, []  # no program: argparse says so
    guest = argv[i + 1 :]
    if guest[:1] == ["--"]:
        guest = guest[1:]
    return argv[: i + 1], guest


def _takes_a_value(options: Mapping[str, argparse.Action], arg: str) -> bool | None:
    """Whether option ``arg``'s value is the next argument; None for no option of ``run``."""
    if not arg.startswith("--"):
        # -v, -q, -h and their combinations: run has no short option with a value.
        return False if all(f"-{c}" in options for c in arg[1:]) else None
    name, given, _ = arg.partition("=")
    action = options.get(name)
    if action is None:  # argparse takes an unambiguous abbreviation of a long option
        found = {options[o] for o in options if o.startswith(name) and o.startswith("--")}
        action = found.pop() if len(found) == 1 else None
    if action is None:
        return None
    return not given and action.nargs != 0
