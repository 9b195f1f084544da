"""Where ``wassh relay`` may connect, and connecting there without a second lookup.

The rules are the core's network policy grammar (``wassh.policy``): ``--allow``
and ``--deny`` patterns are ``HOST[:PORTS]`` with IP literals, CIDRs and
hostname globs whose ``*`` never crosses a dot. No ``--allow`` rule: nothing is
allowed. ``--deny`` wins over any allow.

A destination is checked twice: the name as the client sent it (a denied name
is never even looked up), then every address it resolves to. The relay
connects only to an address that passed, by that address: nothing is resolved
again between the check and the connect, so a name that changes its answer
(DNS rebinding) cannot slip a second address in.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import trio
from wassh.policy import (
    IPAddress,
    NetworkPolicy,
    PolicyError,
    Rule,
    normalise_name,
    parse_address,
    parse_rule,
    unmap,
)

Lookup = Callable[[str, int], Awaitable[list[IPAddress]]]


class Refused(Exception):
    """The rules refuse the destination; ``rule`` says which (for the log only)."""

    def __init__(self, rule: str, address: IPAddress | None = None) -> None:
        super().__init__(rule)
        self.rule = rule
        self.address = address


class Unreachable(Exception):
    """Allowed, but it could not be resolved or connected to."""


def parse_patterns(patterns: Sequence[tuple[str, str]]) -> tuple[Rule, ...]:
    """``(pattern, where)`` pairs to rules; raises ``PolicyError`` naming the bad one."""
    rules = []
    for text, where in patterns:
        try:
            rules.append(parse_rule(text, where))
        except PolicyError as exc:
            raise PolicyError(f"{where}: {exc}") from None
    return tuple(rules)


def read_pattern_file(path: str, option: str) -> list[tuple[str, str]]:
    """One pattern a line (blank lines and ``#`` comments ignored), each with its origin."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise PolicyError(f"cannot read {option} {path}: {detail or exc}") from None
    found = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if text:
            found.append((text, f"{option} {path}:{number}"))
    return found


def parse_add_host(item: str) -> tuple[str, IPAddress]:
    name, sep, text = item.partition("=")
    address = parse_address(text.strip().strip("[]")) if sep else None
    if not name or address is None:
        raise ValueError(f"bad --add-host {item!r}: expected NAME=ADDRESS (an IP address)")
    return normalise_name(name.strip()), address


async def dns_lookup(host: str, port: int) -> list[IPAddress]:
    try:
        infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise Unreachable(f"cannot resolve {host}: {exc}") from None
    found: list[IPAddress] = []
    for info in infos:
        address = unmap(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]))
        if address not in found:
            found.append(address)
    return found


@dataclass
class Destinations:
    allow: tuple[Rule, ...] = ()
    deny: tuple[Rule, ...] = ()
    hosts: dict[str, IPAddress] = field(default_factory=dict)
    lookup: Lookup = dns_lookup
    policy: NetworkPolicy = field(init=False)

    def __post_init__(self) -> None:
        self.policy = NetworkPolicy(connect_allow=self.allow, connect_deny=self.deny)

    def check_name(self, host: str, port: int) -> None:
        """Raises ``Refused`` unless some address of ``host`` could be allowed."""
        if not self.allow:
            raise Refused("no --allow rule: the relay allows nothing")
        verdict = self.policy.destination_verdict(host, port, addresses_checked=True)
        if verdict is not None:
            raise Refused(verdict)

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        mapped = self.hosts.get(normalise_name(host))
        if mapped is not None:
            return [mapped]
        literal = parse_address(host)
        if literal is not None:
            return [literal]
        return await self.lookup(host, port)

    async def checked_addresses(self, host: str, port: int) -> list[IPAddress]:
        """Every address of ``host`` the rules allow, in resolver order; ``Refused`` if none."""
        self.check_name(host, port)
        addresses = await self.resolve(host, port)
        if not addresses:
            raise Unreachable(f"{host} has no address")
        allowed, first_refusal = [], None
        for address in addresses:
            verdict = self.policy.address_verdict(host, address, port)
            if verdict is None:
                allowed.append(address)
            elif first_refusal is None:
                first_refusal = Refused(verdict, address)
        if not allowed:
            assert first_refusal is not None
            raise first_refusal
        return allowed

    async def open(
        self, host: str, port: int, timeout: float
    ) -> tuple[trio.SocketStream, IPAddress]:
        """Connect to the first allowed address that answers, within ``timeout`` in all."""
        errors: list[str] = []
        with trio.move_on_after(timeout) as scope:
            for address in await self.checked_addresses(host, port):
                try:
                    return await connect_address(address, port), address
                except OSError as exc:
                    errors.append(f"{address}: {exc.strerror or exc}")
        if scope.cancelled_caught:
            errors.append(f"timed out after {timeout:g} s")
        raise Unreachable("; ".join(errors))


async def connect_address(address: IPAddress, port: int) -> trio.SocketStream:
    """A TCP connection to exactly this address: a numeric sockaddr, no name to resolve."""
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    sock = trio.socket.socket(family, socket.SOCK_STREAM)
    try:
        await sock.connect((str(address), port))
    except BaseException:
        sock.close()
        raise
    stream = trio.SocketStream(sock)
    try:
        stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass
    return stream


__all__ = [
    "Destinations",
    "Refused",
    "Unreachable",
    "connect_address",
    "dns_lookup",
    "parse_add_host",
    "parse_patterns",
    "read_pattern_file",
]
