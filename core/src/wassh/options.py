"""Command-line options that plugins add (``wassh_addoption``), and their values.

Each plugin's options go into their own argument group of ``wassh run`` and
``wassh transports``. Values land in ``TransportConfig.settings[plugin]`` under
each option's ``dest``; an option the user did not give is absent, so the
plugin's own settings parser holds every default (the embedding API passes
the same keys).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

Action = Literal["store", "append", "store_true", "count"]

_PREFIX = "plugin:"


class OptionConflict(Exception):
    """Two plugins (or a plugin and the core) claim the same option."""


class PluginOptions:
    """The argument group one plugin adds its options to."""

    def __init__(
        self,
        parser: argparse.ArgumentParser,
        plugin: str,
        title: str,
        owners: dict[str, str] | None = None,
    ) -> None:
        self.plugin = plugin
        self._group = parser.add_argument_group(title)
        # flag -> the plugin that added it, shared by every plugin of one parser
        self._owners = owners if owners is not None else {}

    def add(
        self,
        *flags: str,
        dest: str,
        help: str,
        action: Action = "store",
        metavar: str | None = None,
        type: Callable[[str], object] | None = None,
        choices: Sequence[str] | None = None,
    ) -> None:
        """Add ``--flag`` (long options only); its value is ``settings[dest]``.

        ``type`` converts the text (raise ``ValueError`` or
        ``argparse.ArgumentTypeError`` for one clear line); ``append`` collects
        a list; ``store_true`` and ``count`` take no value.
        """
        if not flags or not all(f.startswith("--") and len(f) > 2 for f in flags):
            raise ValueError(f"plugin {self.plugin!r}: options are long flags (--name): {flags}")
        if not dest.isidentifier():
            raise ValueError(f"plugin {self.plugin!r}: dest {dest!r} is not an identifier")
        kwargs: dict[str, object] = {
            "dest": f"{_PREFIX}{self.plugin}:{dest}",
            "help": help,
            "action": action,
            "default": argparse.SUPPRESS,
        }
        if action in ("store", "append"):
            if metavar is not None:
                kwargs["metavar"] = metavar
            if type is not None:
                kwargs["type"] = type
            if choices is not None:
                kwargs["choices"] = list(choices)
        for flag in flags:
            other = self._owners.get(flag)
            if other is not None:
                raise OptionConflict(
                    f"plugins {other!r} and {self.plugin!r} both add {flag} "
                    f"(block one with --block-plugin NAME)"
                )
        try:
            self._group.add_argument(*flags, **kwargs)  # type: ignore[arg-type]
        except argparse.ArgumentError:
            raise OptionConflict(
                f"plugin {self.plugin!r} adds {', '.join(flags)}, which wassh has already "
                f"(block it with --block-plugin {self.plugin})"
            ) from None
        self._owners.update(dict.fromkeys(flags, self.plugin))


def parse_pairs(value: object, option: str) -> dict[str, str]:
    """A setting of ``NAME=VALUE`` pairs: texts as an ``append`` option gives them
    (the last of a name wins), or a mapping as an embedder passes it.

    :raises ValueError: one line naming ``option`` and the bad item.
    """
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    if not isinstance(value, list | tuple):
        raise ValueError(f"{option}: expected NAME=VALUE texts or a mapping, not {value!r}")
    out: dict[str, str] = {}
    for item in value:
        key, sep, text = str(item).partition("=")
        if not sep or not key or not text:
            raise ValueError(f"bad {option} {item!r}: expected NAME=VALUE")
        out[key] = text
    return out


def plugin_settings(ns: argparse.Namespace) -> dict[str, dict[str, object]]:
    """The parsed values of plugins' options, by plugin name and ``dest``."""
    found: dict[str, dict[str, object]] = {}
    for key, value in vars(ns).items():
        if key.startswith(_PREFIX):
            plugin, _, dest = key[len(_PREFIX) :].partition(":")
            found.setdefault(plugin, {})[dest] = value
    return found
