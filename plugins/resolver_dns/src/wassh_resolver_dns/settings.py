"""The DNS resolver's settings: ``--resolver URL`` and its companions, or an embedder's mapping.

Keys (the command line's ``dest``; an embedder passes the same ones as
``TransportConfig(settings={"dns": {...}})``):

============  ===========================================================================
``resolver``  ``dns://HOST[:PORT]`` (HOST an IP literal, IPv6 in brackets; port 53; UDP,
              TCP when the answer is truncated) or ``https://HOST[:PORT][/PATH]`` (RFC 8484
              DNS-over-HTTPS; HOST a name or a literal; path ``/dns-query`` when none is
              given). A URL or a list of them, tried in order.
``ca``        a PEM file of CA certificates that https resolvers' certificates must chain
              to (instead of the system's trust store)
``timeout``   seconds a lookup may take in all (default 5, at most 300)
``search``    search domains, as resolv.conf's ``search``: a domain or a list
``ndots``     a name with fewer dots than this tries the search domains first (default 1)
``http``      ``auto`` (ALPN picks, HTTP/2 preferred), ``1.1`` or ``2``: DoH's HTTP version
============  ===========================================================================
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

KEYS = frozenset({"resolver", "ca", "timeout", "search", "ndots", "http"})
SCHEMES = ("dns", "https")
DNS_PORT = 53
HTTPS_PORT = 443
DOH_PATH = "/dns-query"  # RFC 8484's example path, the one servers use
HTTP_VERSIONS = ("auto", "1.1", "2")
DEFAULT_TIMEOUT = 5.0
MAX_TIMEOUT = 300.0
DEFAULT_NDOTS = 1
MAX_NDOTS = 15  # resolv.conf caps ndots at 15
MAX_RESOLVERS = 16
MAX_SEARCH = 32
# A host name as resolvers take it: LDH labels (and underscores) of 1 to 63
# bytes, 253 in all, one trailing dot allowed.
_HOSTNAME = re.compile(r"(?=.{1,253}\.?$)(?:[A-Za-z0-9_-]{1,63}\.)*[A-Za-z0-9_-]{1,63}\.?")
# RFC 3986 path characters (pchar and '/'), percent-escapes spelled out.
_PATH = re.compile(r"(?:/(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})*)+")
_UNSAFE = re.compile(r"[\x00-\x20\x7f]")
_MAX_URL = 2048


@dataclass(frozen=True)
class ResolverUrl:
    """One resolver: ``dns://`` (an address) or ``https://`` (a DoH endpoint)."""

    scheme: str  # "dns" or "https"
    host: str  # a literal without brackets, or (https only) a host name
    port: int
    path: str = ""  # https only

    @property
    def is_doh(self) -> bool:
        return self.scheme == "https"

    @property
    def host_is_literal(self) -> bool:
        return _is_literal(self.host)

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.authority}{self.path}"


