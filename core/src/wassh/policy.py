"""The network policy: which destinations a guest may reach and where it may listen.

One policy per runtime, enforced by the core in front of every transport, so a
plugin can neither skip nor widen it. Rules are ``HOST[:PORTS]`` patterns:

* HOST is an IP literal (IPv6 in brackets: ``[::1]``), a CIDR (``10.0.0.0/8``,
  ``[fd00::]/8``), a hostname glob, or ``*`` (every destination). In a glob,
  ``*`` stands for part of one label and never crosses a dot; a leading
  ``*.`` stands for one or more whole labels, so ``*.example.com`` matches
  ``a.b.example.com`` but neither ``example.com`` nor ``example.com.evil.net``.
* PORTS is ``N``, ``N-M`` or ``*`` (the default).

Connect rules: once any ``connect_allow`` rule exists, a destination must match
one; a ``connect_deny`` match refuses it whatever allows it. A name is checked
as a name before any transport sees it, and every address it resolves to is
checked again before the OS connect (``resolve`` does that for transports that
dial themselves). Numeric forms a resolver would accept (``127.1``,
``2130706433``, ``0x7f.1``, ``::ffff:127.0.0.1``) are matched as the address
they denote.

Listen rules: the guest may always listen on loopback; anywhere else only where
a ``listen_allow`` rule matches the address it binds.

Public API: plugins use the same grammar for their own rules (``parse_rule``,
``Rule.matches_name``/``matches_address``) and the same address parsing
(``parse_address``, ``unmap``, ``normalise_name``); ``__all__`` lists them.
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import logging
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, ParamSpec, TypeVar

log = logging.getLogger("wassh.policy")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
"""An IPv4 or IPv6 address."""
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
"""An IPv4 or IPv6 network."""
P = ParamSpec("P")
R = TypeVar("R")

_PORT = re.compile(r"[0-9]{1,5}")
_GLOB_LABEL = re.compile(r"[a-z0-9_*-]+")
# What inet_aton reads as an IPv4 address: digits, hex digits and dots only.
_INET_ATON_CHARS = re.compile(r"[0-9a-fA-FxX.]+")
_MAX_LOGGED = 1024
_MAX_CACHED = 4096
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


class PolicyError(ValueError):
    """A pattern that does not parse; the message is one line for the user."""


class Denied(PermissionError):
    """The policy refused an operation: the guest sees ``EACCES``.

    ``target`` is what was refused (``host:port``) and ``reason`` the rule, for
    the events stream.
    """

    def __init__(
        self, message: str, target: str = "", reason: str = "", address: str | None = None
    ) -> None:
        super().__init__(errno.EACCES, message)
        self.target = target
        self.reason = reason or message
        self.address = address  # the resolved address refused, when it was one
        self.reported = False  # the events stream has it already


def parse_address(text: str) -> IPAddress | None:
    """The address a numeric host denotes, or None for a name.

    Accepts what a resolver reads as numeric (``127.1``, ``2130706433``,
    ``0x7f.0.0.1``), drops an IPv6 zone (``fe80::1%eth0``), and treats an
    IPv4-mapped IPv6 address as the IPv4 address it carries. A numeric form
    with the root's trailing dot (``127.0.0.1.``) counts as that address: a
    resolver elsewhere (a relay's) may well read it so, and a deny rule must hold.
    """
    text = text.split("%", 1)[0]
    if text.endswith(".") and not text.endswith(".."):
        text = text[:-1]
    try:
        address: IPAddress = ipaddress.ip_address(text)
    except ValueError:
        if not _INET_ATON_CHARS.fullmatch(text):
            return None
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return unmap(address)


def unmap(address: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address as the IPv4 address it reaches."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def normalise_name(name: str) -> str:
    """A hostname as rules compare it: lower case, without the root's trailing dot."""
    name = name.lower()
    return name[:-1] if name.endswith(".") and len(name) > 1 else name


@dataclass(frozen=True)
class PortRange:
    """The ports a rule covers, ``low`` to ``high`` inclusive (``in`` tests a port)."""

    low: int = 0
    high: int = 65535

    @classmethod
    def parse(cls, text: str, pattern: str) -> PortRange:
        """``N``, ``N-M`` or ``*`` (every port), from ``pattern`` (for messages).

        :raises PolicyError: with one line saying what is wrong.
        """
        if text == "*":
            return cls()
        low_text, dash, high_text = text.partition("-")
        if not _PORT.fullmatch(low_text) or (dash and not _PORT.fullmatch(high_text)):
            raise PolicyError(f"bad port {text!r} in {pattern!r}: expected N, N-M or *")
        low = int(low_text)
        high = int(high_text) if dash else low
        if high > 65535 or low > high:
            raise PolicyError(f"bad port range {text!r} in {pattern!r}: 0-65535, low to high")
        return cls(low, high)

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.low <= port <= self.high


@dataclass(frozen=True)
class Rule:
    """One ``HOST[:PORTS]`` pattern, as given (``text``) and under which option."""

    text: str
    option: str
    ports: PortRange
    network: IPNetwork | None = None  # a literal is a network of one address
    glob: tuple[str, ...] | None = None  # labels; ("*",) alone is every destination
    every_label_count: bool = False  # the glob starts with "*.": one or more labels

    @property
    def is_everything(self) -> bool:
        return self.glob == ("*",)

    @property
    def matches_names(self) -> bool:
        return self.glob is not None

    def matches_name(self, name: str, port: int) -> bool:
        """Does this rule match the hostname ``name`` (already normalised)?"""
        if port not in self.ports or self.glob is None:
            return False
        if self.is_everything:
            return True
        return _glob_matches(self.glob, self.every_label_count, name.split("."))

    def matches_address(self, address: IPAddress, port: int) -> bool:
        if port not in self.ports:
            return False
        if self.network is not None:
            return _in_network(address, self.network)
        if self.is_everything:
            return True
        # An IPv4 glob ("10.0.0.*") reads an address by its dotted labels.
        if self.glob is not None and address.version == 4:
            return _glob_matches(self.glob, self.every_label_count, str(address).split("."))
        return False

    def __str__(self) -> str:
        return f"{self.option} {self.text}"


def _in_network(address: IPAddress, network: IPNetwork) -> bool:
    if address.version == network.version:
        return address in network
    # A rule written for IPv4-mapped addresses (inside ::ffff:0:0/96) covers the
    # IPv4 address they reach; a wider IPv6 rule (::/0) stays about IPv6.
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_MAPPED):
        return ipaddress.IPv6Address(f"::ffff:{address}") in network
    return False


