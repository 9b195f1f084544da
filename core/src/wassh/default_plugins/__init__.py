"""Plugins that ship inside the core (none are transports: those are separate)."""

from __future__ import annotations

DEFAULT_PLUGINS: tuple[tuple[str, object], ...] = ()
