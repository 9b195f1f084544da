"""The lookups behind ``DnsResolver``: a dnspython resolver built from the settings.

Imported only once a resolver is configured: dnspython's async resolver and
its DoH stack take longer to import than the rest of ``wassh`` start-up, and
most runs (fake DNS) never need them.
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import TYPE_CHECKING

import dns.asyncbackend
import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
from dns.resolver import Answer
from wassh import NameAnswer

from .errors import gaierror, lookup_error, server_causes
from .settings import ResolverSettings, ResolverUrl

if TYPE_CHECKING:
    # Not re-exported by dns.asyncbackend for type checkers; the same class.
    from dns._asyncbackend import Backend

log = logging.getLogger("wassh.resolver.dns")

# Failures of the servers rather than answers about the name: the other family's
# query may still get through.
_SERVER_TROUBLE = (dns.resolver.NoNameservers, dns.exception.Timeout)
# What a host name may hold: dnspython would read a backslash as an escape.
_HOST = re.compile(r"[A-Za-z0-9_.-]{1,254}")

EDNS_PAYLOAD = 1232  # the DNS flag day 2020 size: no IP fragmentation on common paths
# Distinct failure causes logged per runtime; past this, a broken network
# that fails in ever new ways stays quiet rather than filling the log.
MAX_REPORTED = 64


class DnsLookups:
    """One runtime's resolver: its servers, TTL cache and search list."""

    def __init__(self, settings: ResolverSettings) -> None:
        self.settings = settings
        self.labels: dict[str, str] = {}
        self.reported: set[tuple[str, str]] = set()
        # Around each lookup: DoH's shared HTTP clients when an https resolver is given.
        self.per_lookup: Callable[[], AbstractAsyncContextManager[object]] = nullcontext
        self.resolver = self._build()
        # Named, not sniffed: dnspython's own choice is made once per process.
        self.backend: Backend = dns.asyncbackend.get_backend("trio")

    def _build(self) -> dns.asyncresolver.Resolver:
        settings = self.settings
        resolver = dns.asyncresolver.Resolver(configure=False)
        # configure=False still takes a domain from the host's name, which would
        # become the search list: the guest's names go where the settings say only.
        resolver.domain = dns.name.root
        resolver.search = [dns.name.from_text(d) for d in settings.search]
        resolver.use_search_by_default = True
        resolver.ndots = settings.ndots
        resolver.lifetime = settings.timeout
        resolver.timeout = min(2.0, settings.timeout)
        resolver.cache = dns.resolver.Cache()
        resolver.use_edns(0, 0, EDNS_PAYLOAD)
        tls = settings.tls_context() if settings.uses_doh else None
        servers: list[dns.nameserver.Nameserver] = []
        for url in settings.resolvers:
            servers.append(self._nameserver(url, tls))
        resolver.nameservers = servers
        return resolver

    def _nameserver(
        self, url: ResolverUrl, tls: ssl.SSLContext | None
    ) -> dns.nameserver.Nameserver:
        if not url.is_doh:
            server = dns.nameserver.Do53Nameserver(url.host, url.port)
            self.labels[str(server)] = f"DNS server {url.authority}"
            return server
        # DoH needs dnspython's optional HTTP stack; without it, fail here (closed)
        # rather than ever send a name in the clear.
        try:
            from .doh import DohNameserver, one_client_per_lookup
        except ImportError as exc:
            raise RuntimeError(
                f"{url} needs DNS-over-HTTPS support (dnspython[doh]: httpx2, h2): {exc}"
            ) from None
        assert tls is not None
        self.labels[str(url)] = f"DoH server {url}"
        self.per_lookup = one_client_per_lookup
        return DohNameserver(url, tls, self.settings.http)

    async def lookup(self, host: str, family: int) -> NameAnswer:
        """``wassh_getaddrinfo``'s answer for ``host``: see ``DnsResolver``."""
        if family not in (socket.AF_INET, socket.AF_INET6, socket.AF_UNSPEC):
            raise gaierror(socket.EAI_FAIL, f"address family {family}")
        if _HOST.fullmatch(host) is None:  # the core's promise, kept here too: no escapes
            raise gaierror(socket.EAI_NONAME, "not a host name")
        try:
            name = dns.name.from_text(host, origin=None)
        except dns.exception.DNSException as exc:
            raise gaierror(socket.EAI_NONAME, f"bad name ({type(exc).__name__})") from None
        try:
            async with self.per_lookup():
                if family == socket.AF_UNSPEC:
                    answers = await self._either_family(self.resolver, name)
                else:
                    answers = await self.resolver.resolve_name(
                        name, family, search=True, backend=self.backend
                    )
            return _answer(answers, family, host)
        except socket.gaierror:
            raise
        except dns.exception.DNSException as exc:
            self._report(exc)
            raise lookup_error(exc) from None
        except Exception as exc:  # not dnspython's: a bug here or below, never the guest's
            self._report_unexpected(exc)
            raise gaierror(socket.EAI_FAIL, type(exc).__name__) from None

    async def _either_family(
        self, resolver: dns.asyncresolver.Resolver, name: dns.name.Name
    ) -> dns.resolver.HostAnswers:
        """AAAA, then A for the name AAAA settled on, within one lifetime; as glibc does,
        one family's temporary failure (SERVFAIL, a timeout) does not hide the other's
        addresses (dnspython's ``resolve_name`` would fail the whole lookup)."""
        started = time.time()  # dnspython's lifetimes run on time.time()

        async def ask(qname: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> Answer:
            lifetime = max(0.0, self.settings.timeout - (time.time() - started))
            return await resolver.resolve(
                qname,
                rdtype,
                search=True,
                raise_on_no_answer=False,
                lifetime=lifetime,
                backend=self.backend,
            )

        v6: Answer | None = None
        trouble: dns.exception.DNSException | None = None
        try:
            v6 = await ask(name, dns.rdatatype.AAAA)
        except _SERVER_TROUBLE as exc:
            trouble = exc
        try:
            # The name AAAA found (after the search list), so both come from one name.
            v4 = await ask(v6.qname if v6 is not None else name, dns.rdatatype.A)
        except _SERVER_TROUBLE as exc:
            if v6 is not None and v6.rrset is not None:
                self._report(exc)  # A failed, AAAA answered: its addresses it is
                return dns.resolver.HostAnswers.make(v6=v6, add_empty=False)
            if trouble is not None:
                self._report(trouble)
            raise
        answers = dns.resolver.HostAnswers.make(v6=v6, v4=v4, add_empty=False)
        if trouble is not None:
            self._report(trouble)
            if not answers:
                raise trouble
        if not answers:
            raise dns.resolver.NoAnswer(response=v4.response)  # type: ignore[no-untyped-call]
        return answers

    def _report(self, exc: BaseException) -> None:
        """One warning per distinct (server, cause): a guest retrying a dead server
        in a loop logs it once."""
        for server, cause in server_causes(exc, self.labels):
            key = (server, cause)
            if key in self.reported or len(self.reported) >= MAX_REPORTED:
                continue
            self.reported.add(key)
            log.warning("%s: %s", server, cause)

    def _report_unexpected(self, exc: Exception) -> None:
        key = ("lookup", type(exc).__name__)
        if key not in self.reported and len(self.reported) < MAX_REPORTED:
            self.reported.add(key)
            log.warning("lookup failed unexpectedly: %s: %s", type(exc).__name__, exc)


def _answer(answers: dns.resolver.HostAnswers, family: int, host: str) -> NameAnswer:
    addresses: list[tuple[int, bytes]] = []
    for text, af in answers.addresses_and_families(family):
        packed = (af, socket.inet_pton(af, text))
        if packed not in addresses:
            addresses.append(packed)
    if not addresses:
        raise gaierror(socket.EAI_NODATA)
    canonical = answers.canonical_name().to_text(omit_final_dot=True)
    asked = host[:-1] if host.endswith(".") else host
    return NameAnswer(addresses, None if canonical.lower() == asked.lower() else canonical)
