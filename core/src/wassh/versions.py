"""``wassh --version``: the core's version and each plugin distribution's."""

from __future__ import annotations

from .commands import COMMANDS_GROUP
from .entrypoints import entry_points
from .plugins import ENTRY_POINT_GROUP


def version_lines() -> list[str]:
    """``wassh 1.1.0``, then ``DISTRIBUTION VERSION`` for each distribution that adds
    plugins or commands, by name. importlib.metadata is slow to import, but this
    runs only when asked."""
    from importlib.metadata import PackageNotFoundError, version

    def version_of(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "(version unknown)"

    dists: set[str] = set()
    for group in (ENTRY_POINT_GROUP, COMMANDS_GROUP):
        for ep in entry_points(group):
            dists.add(ep.dist_name or "(unknown distribution)")
    lines = [f"wassh {version_of('wassh')}"]
    lines += [f"{name} {version_of(name)}" for name in sorted(dists - {"wassh"})]
    return lines
