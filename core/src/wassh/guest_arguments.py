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
) -> tuple[list[str], list[str]]:
    """``run``'s arguments (after ``run``) -> (wassh's, through the program's path;
    the guest's). ``options`` maps each of ``run``'s option strings to its action."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":  # wassh's options end; the program's path is next
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        if _takes_a_value(options, arg):
            i += 1
        i += 1
    if i >= len(argv):
        return argv, []  # no program: argparse says so
    guest = argv[i + 1 :]
    if guest[:1] == ["--"]:
        guest = guest[1:]
    return argv[: i + 1], guest


def _takes_a_value(options: Mapping[str, argparse.Action], arg: str) -> bool:
    """True when ``arg`` is an option whose value is the next argument."""
    if not arg.startswith("--"):
        return False  # -v, -q, -h and their combinations: run has no short option with a value
    name, given, _ = arg.partition("=")
    action = options.get(name)
    if action is None:  # argparse takes an unambiguous abbreviation of a long option
        found = {options[o] for o in options if o.startswith(name) and o.startswith("--")}
        action = found.pop() if len(found) == 1 else None
    # An unknown option takes nothing: argparse reports it, in one line.
    return action is not None and not given and action.nargs != 0
