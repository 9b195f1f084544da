"""Lookups over plain DNS against a real dnsmasq on loopback, on trio, as the core calls them."""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path

import dns.asyncbackend
import dns.asyncresolver
import dns.nameserver
import dns.rcode
import pytest
import trio
import wassh
from dnskit import MANY_ADDRESSES, MANY_NAME, Dnsmasq, RcodeServer, SilentDnsServer, truncated
from dnskit import query as plain_query
from resolverkit import cache_of, configured, failure, lookup, texts, v4, warnings
from wassh import TransportConfig
from wassh_resolver_dns import DnsResolver

AF_INET, AF_INET6, AF_UNSPEC = socket.AF_INET, socket.AF_INET6, socket.AF_UNSPEC


async def test_a_aaaa_and_either(dnsmasq: Dnsmasq) -> None:
    resolver = configured(resolver=dnsmasq.url)
    answer = await lookup(resolver, "www.test", AF_INET)
    assert answer.addresses == v4("127.0.0.5") and answer.canonical_name is None
    assert texts(await lookup(resolver, "six.test", AF_INET6)) == ["::7"]
    both = await lookup(resolver, "dual.test", AF_UNSPEC)
    # IPv6 first, then IPv4; each family as the server ordered it.
    assert [f for f, _ in both.addresses] == [AF_INET6, AF_INET, AF_INET]
    assert texts(both)[0] == "::6" and sorted(texts(both)[1:]) == ["127.0.0.6", "127.0.0.7"]
    assert texts(await lookup(resolver, "www.test", AF_UNSPEC)) == ["127.0.0.5"]
    assert texts(await lookup(resolver, "six.test", AF_UNSPEC)) == ["::7"]
    assert texts(await lookup(resolver, "WWW.Test", AF_INET)) == ["127.0.0.5"]


async def test_no_such_name_and_no_address_of_the_family(dnsmasq: Dnsmasq) -> None:
    resolver = configured(resolver=dnsmasq.url)
    assert await failure(resolver, "nope.test", AF_INET) == socket.EAI_NONAME
    assert await failure(resolver, "nope.test", AF_UNSPEC) == socket.EAI_NONAME
    assert await failure(resolver, "www.test", AF_INET6) == socket.EAI_NODATA
    assert await failure(resolver, "six.test", AF_INET) == socket.EAI_NODATA


async def test_names_dns_cannot_carry_fail_without_a_query(dnsmasq: Dnsmasq) -> None:
    resolver = configured(resolver=dnsmasq.url)
    before = dnsmasq.queries()
    too_long = ".".join(["abcdefghi"] * 26) + ".test"
    for bad in ("a..test", "x" * 64 + ".test", too_long, "a\\065.test", "a b.test", ""):
        assert await failure(resolver, bad) == socket.EAI_NONAME, bad
    assert dnsmasq.queries() == before


async def test_search_list_and_ndots(dnsmasq: Dnsmasq) -> None:
    search = ["corp.test", "lab.test"]
    resolver = configured(resolver=dnsmasq.url, search=search)
    # No dot: the search domains, in order; the canonical name is the one found.
    answer = await lookup(resolver, "db", AF_INET)
    assert answer.addresses == v4("127.0.0.8") and answer.canonical_name == "db.corp.test"
    answer = await lookup(resolver, "api", AF_INET)
    assert answer.addresses == v4("127.0.0.10") and answer.canonical_name == "api.lab.test"
    # One dot, ndots 1: the name as it is first; not found, then the search domains.
    assert (await lookup(resolver, "x.y.test", AF_INET)).addresses == v4("127.0.0.11")
    answer = await lookup(resolver, "x.y", AF_INET)
    assert answer.addresses == v4("127.0.0.12") and answer.canonical_name == "x.y.lab.test"
    # ndots 3: "x.y.test" has fewer dots, so the search domains come first.
    deeper = configured(resolver=dnsmasq.url, search=search, ndots=3)
    answer = await lookup(deeper, "x.y.test", AF_INET)
    assert answer.addresses == v4("127.0.0.13") and answer.canonical_name == "x.y.test.lab.test"
    # A trailing dot makes a name absolute: never searched.
    answer = await lookup(deeper, "x.y.test.", AF_INET)
    assert answer.addresses == v4("127.0.0.11") and answer.canonical_name is None
    assert await failure(deeper, "db.", AF_INET) == socket.EAI_NONAME
    # Without a search list, the host's own domain is not used as one.
    assert await failure(configured(resolver=dnsmasq.url), "db", AF_INET) == socket.EAI_NONAME
    # Searched names went to the server as the search list built them.
    assert dnsmasq.queries("db.corp.test", "A") >= 1
    assert dnsmasq.queries("api.corp.test", "A") == 1 and dnsmasq.queries("api.lab.test") == 1


async def test_answers_are_cached_for_their_ttl(tmp_path: Path) -> None:
    with Dnsmasq(tmp_path / "ttl", {"www.test": ["127.0.0.5"]}, ttl=2) as server:
        resolver = configured(resolver=server.url)
        assert (await lookup(resolver, "www.test", AF_INET)).addresses == v4("127.0.0.5")
        assert server.queries("www.test", "A") == 1
        assert (await lookup(resolver, "www.test", AF_INET)).addresses == v4("127.0.0.5")
        assert server.queries("www.test", "A") == 1  # answered from the cache
        assert cache_of(resolver).hits() == 1
        # The TTL is the condition awaited here: until the cached answer expires.
        expiry = max(entry.expiration for entry in cache_of(resolver).data.values())
        await trio.sleep(max(0.0, expiry - time.time()) + 0.05)
        assert (await lookup(resolver, "www.test", AF_INET)).addresses == v4("127.0.0.5")
        assert server.queries("www.test", "A") == 2  # expired: asked again