@functools.lru_cache(maxsize=512)
def _label_regex(label: str) -> re.Pattern[str]:
    return re.compile("[^.]*".join(re.escape(part) for part in label.split("*")))


def _glob_matches(glob: tuple[str, ...], leading_any: bool, labels: list[str]) -> bool:
    if leading_any:
        suffix = glob[1:]
        if len(labels) <= len(suffix):
            return False
        labels = labels[len(labels) - len(suffix) :]
        glob = suffix
    elif len(labels) != len(glob):
        return False
    return all(_label_regex(g).fullmatch(label) for g, label in zip(glob, labels, strict=True))


def parse_rule(text: str, option: str) -> Rule:
    """Parse one ``HOST[:PORTS]`` pattern given with ``option`` (for messages).

    :raises PolicyError: with one line saying what is wrong.
    """
    pattern = text.strip()
    if not pattern:
        raise PolicyError(f"empty pattern for {option}")
    host, ports_text = _split_host_ports(pattern)
    ports = PortRange.parse(ports_text, pattern) if ports_text is not None else PortRange()
    if host == "*":
        return Rule(pattern, option, ports, glob=("*",))
    if "/" in host:
        try:
            network: IPNetwork = ipaddress.ip_network(host)
        except ValueError as exc:
            raise PolicyError(f"bad CIDR {host!r} in {pattern!r}: {exc}") from None
        return Rule(pattern, option, ports, network=network)
    address = parse_address(host)
    if address is not None:
        return Rule(pattern, option, ports, network=ipaddress.ip_network(address))
    if ":" in host:
        raise PolicyError(f"bad host {host!r} in {pattern!r}: write IPv6 addresses in brackets")
    name = normalise_name(host)
    labels = tuple(name.split("."))
    if len(name) > 253 or not all(_GLOB_LABEL.fullmatch(label) for label in labels):
        raise PolicyError(
            f"bad host {host!r} in {pattern!r}: expected an address, a CIDR, "
            "a hostname glob such as *.example.com, or *"
        )
    leading = labels[0] == "*" and len(labels) > 1
    return Rule(pattern, option, ports, glob=labels, every_label_count=leading)


