"""DNS-over-HTTPS against a real dnsdist (HTTP/1.1 and HTTP/2) in front of dnsmasq, on trio."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import dns.asyncbackend
import pytest
import trio
import trustme
from dnskit import Dnsmasq, DohServer, SilentDnsServer
from resolverkit import configured, failure, lookup, texts, v4, warnings

AF_INET, AF_INET6, AF_UNSPEC = socket.AF_INET, socket.AF_INET6, socket.AF_UNSPEC


def served(doh: DohServer) -> tuple[int, int]:
    """(HTTP/1.1 queries, HTTP/2 queries) dnsdist's DoH frontend has served."""
    counters = doh.counters()
    return counters["http1-queries"], counters["http2-queries"]


@pytest.mark.parametrize(("http", "version"), [("auto", 2), ("2", 2), ("1.1", 1)])
async def test_doh_over_each_http_version(
    doh: DohServer, ca_file: Path, http: str, version: int
) -> None:
    resolver = configured(resolver=doh.url, ca=str(ca_file), http=http)
    assert served(doh) == (0, 0)
    connects = doh.counters()["http-connects"]  # the start-up probe's connect counts
    answer = await lookup(resolver, "dual.test", AF_UNSPEC)
    assert texts(answer)[0] == "::6" and len(answer.addresses) == 3
    assert answer.canonical_name is None
    # AAAA then A: two queries, both over the expected HTTP version (auto: ALPN picks h2),
    # on one connection (one TLS handshake per lookup, not per query).
    assert served(doh) == ((2, 0) if version == 1 else (0, 2))
    assert doh.counters()["http-connects"] == connects + 1


async def test_doh_answers_and_failures(doh: DohServer, dnsmasq: Dnsmasq, ca_file: Path) -> None:
    resolver = configured(resolver=doh.url, ca=str(ca_file))
    assert (await lookup(resolver, "www.test", AF_INET)).addresses == v4("127.0.0.5")
    assert texts(await lookup(resolver, "six.test", AF_INET6)) == ["::7"]
    assert await failure(resolver, "nope.test", AF_INET) == socket.EAI_NONAME
    assert await failure(resolver, "www.test", AF_INET6) == socket.EAI_NODATA
    assert await failure(resolver, "fails.test", AF_INET) == socket.EAI_AGAIN  # dnsdist's rule
    assert await failure(resolver, "broken.test", AF_INET) == socket.EAI_AGAIN  # dnsmasq's
    assert dnsmasq.queries("fails.test") == 0  # answered by the rule, in front
    # A large answer needs no TCP fallback over HTTPS.
    assert len((await lookup(resolver, "many.test", AF_INET)).addresses) == 40


async def test_doh_answers_are_cached(doh: DohServer, ca_file: Path) -> None:
    resolver = configured(resolver=doh.url, ca=str(ca_file))
    await lookup(resolver, "www.test", AF_INET)
    await lookup(resolver, "www.test", AF_INET)
    assert served(doh) == (0, 1)


async def test_a_certificate_from_another_ca_fails_fast_with_one_warning(
    doh: DohServer, dnsmasq: Dnsmasq, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "wassh.resolver.dns")
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    resolver = configured(resolver=doh.url, ca=str(other), timeout=10)
    started = trio.current_time()
    assert await failure(resolver, "www.test", AF_INET) == socket.EAI_AGAIN
    assert await failure(resolver, "dual.test", AF_UNSPEC) == socket.EAI_AGAIN
    # Not retried until the timeout: a certificate that does not verify will not.
    assert trio.current_time() - started < 5
    assert warnings(caplog.records) == [
        f"DoH server {doh.url}: certificate verify failed: unable to get local issuer certificate"
    ]
    assert dnsmasq.queries("www.test") == 0 and served(doh) == (0, 0)


async def test_without_resolver_ca_the_system_trust_store_refuses_a_private_ca(
    doh: DohServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "wassh.resolver.dns")
    resolver = configured(resolver=doh.url)
    assert await failure(resolver, "www.test", AF_INET) == socket.EAI_AGAIN
    assert [w.split(": ", 1)[1] for w in warnings(caplog.records)] == [
        "certificate verify failed: unable to get local issuer certificate"
    ]


