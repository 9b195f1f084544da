"""wassh.testing's resolver conformance suite against a table-driven resolver, and
proof that it catches broken resolvers.

The resolver here is written against the public API alone, as a resolver
author would write one; the DNS plugin meets the same suite against real
servers in plugins/resolver_dns/tests/test_dns_conformance.py.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import trio
import wassh
from wassh.testing import (
    ConformanceFailure,
    PeerServer,
    ResolverConformance,
    ResolverKit,
    ResolverUnderTest,
)

pytest_plugins = ["wassh.testing"]

TABLE: Mapping[str, list[str]] = {
    "v4.conform.test": ["127.0.0.1"],
    "both.conform.test": ["::1", "127.0.0.1"],
    "v6.conform.test": ["::1"],
    "alias.conform.test": ["127.0.0.1"],
    "many.conform.test": [f"127.0.0.{i}" for i in range(1, 11)] + ["::2", "::3"],
}
CANONICAL = {"alias.conform.test": "real.conform.test"}
MISSING = "nowhere.conform.test"
SLOW = "slow.conform.test"
# How long the resolver that ignores cancellation holds out (the broken kit's bound is less).
SHIELDED = 2.0
# Host names as a DNS resolver takes them: LDH labels of 1 to 63 bytes, one
# trailing dot, 253 bytes without it.
LDH = re.compile(r"(?=.{1,253}\.?\Z)(?:[a-z0-9_-]{1,63}\.)*[a-z0-9_-]{1,63}\.?\Z", re.I)


def packed(text: str) -> tuple[int, bytes]:
    family = socket.AF_INET6 if ":" in text else socket.AF_INET
    return family, socket.inet_pton(family, text)


class TableResolver:
    """Answers from ``TABLE``; ``SLOW`` never answers."""

    name = "table"

    @wassh.hookimpl
    def wassh_transport_offer(
        self, config: wassh.TransportConfig, settings: Mapping[str, object]
    ) -> wassh.Offer:
        return wassh.Offer(name=self.name, kinds=frozenset({wassh.NAMES}), rank=100)

    @wassh.hookimpl
    async def wassh_getaddrinfo(
        self, host: str, family: int, config: wassh.TransportConfig
    ) -> wassh.NameAnswer:
        if not host.isascii() or LDH.match(host) is None:
            raise socket.gaierror(socket.EAI_NONAME, "not a host name")
        name = host.removesuffix(".").lower()
        if name == SLOW:
            await trio.sleep_forever()
        return self.answer(name, family)

    def answer(self, name: str, family: int) -> wassh.NameAnswer:
        texts = TABLE.get(name)
        if texts is None:
            raise socket.gaierror(socket.EAI_NONAME, "no such name")
        found = [packed(t) for t in texts]
        if family != socket.AF_UNSPEC:
            found = [f for f in found if f[0] == family]
        if not found:
            raise socket.gaierror(socket.EAI_NODATA, "no address of that family")
        return wassh.NameAnswer(found, CANONICAL.get(name))


def declared(plugin: type, **changes: Any) -> ResolverUnderTest:
    given: dict[str, Any] = {
        "plugins": [plugin],
        "answers": TABLE,
        "missing": MISSING,
        "unanswered": SLOW,
        "canonical": CANONICAL,
        **changes,
    }
    return ResolverUnderTest(str(plugin.name), **given)  # type: ignore[attr-defined]


class TestTableResolver(ResolverConformance):
    resolver = declared(TableResolver)


# -- the kit catches broken resolvers --------------------------------------------------------


class WrongFamilies(TableResolver):
    """Gives every address whatever the family asked."""

    name = "wrong-families"

    def answer(self, name: str, family: int) -> wassh.NameAnswer:
        return super().answer(name, socket.AF_UNSPEC)


class WrongAddress(TableResolver):
    """Answers 127.0.0.2 where 127.0.0.1 is right."""

    name = "wrong-address"

    def answer(self, name: str, family: int) -> wassh.NameAnswer:
        right = super().answer(name, family)
        wrong = packed("127.0.0.2")
        return wassh.NameAnswer([wrong if a == packed("127.0.0.1") else a for a in right.addresses])


class SyncHook(TableResolver):
    """A ``wassh_getaddrinfo`` that is no ``async def``."""

    name = "sync-hook"

    @wassh.hookimpl
    def wassh_getaddrinfo(  # type: ignore[override]
        self, host: str, family: int, config: wassh.TransportConfig
    ) -> wassh.NameAnswer:
        return self.answer(host, family)


class CrashesOnMissing(TableResolver):
    """Raises RuntimeError for a name it does not know, not a gaierror."""

    name = "crashes-on-missing"

    def answer(self, name: str, family: int) -> wassh.NameAnswer:
        if name not in TABLE:
            raise RuntimeError(f"no entry for {name}")
        return super().answer(name, family)


class IgnoresCancellation(TableResolver):
    """Shields its wait for ``SLOW`` from cancellation for a while."""

    name = "ignores-cancellation"

    @wassh.hookimpl
    async def wassh_getaddrinfo(
        self, host: str, family: int, config: wassh.TransportConfig
    ) -> wassh.NameAnswer:
        if host == SLOW:
            with trio.CancelScope(shield=True):
                await trio.sleep(SHIELDED)
        return await super().wassh_getaddrinfo(host, family, config)


class LeavesATask(TableResolver):
    """Starts a task of its own for ``SLOW`` that outlives the lookup."""

    name = "leaves-a-task"

    @wassh.hookimpl
    async def wassh_getaddrinfo(
        self, host: str, family: int, config: wassh.TransportConfig
    ) -> wassh.NameAnswer:
        if host == SLOW:
            trio.lowlevel.spawn_system_task(trio.sleep, SHIELDED, name="left-behind")
        return await super().wassh_getaddrinfo(host, family, config)


class AnswersTheUnanswered(TableResolver):
    """Gives up on ``SLOW`` at once (EAI_AGAIN): the declaration is wrong, or the resolver."""

    name = "answers-the-unanswered"

    @wassh.hookimpl
    async def wassh_getaddrinfo(
        self, host: str, family: int, config: wassh.TransportConfig
    ) -> wassh.NameAnswer:
        if host == SLOW:
            raise socket.gaierror(socket.EAI_AGAIN, "timed out")
        return await super().wassh_getaddrinfo(host, family, config)


class SharesState(TableResolver):
    """Keeps the name being looked up on the plugin, across a checkpoint: lookups
    running at once answer each other's names."""

    name = "shares-state"
    current = ""

    @wassh.hookimpl
    async def wassh_getaddrinfo(
        self, host: str, family: int, config: wassh.TransportConfig
    ) -> wassh.NameAnswer:
        self.current = host
        await trio.lowlevel.checkpoint()
        return await super().wassh_getaddrinfo(self.current, family, config)