def _split_host_ports(pattern: str) -> tuple[str, str | None]:
    if pattern.startswith("["):
        inside, sep, rest = pattern[1:].partition("]")
        if not sep:
            raise PolicyError(f"bad pattern {pattern!r}: '[' without ']'")
        if rest.startswith("/"):  # [fd00::]/8 or [fd00::]/8:22
            prefix, colon, ports = rest[1:].partition(":")
            return f"{inside}/{prefix}", ports if colon else None
        if rest and not rest.startswith(":"):
            raise PolicyError(f"bad pattern {pattern!r}: expected [ADDRESS]:PORTS")
        if ":" not in inside:
            raise PolicyError(f"bad pattern {pattern!r}: brackets are for IPv6 addresses")
        return inside, rest[1:] if rest else None
    if pattern.count(":") > 1:
        raise PolicyError(f"bad pattern {pattern!r}: write IPv6 addresses in brackets, [::1]:22")
    host, colon, ports = pattern.partition(":")
    if colon and not ports:
        raise PolicyError(f"bad pattern {pattern!r}: nothing after ':'")
    return host, ports if colon else None


def parse_rules(patterns: Iterable[str], option: str) -> tuple[Rule, ...]:
    """Every pattern as ``parse_rule`` parses it, in order."""
    return tuple(parse_rule(p, option) for p in patterns)


class BoundedCache(Generic[P, R]):
    """Memoises a pure function, forgetting everything once full."""

    def __init__(self, function: Callable[P, R], size: int = _MAX_CACHED) -> None:
        self.function = function
        self.size = size
        self.results: dict[object, R] = {}

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        key = (args, tuple(kwargs.items()))
        try:
            return self.results[key]
        except KeyError:
            pass
        if len(self.results) >= self.size:
            self.results.clear()
        result = self.results[key] = self.function(*args, **kwargs)
        return result


