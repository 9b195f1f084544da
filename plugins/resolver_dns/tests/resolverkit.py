"""Helpers of the resolver's tests: a configured ``DnsResolver`` and a lookup through it."""

from __future__ import annotations

import socket
from collections.abc import Iterable

import dns.resolver
from wassh import NameAnswer, TransportConfig
from wassh_resolver_dns import DnsResolver


def configured(**settings: object) -> DnsResolver:
    """A resolver that made its (available) offer with these settings."""
    resolver = DnsResolver()
    offer = resolver.wassh_transport_offer(TransportConfig(), settings)
    assert offer.available, offer.reason
    return resolver


async def lookup(resolver: DnsResolver, host: str, family: int = socket.AF_UNSPEC) -> NameAnswer:
    return await resolver.wassh_getaddrinfo(host, family, TransportConfig())


async def failure(resolver: DnsResolver, host: str, family: int = socket.AF_UNSPEC) -> int:
    """The EAI_* code the lookup fails with (it must fail, with a gaierror)."""
    try:
        answer = await lookup(resolver, host, family)
    except socket.gaierror as exc:
        assert isinstance(exc.args[0], int) and isinstance(exc.args[1], str), exc.args
        return exc.args[0]
    raise AssertionError(f"{host}: expected a failure, got {answer}")


def texts(answer: NameAnswer) -> list[str]:
    return [socket.inet_ntop(family, packed) for family, packed in answer.addresses]


def v4(*addresses: str) -> list[tuple[int, bytes]]:
    return [(socket.AF_INET, socket.inet_pton(socket.AF_INET, a)) for a in addresses]


def cache_of(resolver: DnsResolver) -> dns.resolver.Cache:
    assert resolver.lookups is not None
    cache = resolver.lookups.resolver.cache
    assert isinstance(cache, dns.resolver.Cache)
    return cache


def warnings(records: Iterable[object]) -> list[str]:
    """The plugin's warning lines among captured log records."""
    import logging

    return [
        r.getMessage()
        for r in records
        if isinstance(r, logging.LogRecord)
        and r.name == "wassh.resolver.dns"
        and r.levelno == logging.WARNING
    ]
