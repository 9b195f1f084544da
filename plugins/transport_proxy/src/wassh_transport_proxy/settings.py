"""The proxy transport's settings: ``--proxy URL`` and ``--proxy-bypass``, or an embedder's mapping.

Keys (the command line's ``dest``; an embedder passes the same ones as
``TransportConfig(settings={"proxy": {...}})``):

=============  ===========================================================================
``url``        ``socks5h://[USER:PASS@]HOST[:PORT]`` (names go to the proxy unresolved),
               ``socks5://...`` (names resolved here, every address checked by the network
               policy), ``http://[USER:PASS@]HOST:PORT`` (HTTP CONNECT). USER and PASS are
               percent-decoded; an IPv6 HOST goes in brackets. SOCKS ports default to 1080.
``username``   overrides the URL's user (an embedder need not percent-encode)
``password``   overrides the URL's password
``bypass``     ``HOST[:PORTS]`` patterns, the ``--connect-allow`` syntax: matching connects
               are left to the next transport (direct TCP); a pattern or a list of them
=============  ===========================================================================
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from wassh import NetworkPolicy, PolicyError

KEYS = frozenset({"url", "username", "password", "bypass"})
_BYPASS_OPTIONS = ("--proxy-bypass", "--proxy-bypass", "--proxy-bypass")
SCHEMES = ("socks5h", "socks5", "http")
SOCKS_PORT = 1080  # IANA's port for SOCKS; HTTP proxies have no such default
# RFC 1929: ULEN and PLEN are one octet each, and neither field may be empty.
_SOCKS_FIELD_MAX = 255
# A host name as resolvers take it: LDH labels (and underscores) of 1 to 63
# bytes, 253 in all, one trailing dot allowed.
_HOSTNAME = re.compile(r"(?=.{1,253}\.?$)(?:[A-Za-z0-9_-]{1,63}\.)*[A-Za-z0-9_-]{1,63}\.?")
_UNSAFE = re.compile(r"[\x00-\x20\x7f]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def is_hostname(text: str) -> bool:
    """True for a host name that can go on the wire as it is (SOCKS5 ATYP 3, CONNECT)."""
    return text.isascii() and _HOSTNAME.fullmatch(text) is not None


def bracket(host: str) -> str:
    """``host`` as it stands before ``:PORT``: IPv6 literals in brackets."""
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True)
class ProxySettings:
    """One proxy, parsed and checked; ``str()`` shows it without the password."""

    scheme: str  # "socks5h", "socks5" or "http"
    host: str  # an IP literal or a name, without brackets
    port: int
    username: str | None = None
    password: str | None = None
    bypass: tuple[str, ...] = ()

    @property
    def socks(self) -> bool:
        return self.scheme in ("socks5", "socks5h")

    @property
    def resolves_locally(self) -> bool:
        """socks5://: names are resolved here with ``wassh.resolve``, which checks
        every address against the network policy; the proxy sees addresses only."""
        return self.scheme == "socks5"

    @property
    def has_credentials(self) -> bool:
        return self.username is not None

    def __str__(self) -> str:
        user = ""
        if self.username is not None:
            user = urllib.parse.quote(self.username, safe="") + ":***@"
        return f"{self.scheme}://{user}{bracket(self.host)}:{self.port}"

    @classmethod
    def from_settings(cls, given: Mapping[str, object]) -> ProxySettings:
        """Typed settings from the user's values; a bad or unknown one raises ``ValueError``."""
        unknown = set(given) - KEYS
        if unknown:
            raise ValueError(
                f"unknown proxy settings: {', '.join(sorted(unknown))} "
                f"(known: {', '.join(sorted(KEYS))})"
            )
        url = given.get("url")
        if not isinstance(url, str) or not url:
            alone = " (--proxy-bypass alone does nothing)" if "bypass" in given else ""
            raise ValueError(f"no proxy URL given (--proxy URL){alone}")
        settings = parse_url(url)
        username, password = settings.username, settings.password
        if "username" in given:
            username = _text(given["username"], "username")
        if "password" in given:
            password = _text(given["password"], "password")
        if password is not None and username is None:
            raise ValueError("a proxy password needs a user name")
        if username is not None and password is None:
            password = ""
        bypass = _patterns(given.get("bypass", ()))
        settings = ProxySettings(
            settings.scheme, settings.host, settings.port, username, password, bypass
        )
        settings.check_credentials()
        return settings

    def check_credentials(self) -> None:
        if self.username is None or self.password is None:
            return
        if self.socks:
            for what, value in (("user name", self.username), ("password", self.password)):
                size = len(value.encode())
                if not 1 <= size <= _SOCKS_FIELD_MAX:
                    raise ValueError(
                        f"proxy {what}: SOCKS5 (RFC 1929) takes 1 to 255 bytes, not {size}"
                    )
        elif ":" in self.username:
            raise ValueError("proxy user name: HTTP Basic authentication forbids ':' in it")
        if any(_CONTROL.search(v) for v in (self.username, self.password)):
            raise ValueError("proxy credentials: control characters are not allowed")

    def bypass_policy(self) -> NetworkPolicy | None:
        """The bypass patterns as a matcher (a policy whose allow rules are the patterns)."""
        if not self.bypass:
            return None
        return NetworkPolicy.from_patterns(list(self.bypass), options=_BYPASS_OPTIONS)