@dataclass(frozen=True)
class ResolverSettings:
    """The parsed settings; ``resolvers`` empty means not configured."""

    resolvers: tuple[ResolverUrl, ...] = ()
    ca: Path | None = None
    timeout: float = DEFAULT_TIMEOUT
    search: tuple[str, ...] = ()
    ndots: int = DEFAULT_NDOTS
    http: str = "auto"

    @property
    def uses_doh(self) -> bool:
        return any(r.is_doh for r in self.resolvers)

    @classmethod
    def from_settings(cls, given: Mapping[str, object]) -> ResolverSettings:
        """Typed settings from the user's values; a bad or unknown one raises ``ValueError``."""
        unknown = set(map(str, given)) - KEYS
        if unknown:
            raise ValueError(
                f"unknown dns resolver settings: {', '.join(sorted(map(_shown, unknown)))} "
                f"(known: {', '.join(sorted(KEYS))})"
            )
        resolvers = tuple(parse_url(u) for u in _texts(given.get("resolver", ()), "resolver"))
        if len(resolvers) > MAX_RESOLVERS:
            raise ValueError(f"--resolver: at most {MAX_RESOLVERS} resolvers, not {len(resolvers)}")
        settings = cls(
            resolvers=resolvers,
            ca=_ca_path(given["ca"]) if "ca" in given else None,
            timeout=_timeout(given.get("timeout", DEFAULT_TIMEOUT)),
            search=_search(given.get("search", ())),
            ndots=_ndots(given.get("ndots", DEFAULT_NDOTS)),
            http=_http(given.get("http", "auto")),
        )
        if not resolvers:
            others = sorted(set(given) - {"resolver"})
            if others:
                raise ValueError(
                    f"dns resolver settings {', '.join(others)} given without --resolver URL"
                )
        elif not settings.uses_doh:
            for key, flag in (("ca", "--resolver-ca"), ("http", "--resolver-http")):
                if key in given:
                    raise ValueError(f"{flag} applies to https:// resolvers; none is given")
        return settings

    def tls_context(self) -> ssl.SSLContext:
        """The TLS client context of https resolvers: certificate and host name always
        verified, against ``ca`` when given (read now: a bad file fails here), else the
        system's trust store."""
        if self.ca is None:
            return ssl.create_default_context()
        shown = _shown(str(self.ca))
        try:
            data = self.ca.read_bytes()
        except OSError as exc:
            raise ValueError(f"--resolver-ca {shown}: {exc.strerror or exc}") from None
        if b"-----BEGIN CERTIFICATE-----" not in data:
            raise ValueError(f"--resolver-ca {shown}: no PEM certificate in it")
        try:
            return ssl.create_default_context(cadata=data.decode("ascii"))
        except (ssl.SSLError, UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"--resolver-ca {shown}: not a PEM CA bundle ({exc})") from None


def parse_url(url: str) -> ResolverUrl:
    """``dns://HOST[:PORT]`` or ``https://HOST[:PORT][/PATH]`` -> a ``ResolverUrl``."""
    shown = _shown(url)
    if not url.isascii():
        raise ValueError(f"bad resolver URL {shown}: only ASCII (percent-encode the path)")
    if len(url) > _MAX_URL or _UNSAFE.search(url):
        raise ValueError(f"bad resolver URL {shown}: too long, spaces or control characters")
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in SCHEMES:
        raise ValueError(
            f"bad resolver URL {shown}: expected dns://ADDRESS[:PORT] "
            "or https://HOST[:PORT]/dns-query"
        )
    if "?" in rest or "#" in rest:
        raise ValueError(f"bad resolver URL {shown}: no query or fragment")
    cut = rest.find("/")
    authority, path = (rest, "") if cut < 0 else (rest[:cut], rest[cut:])
    if "@" in authority:
        raise ValueError(f"bad resolver URL {shown}: no user name or password")
    host, port_text = _split_hostport(authority, shown)
    default_port = DNS_PORT if scheme == "dns" else HTTPS_PORT
    port = default_port if port_text is None else _port(port_text, shown)
    if scheme == "dns":
        if not _is_literal(host):
            raise ValueError(
                f"bad resolver URL {shown}: dns:// takes an IP address "
                "(the resolver cannot look up its own server)"
            )
        if path not in ("", "/"):
            raise ValueError(f"bad resolver URL {shown}: dns:// has no path")
        return ResolverUrl(scheme, host, port)
    if path and _PATH.fullmatch(path) is None:
        raise ValueError(f"bad resolver URL {shown}: bad path {path!r}")
    return ResolverUrl(scheme, host, port, path or DOH_PATH)


def _split_hostport(authority: str, shown: str) -> tuple[str, str | None]:
    """``HOST[:PORT]`` or ``[IPV6][:PORT]`` -> host (no brackets) and port text."""
    if authority.startswith("["):
        inside, closed, after = authority[1:].partition("]")
        if not closed or (after and not after.startswith(":")):
            raise ValueError(f"bad resolver URL {shown}: expected [IPV6 ADDRESS]:PORT")
        try:
            if "%" in inside:  # a zone: an interface of this host, not a server's address
                raise ValueError(inside)
            ipaddress.IPv6Address(inside)
        except ValueError:
            raise ValueError(
                f"bad resolver URL {shown}: brackets are for IPv6 addresses (no zone), "
                f"not {inside!r}"
            ) from None
        return inside, after[1:] if after else None
    if authority.count(":") > 1:
        raise ValueError(f"bad resolver URL {shown}: write an IPv6 address in brackets, [::1]")
    host, colon, port = authority.partition(":")
    if not host:
        raise ValueError(f"bad resolver URL {shown}: no host")
    if not _is_literal(host) and (_HOSTNAME.fullmatch(host) is None or host.endswith(".")):
        raise ValueError(f"bad resolver URL {shown}: {host!r} is not a host name or IP address")
    if ":" not in host and _looks_numeric(host) and not _is_literal(host):
        raise ValueError(f"bad resolver URL {shown}: {host!r} is not an IP address")
    return host.lower(), port if colon else None


