"""Subcommands that plugin distributions add to ``wassh`` (``wassh relay``).

A distribution declares an entry point in the ``wassh.commands`` group whose
object is a ``PluginCommand``; ``wassh --help`` lists it, global options
(``-v``, ``-q``) apply before or after its name (before a ``--``), and the
other arguments after the command's name go to ``main``.
Keep the module the entry point names light: ``main`` imports the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .entrypoints import EntryPoint

COMMANDS_GROUP = "wassh.commands"
BUILT_IN = frozenset({"run", "cc", "transports", "cache"})

log = logging.getLogger("wassh.commands")


@dataclass(frozen=True)
class PluginCommand:
    """``help`` is the one line ``wassh --help`` shows; ``main(argv)`` returns the exit status."""

    help: str
    main: Callable[[list[str]], int]


def plugin_commands() -> dict[str, PluginCommand | str]:
    """Installed commands by name; a text instead of a command says why it cannot load."""
    from .entrypoints import entry_points

    found: dict[str, PluginCommand | str] = {}
    for ep in sorted(entry_points(COMMANDS_GROUP), key=lambda e: e.name):
        if ep.name in BUILT_IN or not ep.name.isidentifier():
            log.debug("ignoring plugin command %r: reserved or not a plain name", ep.name)
            continue
        try:
            loaded = ep.load()
        except Exception as exc:
            found[ep.name] = (
                f"{ep.value} from {_dist(ep)} failed to load: {type(exc).__name__}: {exc}"
            )
            continue
        if not isinstance(loaded, PluginCommand):
            found[ep.name] = f"{ep.value} from {_dist(ep)} is not a wassh.PluginCommand"
            continue
        found[ep.name] = loaded
    return found


def _dist(ep: EntryPoint) -> str:
    return ep.dist_name or "unknown distribution"
