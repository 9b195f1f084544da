"""The relay transport's settings: ``--relay`` and friends, or an embedder's mapping.

Command-line options (``wassh run --help``) and the keys an embedder passes as
``TransportConfig(settings={"websocket": {...}})``:

=============================  =======================================================
``url`` (``--relay``)          the relay; without it the transport is unavailable
``protocol``                   ``websockify`` (default), ``corp-relay``, ``corp-relay-v4``
``claim``                      which connects the relay takes: ``first-connect``
                               (default), ``all``, ``first-socket``
``headers`` / ``params``       extra HTTP headers / URL query parameters: a mapping,
                               or ``NAME=VALUE`` texts (``--relay-header``, ``--relay-param``)
``ca_file`` (``--relay-ca``)   CA bundle to verify a wss:// relay
``user``                       corp-relay-v4 ``dstUsername`` (default: empty)
``egress_domain``              corp-relay-v4 ``egressDomain`` (default: not sent)
``resume``                     resume corp-relay/corp-relay-v4 sessions (default True)
``reconnect_delay``            v4: seconds before a reconnect (default 2.0)
``max_reconnects``             v4: consecutive failed reconnects allowed (default 3)
``max_retries``                corp-relay: reconnect attempts (default None: as many
                               as the budget allows)
``reconnect_budget``           seconds from a lost WebSocket to giving up on it
                               (ECONNRESET), whatever tries are left (default 10)
``retransmit_on_resume``       corp-relay: re-send unacknowledged bytes (default True)
``report_connect_attempts``    corp-relay: add ``&try=N`` (default False)
``pure_acks``                  corp-relay: acknowledge in header-only messages when
                               there is nothing to send (default True)
``recv_limit``                 unread bytes a relay may push past withheld acks before
                               the connection is reset (default 16 MiB)
``keepalive``                  seconds of silence before a ping (default 3.0)
``keepalive_timeout``          seconds a ping may go unanswered (default 3.0)
``max_message``                largest message accepted from a relay (default 1 MiB)
``close_timeout``              seconds to flush and close after the guest closes, or
                               after the run is cancelled (2.0); the close frame that
                               ends the relay's session goes out before it ends
=============================  =======================================================
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wassh import parse_pairs

if TYPE_CHECKING:
    import ssl

PROTOCOLS = ("websockify", "corp-relay", "corp-relay-v4")
CLAIMS = ("first-connect", "all", "first-socket")
KEYS = frozenset(
    {
        "url",
        "protocol",
        "claim",
        "headers",
        "params",
        "ca_file",
        "user",
        "egress_domain",
        "resume",
        "reconnect_delay",
        "max_reconnects",
        "max_retries",
        "reconnect_budget",
        "retransmit_on_resume",
        "report_connect_attempts",
        "pure_acks",
        "recv_limit",
        "keepalive",
        "keepalive_timeout",
        "max_message",
        "close_timeout",
    }
)


def _number(given: Mapping[str, object], key: str, default: float) -> float:
    value = given.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"relay setting {key}: expected a number, not {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"relay setting {key}: expected a number, not {value!r}") from None
    if not number >= 0 or number == float("inf"):
        raise ValueError(f"relay setting {key}: expected a finite number >= 0, not {value!r}")
    return number


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("0", "false", "no", "off", "")
    return bool(value)


def bracket(host: str) -> str:
    """A host as it goes into a URL authority: IPv6 literals in brackets."""
    if host.startswith("["):
        return host
    try:
        if ipaddress.ip_address(host.split("%", 1)[0]).version == 6:
            return f"[{host}]"
    except ValueError:
        pass
    return host


@dataclass
class RelaySettings:
    url: str
    protocol: str = "websockify"
    claim: str = "first-connect"
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    ca_file: str | None = None
    user: str = ""
    egress_domain: str | None = None
    resume: bool = True
    reconnect_delay: float = 2.0
    max_reconnects: int = 3
    max_retries: int | None = None
    reconnect_budget: float = 10.0
    retransmit_on_resume: bool = True
    report_connect_attempts: bool = False
    pure_acks: bool = True
    recv_limit: int = 16 << 20
    keepalive: float = 3.0
    keepalive_timeout: float = 3.0
    max_message: int = 1 << 20
    close_timeout: float = 2.0
    connect_timeout: float = 75.0
    _ssl: ssl.SSLContext | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, given: Mapping[str, object], connect_timeout: float) -> RelaySettings:
        """Typed settings from the user's values; a bad or unknown one raises ``ValueError``."""
        unknown = set(given) - KEYS
        if unknown:
            raise ValueError(
                f"unknown relay settings: {', '.join(sorted(unknown))} "
                f"(known: {', '.join(sorted(KEYS))})"
            )
        url = given.get("url")
        if not isinstance(url, str) or not url:
            raise ValueError("no relay configured (--relay URL)")
        protocol = str(given.get("protocol", "websockify"))
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown relay protocol {protocol!r} (one of {', '.join(PROTOCOLS)})")
        claim = str(given.get("claim", "first-connect"))
        if claim not in CLAIMS:
            raise ValueError(f"unknown relay claim {claim!r} (one of {', '.join(CLAIMS)})")
        scheme = urllib.parse.urlsplit(url).scheme.lower()
        if scheme not in ("ws", "wss", "http", "https"):
            raise ValueError(f"relay URL must be ws(s):// or http(s)://: {url}")
        max_retries = given.get("max_retries")
        ca_file = given.get("ca_file")
        egress = given.get("egress_domain")
        return cls(
            url=url,
            protocol=protocol,
            claim=claim,
            headers=parse_pairs(given.get("headers", {}), "--relay-header"),
            params=parse_pairs(given.get("params", {}), "--relay-param"),
            ca_file=None if ca_file is None else str(ca_file),
            user=str(given.get("user", "")),
            egress_domain=None if egress is None else str(egress),
            resume=_bool(given.get("resume", True)),
            reconnect_delay=_number(given, "reconnect_delay", 2.0),
            max_reconnects=int(_number(given, "max_reconnects", 3)),
            max_retries=None if max_retries is None else int(_number(given, "max_retries", 0)),
            reconnect_budget=_number(given, "reconnect_budget", 10.0),
            retransmit_on_resume=_bool(given.get("retransmit_on_resume", True)),
            report_connect_attempts=_bool(given.get("report_connect_attempts", False)),
            pure_acks=_bool(given.get("pure_acks", True)),
            recv_limit=int(_number(given, "recv_limit", 16 << 20)),
            keepalive=_number(given, "keepalive", 3.0),
            keepalive_timeout=_number(given, "keepalive_timeout", 3.0),
            max_message=int(_number(given, "max_message", 1 << 20)),
            close_timeout=_number(given, "close_timeout", 2.0),
            connect_timeout=connect_timeout,
        )

    # -- TLS ----------------------------------------------------------------------------
    def ssl_context(self) -> ssl.SSLContext:
        import ssl

        if self._ssl is None:
            if self.ca_file:
                self._ssl = ssl.create_default_context(cafile=self.ca_file)
            else:
                self._ssl = ssl.create_default_context()
        return self._ssl

    # -- URLs ---------------------------------------------------------------------------
    def _split(self) -> urllib.parse.SplitResult:
        return urllib.parse.urlsplit(self.url)

    def ws_base(self) -> str:
        """The relay's WebSocket base URL, ending in '/' (corp-relay, v4)."""
        parts = self._split()
        scheme = {"http": "ws", "https": "wss"}.get(parts.scheme.lower(), parts.scheme.lower())
        path = parts.path if parts.path.endswith("/") else parts.path + "/"
        return urllib.parse.urlunsplit((scheme, parts.netloc, path, "", ""))

    def http_base(self) -> str:
        parts = self._split()
        scheme = {"ws": "http", "wss": "https"}.get(parts.scheme.lower(), parts.scheme.lower())
        path = parts.path if parts.path.endswith("/") else parts.path + "/"
        return urllib.parse.urlunsplit((scheme, parts.netloc, path, "", ""))

    def _with_params(self, url: str, query: list[tuple[str, str]]) -> str:
        """Append ``query`` (URI-encoded), the URL's own query and ``relay_params``."""
        parts = urllib.parse.urlsplit(url)
        own = urllib.parse.urlsplit(self.url).query
        items = [urllib.parse.urlencode(query, quote_via=urllib.parse.quote)] if query else []
        if own:
            items.append(own)
        if self.params:
            items.append(urllib.parse.urlencode(self.params, quote_via=urllib.parse.quote))
        q = "&".join(i for i in items if i)
        return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, q, ""))

    def websockify_url(self, host: str, port: int) -> str:
        """The configured URL; ``{host}``/``{port}`` stand for the guest's destination."""
        url = self.url.replace("{host}", bracket(host)).replace("{port}", str(port))
        parts = urllib.parse.urlsplit(url)
        scheme = {"http": "ws", "https": "wss"}.get(parts.scheme.lower(), parts.scheme.lower())
        query = parts.query
        if self.params:
            extra = urllib.parse.urlencode(self.params, quote_via=urllib.parse.quote)
            query = f"{query}&{extra}" if query else extra
        return urllib.parse.urlunsplit((scheme, parts.netloc, parts.path or "/", query, ""))

    def v4_connect_url(self, host: str, port: int) -> str:
        query = [("host", host), ("port", str(port)), ("dstUsername", self.user)]
        if self.egress_domain:
            query.append(("egressDomain", self.egress_domain))
        return self._with_params(self.ws_base() + "v4/connect", query)

    def v4_reconnect_url(self, sid: str, ack: int) -> str:
        return self._with_params(self.ws_base() + "v4/reconnect", [("sid", sid), ("ack", str(ack))])

    def v1_proxy_url(self, host: str, port: int) -> str:
        # Host and port go in without URL encoding, as corp relays expect them.
        base = self.http_base() + f"proxy?host={host}&port={port}"
        if self.params:
            base += "&" + urllib.parse.urlencode(self.params, quote_via=urllib.parse.quote)
        return base

    def v1_connect_url(self, sid: str, ack: int, pos: int, attempt: int | None) -> str:
        # The session id is pasted in verbatim: it may carry "&name=value" pairs.
        url = self.ws_base() + f"connect?sid={sid}&ack={ack & 0xFFFFFF}&pos={pos & 0xFFFFFF}"
        if attempt is not None:
            url += f"&try={attempt}"
        if self.params:
            url += "&" + urllib.parse.urlencode(self.params, quote_via=urllib.parse.quote)
        return url


def backoff_sequence(count: int) -> list[int]:
    """corp-relay reconnect delays in ms (docs/relay-protocols.md), for tests and docs."""
    out: list[int] = []
    b = 0
    for _ in range(count):
        b = next_backoff(b)
        out.append(b)
    return out


def next_backoff(b: int) -> int:
    b = 1 if b == 0 else 2 * b + 13
    if b > 10000:
        b = 10000 - (b % 9000)
    return b
