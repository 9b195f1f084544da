"""How much ``wassh`` logs: ``-v``/``-q`` anywhere on the command line, or ``WASSH_LOG``.

Messages go to stderr as ``wassh: LOGGER: message``; those on the ``wassh``
logger itself are addressed to the user and read ``wassh: message``.
"""

from __future__ import annotations

import logging
import re

LOG_ENV = "WASSH_LOG"
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
_FLAG = re.compile(r"-(v+|q+)|--verbose|--quiet")


class VerbosityError(ValueError):
    """A bad ``WASSH_LOG``; one line for the user."""


def level(verbose: int, quiet: int, environ_value: str | None) -> int:
    """The logging level: flags win over the environment, which wins over WARNING.

    :raises VerbosityError: ``environ_value`` is no level name (checked even when
        flags win: a typo there is better told than silently ignored).
    """
    from_env = logging.WARNING
    if environ_value is not None and environ_value.strip():
        name = environ_value.strip().lower()
        if name not in LEVELS:
            raise VerbosityError(
                f"{LOG_ENV}={environ_value!r}: expected one of {', '.join(LEVELS)}"
            )
        from_env = LEVELS[name]
    if verbose or quiet:
        return max(logging.DEBUG, min(logging.CRITICAL, logging.WARNING - 10 * (verbose - quiet)))
    return from_env


def take_flags(argv: list[str]) -> tuple[list[str], int, int]:
    """A plugin command's arguments without ``-v``/``-q`` (and ``-vv``...) given after
    its name, which are wassh's; what follows ``--`` is the command's own."""
    kept: list[str] = []
    verbose = quiet = 0
    for i, arg in enumerate(argv):
        if arg == "--":
            kept.extend(argv[i:])
            break
        match = _FLAG.fullmatch(arg)
        if match is None:
            kept.append(arg)
        elif arg in ("--verbose", "--quiet"):
            verbose += arg == "--verbose"
            quiet += arg == "--quiet"
        elif arg[1] == "v":
            verbose += len(arg) - 1
        else:
            quiet += len(arg) - 1
    return kept, verbose, quiet


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.name == "wassh":
            return f"wassh: {text}"
        return f"wassh: {record.name}: {text}"


def configure(at: int) -> None:
    """Log to stderr at level ``at`` (once per process: later calls change nothing)."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(_Formatter())
    root.addHandler(handler)
    root.setLevel(at)
