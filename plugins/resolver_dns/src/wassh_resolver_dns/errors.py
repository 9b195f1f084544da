"""A failed lookup as the guest's ``getaddrinfo`` reports it, and why each server failed.

dnspython raises ``NXDOMAIN``, ``NoAnswer``, ``LifetimeTimeout`` or
``NoNameservers``; the last two carry each server's failure (an exception,
or the rcode it answered). Temporary failures (a timeout, SERVFAIL, a server
that cannot be reached or whose TLS or HTTP fails) are ``EAI_AGAIN``, as the
guest may retry; a server that refuses, does not implement the query or
answers garbage is ``EAI_FAIL``.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Sequence

import dns.exception
import dns.message
import dns.resolver

_TEMPORARY_RCODES = frozenset({"SERVFAIL"})
_MESSAGES = {
    socket.EAI_NONAME: "no such name",
    socket.EAI_NODATA: "no address of that family for the name",
    socket.EAI_AGAIN: "temporary failure in name resolution",
    socket.EAI_FAIL: "non-recoverable failure in name resolution",
}


class DohFailure(OSError):
    """A DoH server could not be used for a query (``str()`` is the cause). An
    ``OSError``, so dnspython drops the server for the rest of the lookup."""


def gaierror(code: int, detail: str = "") -> socket.gaierror:
    message = _MESSAGES[code]
    return socket.gaierror(code, f"{message}: {detail}" if detail else message)


def lookup_error(exc: Exception) -> socket.gaierror:
    """The ``socket.gaierror`` for what dnspython raised."""
    if isinstance(exc, dns.resolver.NXDOMAIN):
        return gaierror(socket.EAI_NONAME)
    if isinstance(exc, dns.resolver.NoAnswer):
        return gaierror(socket.EAI_NODATA)
    if isinstance(exc, dns.resolver.LifetimeTimeout | dns.exception.Timeout):
        return gaierror(socket.EAI_AGAIN, "timed out")
    if isinstance(exc, dns.resolver.NoNameservers):
        temporary = any(_is_temporary(e[3]) for e in failures_of(exc)) or not failures_of(exc)
        code = socket.EAI_AGAIN if temporary else socket.EAI_FAIL
        return gaierror(code, "no server answered")
    if isinstance(exc, dns.resolver.YXDOMAIN):
        return gaierror(socket.EAI_FAIL, "the name is too long after its DNAME")
    return gaierror(socket.EAI_FAIL, type(exc).__name__)


def failures_of(exc: BaseException) -> Sequence[dns.resolver.ErrorTuple]:
    """Each server's failure recorded in a dnspython exception (none if it has no list)."""
    kwargs = getattr(exc, "kwargs", None)
    errors = kwargs.get("errors") if isinstance(kwargs, dict) else None
    return errors if isinstance(errors, list) else []


def server_causes(exc: BaseException, labels: dict[str, str]) -> Iterable[tuple[str, str]]:
    """``(server, cause)`` for each failure in ``exc``; ``labels`` names servers by
    ``str()`` of their dnspython nameserver."""
    for server, tcp, _port, error, _response in failures_of(exc):
        label = labels.get(str(server)) or f"server {server}"
        # dnspython marks DoH's queries as TCP ones; "over TCP" tells only for plain DNS.
        plain_tcp = tcp and not str(server).startswith("https://")
        yield label, _cause(error, plain_tcp)


def _is_temporary(error: Exception | str) -> bool:
    if isinstance(error, str):
        return error in _TEMPORARY_RCODES
    if isinstance(error, dns.message.Truncated):  # truncated even over TCP: broken server
        return False
    if isinstance(error, OSError | EOFError | dns.exception.Timeout):
        return True
    # Everything dnspython raises for an answer it cannot read (FormError, BadResponse,
    # a bad label or rdata) is a DNSException or a ValueError: the server is broken.
    return not isinstance(error, dns.exception.DNSException | ValueError)


def _cause(error: Exception | str, tcp: bool) -> str:
    over = " over TCP" if tcp else ""
    if isinstance(error, str):
        return f"answered {error}"
    if isinstance(error, dns.exception.Timeout):
        return f"timed out{over}"
    if isinstance(error, DohFailure):
        return str(error)
    if isinstance(error, ConnectionRefusedError):
        return f"connection refused{over}"
    if isinstance(error, OSError):
        return f"{(error.strerror or str(error) or type(error).__name__).lower()}{over}"
    if isinstance(error, EOFError):
        return f"connection closed{over}"
    if isinstance(error, dns.message.Truncated):
        return "truncated answer over TCP"
    if isinstance(error, dns.exception.DNSException | ValueError):
        text = str(error).strip().splitlines()
        return f"malformed answer ({type(error).__name__}{': ' + text[0] if text else ''})"
    return type(error).__name__
