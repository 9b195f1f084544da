"""Name lookups for the guest: resolver plugins, waited for where the guest can be stopped.

A resolver plugin (an offer of kind ``NAMES``) answers on the runtime's trio
loop; the guest thread waits for the answer through the runtime's waiter, so
cancellation, signals and the deadline (the connect timeout) end the wait
whatever the resolver does. The host's own resolver, which transports use at
connect time when no resolver plugin is configured, runs on a worker thread
and is waited for the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class NameAnswer:
    """What ``wassh_getaddrinfo`` returns.

    ``addresses``: ``(socket.AF_INET, 4 packed bytes)`` or ``(socket.AF_INET6,
    16 packed bytes)`` pairs, in the order the guest should try them.
    ``canonical_name``: the name the answer's CNAME chain ends at (what
    ``AI_CANONNAME`` reports), or None when it is the name asked for.
    """

    addresses: Sequence[tuple[int, bytes]]
    canonical_name: str | None = None