async def test_a_truncated_answer_is_asked_again_over_tcp(dnsmasq: Dnsmasq) -> None:
    # The server's UDP answer is truncated (its EDNS limit is 512 bytes) ...
    assert truncated(plain_query(dnsmasq.port, MANY_NAME))
    assert not truncated(plain_query(dnsmasq.port, MANY_NAME, tcp=True))
    asked = dnsmasq.queries(MANY_NAME, "A")
    # ... and the resolver gets all 40 addresses, over TCP after UDP.
    answer = await lookup(configured(resolver=dnsmasq.url), MANY_NAME, AF_INET)
    assert sorted(texts(answer)) == sorted(MANY_ADDRESSES)
    assert dnsmasq.queries(MANY_NAME, "A") == asked + 2


async def test_servfail_is_a_temporary_failure_logged_once(
    dnsmasq: Dnsmasq, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "wassh.resolver.dns")
    resolver = configured(resolver=dnsmasq.url)
    assert await failure(resolver, "broken.test", AF_INET) == socket.EAI_AGAIN
    assert await failure(resolver, "a.broken.test", AF_UNSPEC) == socket.EAI_AGAIN
    assert warnings(caplog.records) == [f"DNS server 127.0.0.1:{dnsmasq.port}: answered SERVFAIL"]


async def test_a_refusing_server_is_a_permanent_failure() -> None:
    with RcodeServer(dns.rcode.REFUSED) as refusing:
        resolver = configured(resolver=refusing.url)
        assert await failure(resolver, "www.test", AF_INET) == socket.EAI_FAIL
        assert refusing.received == 1
    with RcodeServer(dns.rcode.NOTIMP) as notimp:
        assert await failure(configured(resolver=notimp.url), "www.test") == socket.EAI_FAIL


async def test_resolvers_are_tried_in_order(dnsmasq: Dnsmasq) -> None:
    with RcodeServer(dns.rcode.SERVFAIL) as failing:
        resolver = configured(resolver=[failing.url, dnsmasq.url])
        assert texts(await lookup(resolver, "www.test", AF_INET)) == ["127.0.0.5"]
        assert failing.received == 1 and dnsmasq.queries("www.test", "A") == 1


async def test_a_silent_server_times_out_within_the_timeout(
    silent: SilentDnsServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "wassh.resolver.dns")
    resolver = configured(resolver=silent.url, timeout=1)
    started = trio.current_time()
    assert await failure(resolver, "www.test", AF_UNSPEC) == socket.EAI_AGAIN
    took = trio.current_time() - started
    assert 0.9 <= took < 2.5, took
    assert silent.received >= 1
    assert warnings(caplog.records) == [f"DNS server 127.0.0.1:{silent.port}: timed out"]


async def test_a_cancelled_lookup_ends_at_once_and_the_resolver_goes_on(
    silent: SilentDnsServer, dnsmasq: Dnsmasq
) -> None:
    resolver = configured(resolver=[silent.url, dnsmasq.url], timeout=30)
    started = trio.current_time()
    with trio.move_on_after(0.3) as scope:
        await lookup(resolver, "www.test", AF_INET)
    assert scope.cancelled_caught and trio.current_time() - started < 1.0
    fresh = configured(resolver=dnsmasq.url)
    assert texts(await lookup(fresh, "www.test", AF_INET)) == ["127.0.0.5"]


async def test_lookups_stay_on_trio_whatever_dnspython_guessed_first(
    dnsmasq: Dnsmasq, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dnspython picks its default backend once per process; after something ran it
    under asyncio, its default-backend lookups break on trio. The plugin's do not."""
    monkeypatch.setattr(
        dns.asyncbackend, "_default_backend", dns.asyncbackend.get_backend("asyncio")
    )
    naive = dns.asyncresolver.Resolver(configure=False)
    naive.nameservers = [dns.nameserver.Do53Nameserver("127.0.0.1", dnsmasq.port)]
    with pytest.raises(RuntimeError):  # asyncio's backend, with no asyncio loop running
        await naive.resolve_name("www.test")
    resolver = configured(resolver=dnsmasq.url)
    assert texts(await lookup(resolver, "www.test", AF_INET)) == ["127.0.0.5"]


async def test_through_the_core_ranking(dnsmasq: Dnsmasq) -> None:
    pm = wassh.make_plugin_manager(entry_points=False, plugins=[DnsResolver])
    config = TransportConfig(settings={"dns": {"resolver": [dnsmasq.url]}})
    transports = wassh.Transports(pm, config)
    owner = transports.resolver("dual.test", AF_UNSPEC)
    assert owner is not None and owner.name == "dns"
    answer = await owner.wassh_getaddrinfo("dual.test", AF_UNSPEC, config)
    assert texts(answer)[0] == "::6" and len(answer.addresses) == 3
    with pytest.raises(socket.gaierror) as caught:
        await owner.wassh_getaddrinfo("nope.test", AF_INET, config)
    assert caught.value.args[0] == socket.EAI_NONAME