async def test_a_certificate_for_another_name_is_refused(
    tmp_path: Path,
    dnsmasq: Dnsmasq,
    ca: trustme.CA,
    ca_file: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A certificate for 127.0.0.1 and doh.example, from the trusted CA: reached as
    localhost, a name it does not carry, it is refused (names are checked, not just chains)."""
    caplog.set_level(logging.WARNING, "wassh.resolver.dns")
    with DohServer(
        tmp_path / "named", dnsmasq.address, ca, names=("127.0.0.1", "doh.example")
    ) as server:
        good = configured(resolver=server.url, ca=str(ca_file))
        assert texts(await lookup(good, "www.test", AF_INET)) == ["127.0.0.5"]
        resolver = configured(
            resolver=server.url.replace("127.0.0.1", "localhost"), ca=str(ca_file)
        )
        assert await failure(resolver, "www.test", AF_INET) == socket.EAI_AGAIN
    assert any("doesn't match" in w or "mismatch" in w for w in warnings(caplog.records)), warnings(
        caplog.records
    )


async def test_a_doh_server_named_by_host_name(doh: DohServer, ca_file: Path) -> None:
    """https://localhost:PORT/...: the name is looked up by the host (``/etc/hosts``),
    every address tried (dnsdist listens on 127.0.0.1 only), the certificate checked
    against the name."""
    resolver = configured(resolver=doh.url.replace("127.0.0.1", "localhost"), ca=str(ca_file))
    assert texts(await lookup(resolver, "www.test", AF_INET)) == ["127.0.0.5"]
    assert served(doh) == (0, 1)


async def test_an_http_error_status_fails_fast_with_one_warning(
    doh: DohServer, ca_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "wassh.resolver.dns")
    wrong = doh.url.replace("/dns-query", "/elsewhere")
    resolver = configured(resolver=wrong, ca=str(ca_file), timeout=10)
    started = trio.current_time()
    assert await failure(resolver, "www.test", AF_INET) == socket.EAI_AGAIN
    assert trio.current_time() - started < 5
    [warning] = warnings(caplog.records)
    assert warning.startswith(f"DoH server {wrong}: HTTP status 4"), warning


async def test_a_closed_port_fails_fast(ca_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "wassh.resolver.dns")
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
        url = f"https://127.0.0.1:{port}/dns-query"
        resolver = configured(resolver=url, ca=str(ca_file), timeout=10)
        started = trio.current_time()
        assert await failure(resolver, "www.test", AF_INET) == socket.EAI_AGAIN
        assert trio.current_time() - started < 5
    assert warnings(caplog.records) == [f"DoH server {url}: cannot connect"]


async def test_doh_stays_on_trio_whatever_dnspython_guessed_first(
    doh: DohServer, ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dnspython's own DoH takes the process-wide default backend; the plugin's
    uses trio's, named."""
    asyncio_backend = dns.asyncbackend.get_backend("asyncio")
    monkeypatch.setattr(dns.asyncbackend, "_default_backend", asyncio_backend)
    resolver = configured(resolver=doh.url, ca=str(ca_file))
    assert texts(await lookup(resolver, "www.test", AF_INET)) == ["127.0.0.5"]
    assert served(doh) == (0, 1)


async def test_a_silent_doh_server_times_out_and_a_cancelled_lookup_ends_at_once(
    silent: SilentDnsServer, ca_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The server accepts connections and never answers, not even TLS's handshake."""
    caplog.set_level(logging.WARNING, "wassh.resolver.dns")
    url = f"https://127.0.0.1:{silent.port}/dns-query"
    resolver = configured(resolver=url, ca=str(ca_file), timeout=1)
    started = trio.current_time()
    assert await failure(resolver, "www.test", AF_UNSPEC) == socket.EAI_AGAIN
    assert 0.9 <= trio.current_time() - started < 2.5
    assert warnings(caplog.records) == [f"DoH server {url}: timed out"]
    patient = configured(resolver=url, ca=str(ca_file), timeout=30)
    started = trio.current_time()
    with trio.move_on_after(0.3) as scope:
        await lookup(patient, "www.test", AF_UNSPEC)
    assert scope.cancelled_caught and trio.current_time() - started < 1.0


async def test_one_familys_servfail_does_not_hide_the_others_addresses(
    tmp_path: Path,
    dnsmasq: Dnsmasq,
    ca: trustme.CA,
    ca_file: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """As glibc: AF_UNSPEC answers what one family has when the other's query fails."""
    caplog.set_level(logging.WARNING, "wassh.resolver.dns")
    failing = {"dual.test": "AAAA", "www.test": "A", "six.test": "AAAA"}
    with DohServer(tmp_path / "types", dnsmasq.address, ca, servfail_types=failing) as server:
        for url in (server.do53_url, server.url):
            ca_setting = {"ca": str(ca_file)} if url.startswith("https") else {}
            resolver = configured(resolver=url, **ca_setting)
            assert sorted(texts(await lookup(resolver, "dual.test"))) == [
                "127.0.0.6",
                "127.0.0.7",
            ]
            assert await failure(resolver, "dual.test", AF_INET6) == socket.EAI_AGAIN
            # A fails, AAAA has nothing: the failure, not "no address".
            assert await failure(resolver, "www.test") == socket.EAI_AGAIN
            # AAAA fails, A has nothing: the same.
            assert await failure(resolver, "six.test") == socket.EAI_AGAIN
    assert len(warnings(caplog.records)) == 2  # one SERVFAIL line per server
