"""DNS-over-HTTPS (RFC 8484) as a dnspython nameserver that stays on the caller's backend.

dnspython's own ``DoHNameserver`` goes through ``dns.asyncquery.https``, which
takes its async backend from ``dns.asyncbackend.get_default_backend()``: a
process-wide choice, made once by sniffing the first loop that asked. In a
process where anything used dnspython under asyncio first, a lookup on the
runtime's trio loop would then build asyncio transports and fail. Here the
exchange uses the backend the resolver hands each query (the plugin passes
trio's explicitly), and dnspython's trio HTTP transport, whose network backend
dials the bootstrap addresses given here: the server's literal, or its name
looked up by the host's resolver (``/etc/hosts`` included), never by a DNS
server the plugin was not told about.

Failures that retrying cannot fix within one lookup (a certificate that does
not verify, an HTTP error status, a refused connection) raise ``DohFailure``,
an ``OSError``: dnspython then drops the server for the rest of the lookup
instead of retrying it until the lifetime runs out.

Within one lookup (``one_client_per_lookup``), the queries to a server (AAAA
and A, each search candidate) share one HTTP client, so one connection and one
TLS handshake; it is closed when the lookup ends, cancelled or not. Nothing
outlives a lookup: the runtime's stop has no loop to close connections on.
"""

from __future__ import annotations

import contextlib
import contextvars
import socket
import ssl
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import dns.asyncbackend
import dns.exception
import dns.message
import dns.nameserver
import dns.query
import h2.connection  # noqa: F401  (HTTP/2: a missing h2 fails the offer, not a lookup)
import httpx2
import trio

from .errors import DohFailure
from .settings import ResolverUrl

if TYPE_CHECKING:
    # Not re-exported by dns.asyncbackend for type checkers; the same class.
    from dns._asyncbackend import Backend

_CONTENT_TYPE = "application/dns-message"
CLOSE_GRACE = 0.2  # seconds a lookup's HTTP client may take to close
_MAX_ANSWER = 65535  # no DNS message is longer: TCP frames it with a 16-bit length