class ForgetsAliases(TableResolver):
    """Gives no canonical name for an alias."""

    name = "forgets-aliases"

    def answer(self, name: str, family: int) -> wassh.NameAnswer:
        return wassh.NameAnswer(super().answer(name, family).addresses)


class TrustsItsInput(TableResolver):
    """Indexes the name's labels without checking them: an empty one is an IndexError."""

    name = "trusts-its-input"

    @wassh.hookimpl
    async def wassh_getaddrinfo(
        self, host: str, family: int, config: wassh.TransportConfig
    ) -> wassh.NameAnswer:
        if any(label[0] == "-" for label in host.split(".")):
            raise socket.gaierror(socket.EAI_NONAME, "bad label")
        return self.answer(host.lower(), family)


@pytest.mark.parametrize(
    ("plugin", "case", "says"),
    [
        (WrongFamilies, "test_answers", "an address of another family"),
        (WrongAddress, "test_answers", "answered ['127.0.0.2'], expected ['127.0.0.1']"),
        (WrongAddress, "test_guest_lookups", "its addresses"),
        (SyncHook, "test_offer", "must be an async def"),
        (CrashesOnMissing, "test_missing_name", "raised RuntimeError"),
        (CrashesOnMissing, "test_guest_missing_name", "unexpected error"),
        (IgnoresCancellation, "test_cancelled_lookup", "ignores trio cancellation"),
        (LeavesATask, "test_cancelled_lookup", "left-behind"),
        (AnswersTheUnanswered, "test_cancelled_lookup", "must not complete"),
        (AnswersTheUnanswered, "test_guest_cancelled_in_lookup", "must not complete"),
        (TrustsItsInput, "test_hostile_names", "raised IndexError"),
        (SharesState, "test_concurrent_lookups", "of 20 concurrent lookups"),
        (ForgetsAliases, "test_answers", "canonical name None, expected 'real.conform.test'"),
        (ForgetsAliases, "test_guest_lookups", "ai_canonname"),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else v if v.startswith("test_") else None,
)
def test_the_kit_catches(
    plugin: type, case: str, says: str, wassh_peer: PeerServer, wassh_resolver_guest: Path
) -> None:
    kit = ResolverKit(declared(plugin), wassh_peer, wassh_resolver_guest)
    kit.run_timeout = 10.0  # a planted fault may leave the guest waiting: fail sooner
    kit.cancel_bound = SHIELDED / 2
    with pytest.raises(ConformanceFailure) as caught:
        getattr(ResolverConformance(), case)(kit)
    assert says in str(caught.value), str(caught.value)


# -- what the kit refuses to be told --------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"answers": {"both.conform.test": ["::1", "127.0.0.1"]}}, "127.0.0.1 only"),
        ({"answers": {"v4.conform.test": ["127.0.0.1"]}}, "::1 and 127.0.0.1"),
        ({"answers": {**TABLE, "odd.test": ["127.0.0.256"]}}, "not an IPv4 or IPv6 literal"),
        ({"answers": {**TABLE, "odd.test": "127.0.0.1"}}, "non-empty list of IP literals"),
        ({"answers": {**TABLE, "bad name.test": ["127.0.0.1"]}}, "is not a host name"),
        ({"answers": {**TABLE, "localhost": ["127.0.0.1"]}}, "is not a host name"),
        ({"answers": {**TABLE, "127.1": ["127.0.0.1"]}}, "is not a host name"),
        ({"missing": "v4.conform.test"}, "also in answers"),
        ({"unanswered": MISSING}, "must be different names"),
        ({"canonical": {"elsewhere.test": "real.test"}}, "not in answers"),
    ],
)
def test_a_declaration_the_cases_cannot_use_is_refused(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        declared(TableResolver, **changes)
