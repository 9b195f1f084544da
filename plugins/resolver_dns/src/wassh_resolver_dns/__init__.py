"""wassh resolver plugin: guests' names looked up over DNS or DNS-over-HTTPS."""

from __future__ import annotations

from .resolver import DnsResolver

__all__ = ["DnsResolver"]
