"""How much one relay, and one client, may hold: sessions, handshakes, idle time.

A *session* is a websockify connection or a corp-relay-v4 session, attached or
waiting for its client to resume. Each holds at most two descriptors (the
WebSocket and the target); a connection still in its handshake holds one. So
``--max-sessions N`` bounds the descriptors in use by 3N plus a few, and the
default N is derived from the process's descriptor limit so that the relay
refuses politely (HTTP 503) before the kernel refuses its ``accept``.

A *client* is the peer's IP address; IPv6 peers count per /64, the block a
single subscriber usually gets.
"""

from __future__ import annotations

import ipaddress
import math
import resource
from collections import Counter
from dataclasses import dataclass, field

import trio

# Descriptors that are not connections: stdio, the log, listeners, trio's own.
RESERVED_FDS = 64
FDS_PER_SESSION = 3  # the WebSocket, the target, and a handshake in flight
_NO_LIMIT_SESSIONS = 100_000


def fd_limit() -> int | None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def default_max_sessions() -> int:
    limit = fd_limit()
    if limit is None:
        return _NO_LIMIT_SESSIONS
    return max(1, (limit - RESERVED_FDS) // FDS_PER_SESSION)


def fds_needed(max_sessions: int) -> int:
    return RESERVED_FDS + FDS_PER_SESSION * max_sessions


def client_key(peer_host: str) -> str:
    try:
        address = ipaddress.ip_address(peer_host.split("%", 1)[0])
    except ValueError:
        return peer_host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class LimitReached(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Pool:
    """Counted things (sessions, handshakes) in all and per client."""

    what: str
    max_total: int
    max_per_client: int = 0  # 0: no per-client limit
    total: int = 0
    by_client: Counter[str] = field(default_factory=Counter)

    def take(self, client: str) -> Slot:
        """One more for ``client``; raises ``LimitReached`` (429 for this client, 503 for all)."""
        if self.max_per_client and self.by_client[client] >= self.max_per_client:
            raise LimitReached(
                429, f"too many {self.what} from this client ({self.max_per_client})"
            )
        if self.total >= self.max_total:
            raise LimitReached(503, f"too many {self.what} ({self.max_total})")
        self.total += 1
        self.by_client[client] += 1
        return Slot(self, client)

    def give_back(self, client: str) -> None:
        self.total -= 1
        self.by_client[client] -= 1
        if self.by_client[client] <= 0:
            del self.by_client[client]


class Slot:
    """One unit of a pool, given back exactly once however many paths end it."""

    def __init__(self, pool: Pool, client: str) -> None:
        self.pool = pool
        self.client = client
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.pool.give_back(self.client)


class Limits:
    def __init__(self, max_sessions: int, per_client: int = 0) -> None:
        self.max_sessions = max_sessions
        self.per_client = per_client
        self.sessions = Pool("sessions", max_sessions, per_client)
        # Handshakes get their own pool of the same size: a client stuck in its
        # handshake cannot take a session's place, and vice versa.
        self.handshakes = Pool("handshakes", max_sessions, per_client)

    def describe(self) -> dict[str, int]:
        return {
            "sessions": self.sessions.total,
            "handshakes": self.handshakes.total,
            "clients": len(self.sessions.by_client),
        }


class IdleTimer:
    """When did payload last move, either way; ``expired`` returns once it has not for long."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.last = trio.current_time()

    def touch(self) -> None:
        self.last = trio.current_time()

    async def expired(self) -> None:
        if not self.seconds or math.isinf(self.seconds):
            await trio.sleep_forever()
        while True:
            left = self.last + self.seconds - trio.current_time()
            if left <= 0:
                return
            await trio.sleep(left)