class HostLookup:
    """What dnspython's trio HTTP transport asks for a DoH server's addresses: the host's
    own resolver (a worker thread, abandoned on cancellation), duck-typing
    ``dns.asyncresolver.Resolver.resolve_name``."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def resolve_name(self, host: str, family: int = 0, **_: object) -> _Addresses:
        try:
            infos = await trio.socket.getaddrinfo(
                host, self.port, family or socket.AF_UNSPEC, socket.SOCK_STREAM
            )
        except socket.gaierror as exc:
            raise DohFailure(f"cannot look up {host}: {exc.strerror}") from None
        return _Addresses([str(info[4][0]) for info in infos])


class _Addresses:
    def __init__(self, addresses: list[str]) -> None:
        self._addresses = list(dict.fromkeys(addresses))

    def addresses(self) -> list[str]:
        return self._addresses


class DohNameserver(dns.nameserver.Nameserver):
    """One ``https://`` resolver; a fresh HTTP client per query, on the query's backend."""

    def __init__(self, url: ResolverUrl, tls: ssl.SSLContext, http: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # dnspython: untyped
        self.url = url
        self.tls = tls
        self.http1 = http in ("auto", "1.1")
        self.http2 = http in ("auto", "2")

    def kind(self) -> str:
        return "DoH"

    def is_always_max_size(self) -> bool:
        return True

    def __str__(self) -> str:
        return str(self.url)

    def answer_nameserver(self) -> str:
        return str(self.url)

    def answer_port(self) -> int:
        return self.url.port

    def query(
        self,
        request: dns.message.QueryMessage,
        timeout: float,
        source: str | None,
        source_port: int,
        max_size: bool = False,
        one_rr_per_rrset: bool = False,
        ignore_trailing: bool = False,
    ) -> dns.message.Message:
        raise NotImplementedError("the plugin resolves on the runtime's trio loop only")

    async def async_query(
        self,
        request: dns.message.QueryMessage,
        timeout: float,
        source: str | None,
        source_port: int,
        max_size: bool,
        backend: Backend,
        one_rr_per_rrset: bool = False,
        ignore_trailing: bool = False,
    ) -> dns.message.Message:
        wire = request.to_wire()
        async with self._client(backend) as client:
            started = time.monotonic()
            try:
                content = await backend.wait_for(self._post(client, wire), timeout)  # type: ignore[no-untyped-call]
            except httpx2.TimeoutException:
                raise dns.exception.Timeout(timeout=timeout) from None  # type: ignore[no-untyped-call]
            except httpx2.HTTPError as exc:
                raise DohFailure(failure_cause(exc)) from exc
        answer = dns.message.from_wire(
            content,
            keyring=request.keyring,
            request_mac=request.mac,
            one_rr_per_rrset=one_rr_per_rrset,
            ignore_trailing=ignore_trailing,
        )
        answer.time = time.monotonic() - started
        if not request.is_response(answer):
            raise dns.query.BadResponse
        return answer

    @contextlib.asynccontextmanager
    async def _client(self, backend: Backend) -> AsyncIterator[httpx2.AsyncClient]:
        """The lookup's client for this server (see ``one_client_per_lookup``), or one
        for this query alone."""
        shared = _LOOKUP_CLIENTS.get()
        if shared is None:
            async with self._new_client(backend) as own:
                yield own
            return
        if self not in shared:
            shared[self] = self._new_client(backend)
        yield shared[self]

    def _new_client(self, backend: Backend) -> httpx2.AsyncClient:
        literal = self.url.host if self.url.host_is_literal else None
        transport: Any = backend.get_transport_class()(  # type: ignore[no-untyped-call]
            http1=self.http1,
            http2=self.http2,
            verify=self.tls,
            local_port=0,
            bootstrap_address=literal,
            resolver=HostLookup(self.url.port),
            family=socket.AF_UNSPEC,
        )
        # trust_env=False: a proxy from the environment would take the query past the
        # transport above (and past the verification the user asked for).
        return httpx2.AsyncClient(
            http1=self.http1,
            http2=self.http2,
            verify=self.tls,
            transport=transport,
            trust_env=False,
            follow_redirects=False,
        )

    async def _post(self, client: httpx2.AsyncClient, wire: bytes) -> bytes:
        """POST the query (RFC 8484 4.1); the answer's body, read no further than a DNS
        message can be long."""
        headers = {"accept": _CONTENT_TYPE, "content-type": _CONTENT_TYPE}
        async with client.stream("POST", str(self.url), headers=headers, content=wire) as response:
            if not 200 <= response.status_code <= 299:
                raise DohFailure(f"HTTP status {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > _MAX_ANSWER:
                    raise DohFailure("an answer longer than a DNS message")
            return bytes(body)


# The clients of the lookup running in this task, by server: its queries (AAAA and A,
# each search candidate) share one connection, one TLS handshake.
_LOOKUP_CLIENTS: contextvars.ContextVar[dict[DohNameserver, httpx2.AsyncClient] | None] = (
    contextvars.ContextVar("wassh_resolver_dns_lookup_clients", default=None)
)


@contextlib.asynccontextmanager
async def one_client_per_lookup() -> AsyncIterator[None]:
    """Within this block (one lookup, one task), each DoH server's queries go through
    one HTTP client, closed at the end."""
    clients: dict[DohNameserver, httpx2.AsyncClient] = {}
    token = _LOOKUP_CLIENTS.set(clients)
    try:
        yield
    finally:
        _LOOKUP_CLIENTS.reset(token)
        for client in clients.values():
            # Shielded, so a cancelled lookup still says goodbye on its connections,
            # but briefly: a peer that stopped reading cannot hold the lookup's end.
            with trio.move_on_after(CLOSE_GRACE) as scope:
                scope.shield = True
                await client.aclose()


def failure_cause(exc: BaseException) -> str:
    """A short cause for an HTTP client's failure, from the exception that started it."""
    seen: set[int] = set()
    found: BaseException | None = exc
    while found is not None and id(found) not in seen:
        seen.add(id(found))
        if isinstance(found, ssl.SSLCertVerificationError):
            detail = found.verify_message or found.reason or ""
            return f"certificate verify failed: {detail}".rstrip(": ")
        if isinstance(found, ssl.SSLError):
            return f"TLS failed: {found.reason or found}"
        if isinstance(found, DohFailure):
            return str(found)
        found = found.__cause__ or found.__context__
    text = str(exc).strip().splitlines()
    if isinstance(exc, httpx2.ConnectError):
        return f"cannot connect{': ' + text[0] if text else ''}"
    return f"{type(exc).__name__}{': ' + text[0] if text else ''}"
