"""``wassh relay``: the entry point stays light; the server loads when it runs."""

from __future__ import annotations

from wassh import PluginCommand


def _main(argv: list[str]) -> int:
    from .server import main

    return main(argv)


relay = PluginCommand(
    help="run a relay server (websockify-style and corp-relay-v4 endpoints)", main=_main
)
