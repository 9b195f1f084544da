"""The resolver plugin (``DnsResolver``): guests' names looked up over DNS or DoH.

One instance per runtime. The offer parses the settings and, when a resolver
is given, builds the lookups (``lookups.DnsLookups``: a dnspython resolver
with the servers, a TTL cache and the search list); each lookup runs as a
task on the runtime's trio loop, on dnspython's trio backend named
explicitly (dnspython's default backend is a process-wide guess, see
``doh``), and the core cancels it at its own deadline. dnspython is imported
only then, so a run without ``--resolver`` does not pay for it.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING

from wassh import NAMES, NameAnswer, Offer, PluginOptions, TransportConfig, hookimpl

from .settings import HTTP_VERSIONS, ResolverSettings

if TYPE_CHECKING:
    from .lookups import DnsLookups

NAME = "dns"
# As direct TCP: the only resolver installed by the project; another resolver
# plugin ranks itself above or below.
RANK = 100


class DnsResolver:
    """Answers ``wassh_getaddrinfo`` from the resolvers given with ``--resolver``."""

    name = NAME

    def __init__(self) -> None:
        self.settings = ResolverSettings()
        self.lookups: DnsLookups | None = None

    @hookimpl
    def wassh_addoption(self, options: PluginOptions) -> None:
        options.add(
            "--resolver",
            dest="resolver",
            action="append",
            metavar="URL",
            help="look the guest's names up at dns://ADDRESS[:PORT] (UDP, TCP when truncated) "
            "or https://HOST[:PORT]/dns-query (DNS-over-HTTPS); repeat to add fallbacks, "
            "tried in order",
        )
        options.add(
            "--resolver-ca",
            dest="ca",
            metavar="FILE",
            help="PEM CA certificates for https resolvers (default: the system's)",
        )
        options.add(
            "--resolver-timeout",
            dest="timeout",
            metavar="SECONDS",
            help="a lookup's time limit (default 5)",
        )
        options.add(
            "--resolver-search",
            dest="search",
            action="append",
            metavar="DOMAIN",
            help="a search domain for names with fewer dots than --resolver-ndots (repeatable)",
        )
        options.add(
            "--resolver-ndots",
            dest="ndots",
            metavar="N",
            help="names with fewer dots try the search domains first (default 1)",
        )
        options.add(
            "--resolver-http",
            dest="http",
            choices=HTTP_VERSIONS,
            help="HTTP version for DNS-over-HTTPS (default auto: HTTP/2 when the server offers it)",
        )

    @hookimpl
    def wassh_transport_offer(
        self, config: TransportConfig, settings: Mapping[str, object]
    ) -> Offer:
        self.settings = ResolverSettings.from_settings(settings)
        if not self.settings.resolvers:
            return Offer(
                NAME, frozenset({NAMES}), rank=RANK, available=False, reason="no --resolver given"
            )
        from .lookups import DnsLookups

        self.lookups = DnsLookups(self.settings)
        return Offer(NAME, frozenset({NAMES}), rank=RANK)

    @hookimpl
    async def wassh_getaddrinfo(
        self, host: str, family: int, config: TransportConfig
    ) -> NameAnswer:
        if self.lookups is None:
            raise socket.gaierror(
                socket.EAI_FAIL, "non-recoverable failure in name resolution: no --resolver"
            )
        return await self.lookups.lookup(host, family)
