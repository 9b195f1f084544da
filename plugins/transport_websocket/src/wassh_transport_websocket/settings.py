"""Relay settings read from a runtime's ``TransportConfig``.

``relay_url``, ``relay_protocol``, ``relay_claim``, ``relay_headers``,
``relay_params`` and ``relay_ca_file`` are core settings; finer knobs live in
``config.extra`` under these keys:

=============================  =======================================================
``relay_user``                 corp-relay-v4 ``dstUsername`` (default: empty)
``relay_egress_domain``        corp-relay-v4 ``egressDomain`` (default: not sent)
``relay_resume``               resume corp-relay/corp-relay-v4 sessions (default True)
``relay_reconnect_delay``      v4: seconds before a reconnect (default 2.0)
``relay_max_reconnects``       v4: consecutive failed reconnects allowed (default 3)
``relay_max_retries``          corp-relay: reconnect attempts (default None: as many
                               as the budget allows)
``relay_reconnect_budget``     seconds from a lost WebSocket to giving up on it
                               (ECONNRESET), whatever tries are left (default 10)
``relay_retransmit_on_resume`` corp-relay: re-send unacknowledged bytes (default True)
``relay_report_connect_attempts`` corp-relay: add ``&try=N`` (default False)
``relay_pure_acks``            corp-relay: acknowledge in header-only messages when
                               there is nothing to send (default True)
``relay_recv_limit``           unread bytes a relay may push past withheld acks before
                               the connection is reset (default 16 MiB)
``relay_keepalive``            seconds of silence before a ping (default 3.0)
``relay_keepalive_timeout``    seconds a ping may go unanswered (default 3.0)
``relay_max_message``          largest message accepted from a relay (default 1 MiB)
``relay_close_timeout``        seconds to flush and close after the guest closes (2.0)
=============================  =======================================================
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wassh import TransportConfig

if TYPE_CHECKING:
    import ssl

PROTOCOLS = ("websockify", "corp-relay", "corp-relay-v4")


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
    def from_config(cls, config: TransportConfig) -> RelaySettings:
        if not config.relay_url:
            raise ValueError("no relay configured")
        extra = config.extra
        protocol = config.relay_protocol or "websockify"
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown relay protocol {protocol!r} (one of {', '.join(PROTOCOLS)})")
        if config.relay_claim not in ("first-connect", "all", "first-socket"):
            raise ValueError(f"unknown relay claim {config.relay_claim!r}")
        scheme = urllib.parse.urlsplit(config.relay_url).scheme.lower()
        if scheme not in ("ws", "wss", "http", "https"):
            raise ValueError(f"relay URL must be ws(s):// or http(s)://: {config.relay_url}")
        max_retries = extra.get("relay_max_retries")
        return cls(
            url=config.relay_url,
            protocol=protocol,
            claim=config.relay_claim,
            headers=dict(config.relay_headers),
            params=dict(config.relay_params),
            ca_file=config.relay_ca_file,
            user=str(extra.get("relay_user", "")),
            egress_domain=extra.get("relay_egress_domain"),
            resume=_bool(extra.get("relay_resume", True)),
            reconnect_delay=float(extra.get("relay_reconnect_delay", 2.0)),
            max_reconnects=int(extra.get("relay_max_reconnects", 3)),
            max_retries=None if max_retries is None else int(max_retries),
            reconnect_budget=float(extra.get("relay_reconnect_budget", 10.0)),
            retransmit_on_resume=_bool(extra.get("relay_retransmit_on_resume", True)),
            report_connect_attempts=_bool(extra.get("relay_report_connect_attempts", False)),
            pure_acks=_bool(extra.get("relay_pure_acks", True)),
            recv_limit=int(extra.get("relay_recv_limit", 16 << 20)),
            keepalive=float(extra.get("relay_keepalive", 3.0)),
            keepalive_timeout=float(extra.get("relay_keepalive_timeout", 3.0)),
            max_message=int(extra.get("relay_max_message", 1 << 20)),
            close_timeout=float(extra.get("relay_close_timeout", 2.0)),
            connect_timeout=config.connect_timeout,
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