def _port(text: str, shown: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 5 and 0 < int(text) <= 65535):
        raise ValueError(f"bad resolver URL {shown}: bad port {text!r} (1 to 65535)")
    return int(text)


def _is_literal(host: str) -> bool:
    if "%" in host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _looks_numeric(host: str) -> bool:
    """Digits and dots (``127.1``, ``1.2.3.4.5``): inet_aton's shorthands or a typo, never
    a name anyone means; refused rather than looked up."""
    return all(label.isdigit() for label in host.split(".") if label)


def _texts(value: object, key: str) -> list[str]:
    """A text or a list of texts (an embedder may pass either)."""
    items: Sequence[object]
    if isinstance(value, str):
        items = [value]
    elif isinstance(value, list | tuple):
        items = value
    else:
        raise ValueError(f"dns resolver setting {key}: expected text or a list, not {_kind(value)}")
    texts = []
    for item in items:
        if not isinstance(item, str) or not item:
            raise ValueError(f"dns resolver setting {key}: expected non-empty text, not {item!r}")
        texts.append(item)
    return texts


def _ca_path(value: object) -> Path:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value or "\0" in value:
        raise ValueError(f"--resolver-ca: expected a file name, not {_kind(value)}")
    return Path(value)


def _timeout(value: object) -> float:
    seconds = _number(value, "--resolver-timeout", whole=False)
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_TIMEOUT):
        raise ValueError(
            f"--resolver-timeout: {_shown(str(value))}: expected seconds, more than 0 and at "
            f"most {MAX_TIMEOUT:g}"
        )
    return seconds


def _ndots(value: object) -> int:
    ndots = int(_number(value, "--resolver-ndots", whole=True))
    if not 0 <= ndots <= MAX_NDOTS:
        raise ValueError(f"--resolver-ndots: {ndots}: expected 0 to {MAX_NDOTS}")
    return ndots


def _number(value: object, flag: str, whole: bool) -> float:
    """A number from the command line's text or an embedder's int or float."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{flag}: expected a number, not {_kind(value)}")
    if isinstance(value, float) and whole and not value.is_integer():
        raise ValueError(f"{flag}: {value!r}: expected a whole number")
    try:
        if isinstance(value, str):
            if not value.isascii():
                raise ValueError(value)
            return int(value) if whole else float(value)
        return int(value) if whole else float(value)
    except (ValueError, OverflowError):
        raise ValueError(f"{flag}: {_shown(str(value))}: expected a number") from None


def _search(value: object) -> tuple[str, ...]:
    domains = []
    for text in _texts(value, "search"):
        domain = text[:-1] if text.endswith(".") and len(text) > 1 else text
        if not domain.isascii() or _HOSTNAME.fullmatch(domain) is None or domain.endswith("."):
            raise ValueError(f"--resolver-search: {_shown(text)} is not a domain name")
        domains.append(domain.lower())
    if len(domains) > MAX_SEARCH:
        raise ValueError(f"--resolver-search: at most {MAX_SEARCH} domains, not {len(domains)}")
    return tuple(dict.fromkeys(domains))


def _http(value: object) -> str:
    if value not in HTTP_VERSIONS:
        raise ValueError(
            f"--resolver-http: {_shown(str(value))}: expected one of {', '.join(HTTP_VERSIONS)}"
        )
    return str(value)


def _kind(value: object) -> str:
    return type(value).__name__


def _shown(text: str) -> str:
    """``text`` for a one-line message: short, and no control characters."""
    return repr(_UNSAFE.sub("?", text)[:200])