@dataclass(frozen=True, eq=False)
class NetworkPolicy:
    """The rules of one runtime; frozen once built, shared by every socket."""

    connect_allow: tuple[Rule, ...] = ()
    connect_deny: tuple[Rule, ...] = ()
    listen_allow: tuple[Rule, ...] = ()
    _by_name: BoundedCache[[str, int, bool], str | None] = field(init=False, repr=False)
    _by_address: BoundedCache[[str, IPAddress, int], str | None] = field(init=False, repr=False)
    _logged: set[str] = field(init=False, repr=False)

    @classmethod
    def from_patterns(
        cls,
        connect_allow: Sequence[str] = (),
        connect_deny: Sequence[str] = (),
        listen_allow: Sequence[str] = (),
        *,
        options: tuple[str, str, str] = ("--connect-allow", "--connect-deny", "--listen-allow"),
    ) -> NetworkPolicy:
        """Build a policy; raises ``PolicyError`` naming the first bad pattern.

        ``options`` name the three lists in messages (``wassh relay`` calls its
        own ``--allow`` and ``--deny``).
        """
        return cls(
            parse_rules(connect_allow, options[0]),
            parse_rules(connect_deny, options[1]),
            parse_rules(listen_allow, options[2]),
        )

    def __post_init__(self) -> None:
        # Verdicts are pure functions of their arguments: cached per policy (UDP
        # checks every datagram), and bounded like everything a guest can grow.
        object.__setattr__(self, "_by_name", BoundedCache(self._name_verdict))
        object.__setattr__(self, "_by_address", BoundedCache(self._address_verdict))
        object.__setattr__(self, "_logged", set())

    @property
    def restricts_connects(self) -> bool:
        return bool(self.connect_allow or self.connect_deny)

    # -- connects ----------------------------------------------------------------------
    def check_destination(self, host: str, port: int, *, addresses_checked: bool) -> None:
        """Check what the guest connects or sends to, before any transport sees it.

        ``addresses_checked`` is true when the transport will resolve ``host``
        through ``resolve``, which checks every address again; otherwise (a
        relay resolves at the far end) the name alone must be allowed.
        Raises ``Denied``.
        """
        verdict = self.destination_verdict(host, port, addresses_checked=addresses_checked)
        if verdict is not None:
            self._deny("connect to", _host_port(host, port), verdict)

    def check_address(self, host: str, address: IPAddress, port: int) -> None:
        """Check one address that ``host`` resolved to, before the OS connect."""
        verdict = self.address_verdict(host, address, port)
        if verdict is not None:
            address = unmap(address)
            target = _host_port(host or str(address), port)
            target = f"{target} ({address})" if host else target
            self._deny("connect to", target, verdict, str(address))

    def allows_address(self, host: str, address: IPAddress, port: int) -> bool:
        return self.address_verdict(host, address, port) is None

    # The verdicts themselves: a server (``wassh relay``) reports refusals in its
    # own log format, so these say why without logging or raising.
    def destination_verdict(self, host: str, port: int, *, addresses_checked: bool) -> str | None:
        """Why ``check_destination`` would refuse (the rule, or that none allows), or None."""
        if not self.restricts_connects:
            return None
        return self._by_name(host, port, addresses_checked)

    def address_verdict(self, host: str, address: IPAddress, port: int) -> str | None:
        """Why ``check_address`` would refuse, or None."""
        if not self.restricts_connects:
            return None
        return self._by_address(host, unmap(address), port)

    def _name_verdict(self, host: str, port: int, addresses_checked: bool) -> str | None:
        address = parse_address(host)
        if address is not None:
            return self._address_verdict("", address, port)
        name = normalise_name(host)
        for rule in self.connect_deny:
            if rule.matches_name(name, port):
                return str(rule)
        if not self.connect_allow:
            return None
        if any(rule.matches_name(name, port) for rule in self.connect_allow):
            return None
        if addresses_checked and any(r.network is not None for r in self.connect_allow):
            return None  # an address rule may allow what the name resolves to
        return f"no {self.connect_allow[0].option} rule matches"

    def _address_verdict(self, host: str, address: IPAddress, port: int) -> str | None:
        for rule in self.connect_deny:
            if rule.matches_address(address, port):
                return str(rule)
        if not self.connect_allow:
            return None
        name = normalise_name(host) if host and parse_address(host) is None else ""
        for rule in self.connect_allow:
            if rule.matches_address(address, port) or (name and rule.matches_name(name, port)):
                return None
        return f"no {self.connect_allow[0].option} rule matches"

    # -- listening ---------------------------------------------------------------------
    def check_listen(self, address: IPAddress, port: int) -> None:
        """May the guest bind ``address``/``port``? Loopback always; else a listen rule."""
        if not self.allows_listen(address, port):
            self._deny(
                "listen on",
                _host_port(str(address), port),
                "only loopback unless allowed with --listen-allow",
            )

    def allows_listen(self, address: IPAddress, port: int) -> bool:
        address = unmap(address)
        return address.is_loopback or any(
            rule.matches_address(address, port) for rule in self.listen_allow
        )

    # -- reporting ---------------------------------------------------------------------
    def _deny(self, what: str, target: str, why: str, address: str | None = None) -> None:
        message = f"denied {what} {target}: {why}"
        logged = self._logged
        if message not in logged and len(logged) < _MAX_LOGGED:
            logged.add(message)  # a guest retrying in a loop gets one line per destination
            log.warning("%s", message)
        raise Denied(message, target, why, address)

    def describe(self) -> list[str]:
        """The rules in force, one line each, for ``wassh transports``."""
        lines = [str(r) for r in (*self.connect_allow, *self.connect_deny, *self.listen_allow)]
        if not self.connect_allow and not self.connect_deny:
            lines.insert(0, "connect: any destination (no --connect-allow/--connect-deny)")
        lines.append(
            "listen: loopback" + (" and the --listen-allow rules" if self.listen_allow else " only")
        )
        return lines


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


__all__ = [
    "Denied",
    "IPAddress",
    "IPNetwork",
    "NetworkPolicy",
    "PolicyError",
    "PortRange",
    "Rule",
    "normalise_name",
    "parse_address",
    "parse_rule",
    "parse_rules",
    "unmap",
]
