"""What a resolver author tells the kit: ``ResolverUnderTest``."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from ..abi.wassh_calls import is_localhost
from ..host.fakedns import hostname
from ..plugins import TransportConfig
from ._spec import load_alone

# The names the kit's cases need among the declared ones (see ResolverUnderTest).
V4_ONLY = frozenset({"127.0.0.1"})
DUAL = frozenset({"::1", "127.0.0.1"})


@dataclass(frozen=True)
class ResolverUnderTest:
    """The resolver plugin a ``ResolverConformance`` class runs against, and the names it knows.

    :param name: the plugin's registered name (its entry point name, or the
        ``name`` attribute of a plugin object); the kit checks that this plugin
        answers each name the cases look up.
    :param answers: names the resolver answers, each with exactly the addresses
        (IP literals, any order) it must give for it. Among them, one name must
        resolve to ``127.0.0.1`` only (the guest connects to the kit's peer server
        through it) and one to ``::1`` and ``127.0.0.1`` (both families). Names
        must be host names the core passes to resolvers: LDH labels, not
        numeric, not ``localhost``.
    :param missing: a name that does not exist (the resolver answers ``EAI_NONAME``).
    :param unanswered: a name whose lookup never completes (for a DNS resolver, a
        name served by a server that never replies); the kit cancels it, or the
        core gives up at the connect timeout.
    :param canonical: ``{name: canonical name}`` for the declared names that are
        aliases (a CNAME chain); every other declared name must answer with no
        canonical name (or its own).
    :param plugins: plugin objects, classes or modules to register, as an
        embedder passes them to ``wassh.run(plugins=...)``.
    :param entry_points: names of installed ``wassh`` entry points to load;
        every other installed entry point is blocked (but ``transports``). With
        neither ``plugins`` nor ``entry_points``, the entry point ``name`` is loaded.
    :param settings: this plugin's own settings (``TransportConfig(settings=
        {name: ...})``).
    :param transports: installed transport entry points loaded beside the resolver
        when the guest runs, for the case where it connects to a name it looked
        up (the project's ``tcp`` by default); empty when ``plugins`` brings one.

    A declaration the cases cannot use raises ``ValueError`` saying why.
    """

    name: str
    _: KW_ONLY
    answers: Mapping[str, Sequence[str]]
    missing: str
    unanswered: str
    canonical: Mapping[str, str] = field(default_factory=dict)
    plugins: Sequence[object] = ()
    entry_points: Sequence[str] = ()
    settings: Mapping[str, object] = field(default_factory=dict)
    transports: Sequence[str] = ("tcp",)

    def __post_init__(self) -> None:
        where = f"ResolverUnderTest({self.name!r})"
        if not isinstance(self.answers, Mapping) or not self.answers:
            raise ValueError(f"{where}: answers must map names to their addresses")
        for host, texts in self.answers.items():
            _check_name(where, "answers", host)
            if isinstance(texts, str) or not texts:
                raise ValueError(
                    f"{where}: answers[{host!r}] must be a non-empty list of IP literals, "
                    f"not {texts!r}"
                )
            for text in texts:
                _literal(where, host, text)
        for role, needed in (("127.0.0.1 only", V4_ONLY), ("::1 and 127.0.0.1", DUAL)):
            if not any(addresses == needed for addresses in self.expected.values()):
                raise ValueError(
                    f"{where}: answers must include a name resolving to {role} "
                    f"(declared: {_shown(self.expected)})"
                )
        for role in ("missing", "unanswered"):
            host = getattr(self, role)
            _check_name(where, role, host)
            if _folded(host) in map(_folded, self.answers):
                raise ValueError(f"{where}: {role} name {host!r} is also in answers")
        if _folded(self.missing) == _folded(self.unanswered):
            raise ValueError(f"{where}: missing and unanswered must be different names")
        for alias, target in self.canonical.items():
            if alias not in self.answers:
                raise ValueError(f"{where}: canonical name given for {alias!r}, not in answers")
            _check_name(where, "canonical", target)

    @property
    def expected(self) -> dict[str, frozenset[str]]:
        """Each declared name's addresses, as normalised IP literals."""
        return {
            host: frozenset(str(ipaddress.ip_address(text)) for text in texts)
            for host, texts in self.answers.items()
        }

    @property
    def v4_only(self) -> str:
        """The declared name resolving to 127.0.0.1 only."""
        return next(host for host, found in self.expected.items() if found == V4_ONLY)

    @property
    def dual(self) -> str:
        """The declared name resolving to ::1 and 127.0.0.1."""
        return next(host for host, found in self.expected.items() if found == DUAL)

    def config(self, connect_timeout: float | None = None) -> TransportConfig:
        """A fresh ``TransportConfig`` carrying the plugin's settings."""
        settings: dict[str, Mapping[str, object]] = {}
        if self.settings:
            settings[self.name] = dict(self.settings)
        config = TransportConfig(settings=settings)
        if connect_timeout is not None:
            config.connect_timeout = connect_timeout
        return config

    def load_options(self) -> dict[str, Any]:
        """The ``wassh.prepare`` keywords loading this resolver alone (the hook-level cases)."""
        return load_alone(self.name, self.plugins, self.entry_points)

    def run_options(self) -> dict[str, Any]:
        """The ``wassh.run`` keywords loading this resolver and ``transports`` (the guest's)."""
        return load_alone(self.name, self.plugins, self.entry_points, beside=self.transports)


def family_of(text: str) -> int:
    return socket.AF_INET6 if ":" in text else socket.AF_INET


def _check_name(where: str, role: str, host: object) -> None:
    if (
        not isinstance(host, str)
        or not host.isascii()
        or hostname(host.encode()) is None
        or host.endswith(".")
        or is_localhost(host)
        or all(label.isdigit() for label in host.split("."))
    ):
        raise ValueError(
            f"{where}: {role} name {host!r} is not a host name the core asks resolvers "
            "for (LDH labels, no trailing dot, not numeric, not localhost)"
        )


def _literal(where: str, host: str, text: object) -> None:
    try:
        if not isinstance(text, str) or "%" in text:
            raise ValueError(text)
        ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(
            f"{where}: answers[{host!r}] holds {text!r}, not an IPv4 or IPv6 literal"
        ) from None


def _folded(host: str) -> str:
    return host.lower()


def _shown(expected: Mapping[str, frozenset[str]]) -> str:
    return ", ".join(f"{h}: {sorted(a)}" for h, a in expected.items()) or "none"