def parse_url(url: str) -> ProxySettings:
    """``SCHEME://[USER[:PASS]@]HOST[:PORT][/]`` -> settings (no bypass yet)."""
    shown = _redact(url)
    if _UNSAFE.search(url):
        raise ValueError(f"bad proxy URL {shown}: spaces or control characters")
    scheme, sep, after_scheme = url.partition("://")
    if not sep:
        raise ValueError(
            f"bad proxy URL {shown}: expected socks5h://HOST:PORT, socks5://HOST:PORT "
            "or http://HOST:PORT"
        )
    scheme = scheme.lower()
    if scheme not in SCHEMES:
        hint = {
            "https": "TLS to the proxy is not supported",
            "socks": "write socks5h:// (names resolved by the proxy) or socks5://",
            "socks4": "SOCKS4 is not supported",
            "socks4a": "SOCKS4a is not supported",
        }.get(scheme, "expected socks5h, socks5 or http")
        raise ValueError(f"bad proxy URL {shown}: scheme {scheme!r}: {hint}")
    cut = min((i for i in map(after_scheme.find, "/?#") if i >= 0), default=len(after_scheme))
    authority, rest = after_scheme[:cut], after_scheme[cut:]
    if rest not in ("", "/"):
        if "@" in rest:
            raise ValueError(
                f"bad proxy URL {shown}: percent-encode '/', '?', '#' and '@' in the user name "
                "and password (%2F, %3F, %23, %40)"
            )
        raise ValueError(f"bad proxy URL {shown}: a proxy URL has no path, query or fragment")
    userinfo, at, hostport = authority.rpartition("@")
    host, port_text = _split_hostport(hostport, shown)
    if not host:
        raise ValueError(f"bad proxy URL {shown}: no host")
    if port_text is None or port_text == "":
        if scheme == "http":
            raise ValueError(
                f"bad proxy URL {shown}: give the HTTP proxy's port (http://HOST:PORT)"
            )
        port = SOCKS_PORT
    elif not (port_text.isascii() and port_text.isdigit() and 0 < int(port_text) <= 65535):
        raise ValueError(f"bad proxy URL {shown}: bad port {port_text!r} (1 to 65535)")
    else:
        port = int(port_text)
    username = password = None
    if at:
        user_text, _, password_text = userinfo.partition(":")
        try:
            username = urllib.parse.unquote(user_text, errors="strict")
            password = urllib.parse.unquote(password_text, errors="strict")
        except UnicodeDecodeError:
            raise ValueError(f"bad proxy URL {shown}: credentials are not UTF-8") from None
        if not username:
            raise ValueError(f"bad proxy URL {shown}: empty user name before '@'")
    settings = ProxySettings(scheme, host, port, username, password)
    settings.check_credentials()
    return settings


def _split_hostport(hostport: str, shown: str) -> tuple[str, str | None]:
    """``HOST[:PORT]`` or ``[IPV6]:PORT`` -> host (percent-decoded) and port text."""
    if hostport.startswith("["):
        inside, closed, after = hostport[1:].partition("]")
        if not closed or (after and not after.startswith(":")):
            raise ValueError(f"bad proxy URL {shown}: expected [IPV6 ADDRESS]:PORT")
        host = urllib.parse.unquote(inside)  # a zone: [fe80::1%25eth0]
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise ValueError(
                f"bad proxy URL {shown}: brackets are for IPv6 addresses, not {host!r}"
            ) from None
        return host, after[1:] if after else None
    if hostport.count(":") > 1:
        raise ValueError(f"bad proxy URL {shown}: write an IPv6 address in brackets, [::1]:1080")
    host, colon, port = hostport.partition(":")
    if host and not _is_literal(host) and not is_hostname(host):
        raise ValueError(f"bad proxy URL {shown}: {host!r} is not a host name or IP address")
    return host, port if colon else None


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _redact(url: str) -> str:
    """The URL for messages: never the password, and no control characters.

    Everything before the last '@' counts as credentials, so a password with
    an unencoded '/' or '@' in it is hidden too.
    """
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        userinfo, _, hostport = rest.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        url = f"{scheme}://{user}:***@{hostport}" if colon else url
    return repr(_UNSAFE.sub("?", url)[:200])


def _text(value: object, key: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"proxy setting {key}: expected text, not {type(value).__name__}")
    return value


def _patterns(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        items: Sequence[object] = [value]
    elif isinstance(value, list | tuple):
        items = value
    else:
        raise ValueError(f"proxy setting bypass: expected patterns, not {value!r}")
    patterns = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"proxy setting bypass: expected a pattern, not {item!r}")
        # A comma-separated list is what NO_PROXY users write.
        patterns += [p.strip() for p in item.split(",") if p.strip()]
    try:
        NetworkPolicy.from_patterns(patterns, options=_BYPASS_OPTIONS)
    except PolicyError as exc:
        raise ValueError(str(exc)) from None
    return tuple(patterns)
