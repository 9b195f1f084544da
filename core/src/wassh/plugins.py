"""Finding, ranking and dispatching to transport plugins."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import hookspecs
from .abi.errno import Errno, WasiError
from .policy import NetworkPolicy

log = logging.getLogger("wassh.plugins")

ENTRY_POINT_GROUP = "wassh"

STREAM = "stream"
DGRAM = "dgram"
LISTEN = "listen"
UNIX = "unix"

# The per-socket hooks an owner may implement, called directly (see hookspecs).
SOCKET_HOOKS = (
    "wassh_sock_connect",
    "wassh_sock_connect_check",
    "wassh_sock_recv_into",
    "wassh_sock_send",
    "wassh_sock_sendto",
    "wassh_sock_wait_handle",
    "wassh_sock_setsockopt",
    "wassh_sock_getsockopt",
    "wassh_sock_shutdown",
    "wassh_sock_close",
    "wassh_sock_name",
    "wassh_sock_bind",
    "wassh_sock_listen",
    "wassh_sock_accept",
)


@dataclass(frozen=True)
class ConnectRequest:
    """What a plugin's ``accepts`` sees when a socket is about to connect or bind."""

    kind: str  # STREAM, DGRAM, LISTEN or UNIX
    family: int  # host socket.AF_* value
    host: str
    port: int
    # True when the best transport could not resolve ``host``: a transport that
    # resolves names elsewhere (a relay) may take it even if it would not otherwise.
    unresolved: bool = False


@dataclass(frozen=True)
class Offer:
    """A plugin's answer to ``wassh_transport_offer``."""

    name: str
    kinds: frozenset[str]
    rank: int = 0
    available: bool = True
    reason: str = ""
    accepts: Callable[[ConnectRequest], bool] | None = None
    # True when the transport resolves every name with ``wassh.resolve`` before
    # dialling, which checks each address against the network policy. Otherwise
    # (a relay resolves at the far end) the policy decides on the name alone.
    checks_addresses: bool = False


@dataclass
class TransportConfig:
    """Settings every transport may read; plugins of third parties use ``extra``."""

    hosts: dict[str, list[str]] = field(default_factory=dict)
    # False: never ask the host's resolver; names resolve through ``hosts`` or
    # at a relay only (the host's DNS never sees the guest's names).
    host_dns: bool = True
    connect_timeout: float = 75.0
    relay_url: str | None = None
    relay_protocol: str = "websockify"
    # "first-connect": connects go to the relay until one succeeds (then direct);
    # "all": every TCP connect goes through the relay;
    # "first-socket": the original's rule (the first stream socket created).
    relay_claim: str = "first-connect"
    relay_headers: dict[str, str] = field(default_factory=dict)
    relay_params: dict[str, str] = field(default_factory=dict)
    relay_ca_file: str | None = None
    # The network policy (``wassh.policy``): HOST[:PORTS] patterns. Read once,
    # when the runtime starts; plugins see the settings but cannot change them.
    connect_allow: list[str] = field(default_factory=list)
    connect_deny: list[str] = field(default_factory=list)
    listen_allow: list[str] = field(default_factory=list)
    unix_map: dict[str, str] = field(default_factory=dict)
    # Offer names that must be available, or the runtime does not start (the
    # core adds those its own settings need: ``relay_url`` needs "websocket").
    require: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def required_transports(self) -> dict[str, str]:
        """Offer name -> the setting that needs it."""
        needed = {name: "require" for name in self.require}
        if self.relay_url:
            needed.setdefault("websocket", "--relay")
        if self.unix_map:
            needed.setdefault("unix", "--unix")
        return needed


class PluginError(Exception):
    """A plugin the configuration depends on cannot be used; one line for the user."""


class Dispatch:
    """One plugin's socket hooks as plain callables, looked up once."""

    def __init__(self, pm: pluggy.PluginManager, plugin: object, offer: Offer) -> None:
        self.plugin = plugin
        self.offer = offer
        self.name: str = offer.name
        for hook_name in SOCKET_HOOKS:
            caller = getattr(pm.hook, hook_name)
            spec_args = caller.spec.argnames if caller.spec else ()
            impl = next((i for i in caller.get_hookimpls() if i.plugin is plugin), None)
            attr = "sockname" if hook_name == "wassh_sock_name" else hook_name[len("wassh_sock_") :]
            setattr(self, attr, _direct(impl, spec_args, hook_name))

    connect: Callable[..., Any]
    connect_check: Callable[..., Any]
    recv_into: Callable[..., Any]
    send: Callable[..., Any]
    sendto: Callable[..., Any]
    wait_handle: Callable[..., Any]
    setsockopt: Callable[..., Any]
    getsockopt: Callable[..., Any]
    shutdown: Callable[..., Any]
    close: Callable[..., Any]
    sockname: Callable[..., Any]
    bind: Callable[..., Any]
    listen: Callable[..., Any]
    accept: Callable[..., Any]


def _direct(impl: Any, spec_args: Sequence[str], hook_name: str) -> Callable[..., Any]:
    if impl is None:

        def missing(*_args: Any) -> Any:
            raise WasiError(Errno.ENOTSUP, f"transport does not implement {hook_name}")

        return missing
    fn: Callable[..., Any] = impl.function
    if tuple(impl.argnames) == tuple(spec_args):
        return fn
    # pluggy lets an implementation take fewer arguments than the spec.
    picks = [spec_args.index(a) for a in impl.argnames]
    return lambda *args: fn(*(args[i] for i in picks))


class Transports:
    """The ranked transports of one runtime, and the network policy they all obey.

    Fails closed: a plugin that cannot make its offer, or a transport the
    configuration needs that is missing or unavailable, raises ``PluginError``
    before any guest runs; a bad policy pattern raises ``PolicyError``.
    """

    def __init__(self, pm: pluggy.PluginManager, config: TransportConfig) -> None:
        self.pm = pm
        self.config = config
        # Built before any plugin runs, from copies: nothing a plugin does to
        # ``config`` afterwards changes it.
        self.policy = NetworkPolicy.from_patterns(
            list(config.connect_allow), list(config.connect_deny), list(config.listen_allow)
        )
        self.offers: list[tuple[Offer, object]] = []
        for plugin in pm.get_plugins():
            impl = getattr(plugin, "wassh_transport_offer", None)
            if impl is None:
                continue
            try:
                offered = impl(config=config)
            except Exception as exc:
                raise PluginError(
                    f"plugin {pm.get_name(plugin)!r} cannot make its offer: {_reason(exc)} "
                    f"(block it with --block-plugin {pm.get_name(plugin)} to run without it)"
                ) from exc
            # One plugin may serve several kinds under separate names and ranks.
            for offer in [offered] if isinstance(offered, Offer) else offered or ():
                self.offers.append((offer, plugin))
        self.offers.sort(key=lambda op: (-op[0].rank, op[0].name))
        self._check_required()
        self._dispatch = {
            id(offer): Dispatch(pm, plugin, offer)
            for offer, plugin in self.offers
            if offer.available
        }
        log.info(
            "transport ranking: %s",
            ", ".join(
                f"{o.name}({o.rank}{'' if o.available else ', unavailable: ' + o.reason})"
                for o, _ in self.offers
            )
            or "(none)",
        )

    def _check_required(self) -> None:
        for name, setting in self.config.required_transports().items():
            found = [o for o, _ in self.offers if o.name == name]
            if not found:
                why = (
                    f"plugin {name!r} is blocked"
                    if self.pm.is_blocked(name)
                    else "no installed plugin offers it"
                )
                raise PluginError(f"{setting} needs the {name!r} transport: {why}")
            if not any(o.available for o in found):
                raise PluginError(
                    f"{setting} needs the {name!r} transport, which is unavailable: "
                    f"{found[0].reason or 'no reason given'}"
                )

    def serves(self, kind: str) -> bool:
        return any(o.available and kind in o.kinds for o, _ in self.offers)

    def choose(self, request: ConnectRequest, skip: Iterable[str] = ()) -> Dispatch | None:
        skipped = set(skip)
        for offer, _ in self.offers:
            if not offer.available or request.kind not in offer.kinds or offer.name in skipped:
                continue
            if offer.accepts is not None and not offer.accepts(request):
                continue
            return self._dispatch[id(offer)]
        return None

    def getaddrinfo(self, host: str, family: int) -> list[tuple[int, bytes]] | None:
        result: list[tuple[int, bytes]] | None = self.pm.hook.wassh_getaddrinfo(
            host=host, family=family, config=self.config
        )
        return result


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _names(text: str) -> set[str]:
    return {n.strip() for n in text.split(",") if n.strip()}


def make_plugin_manager(
    *,
    entry_points: bool = True,
    plugins: Sequence[object] = (),
    block: Sequence[str] = (),
) -> pluggy.PluginManager:
    """A fresh manager: built-in defaults, installed plugins and the embedder's own.

    ``WASSH_LOAD_PLUGINS=a,b`` loads only the named entry points (empty: none);
    ``WASSH_BLOCK_PLUGINS=a,b`` blocks names, as ``block`` does. A name that
    is no plugin's, or an entry point that fails to load, raises ``PluginError``:
    a typo must not leave a transport running that the user meant to remove.
    """
    from importlib.metadata import entry_points as find_entry_points

    from .default_plugins import DEFAULT_PLUGINS

    pm = pluggy.PluginManager("wassh")
    pm.add_hookspecs(hookspecs)
    installed = {ep.name: ep for ep in find_entry_points(group=ENTRY_POINT_GROUP)}
    given = [_plugin_name(p) for p in plugins]
    known = set(installed) | {name for name, _ in DEFAULT_PLUGINS} | {n for n in given if n}
    env_block = _names(os.environ.get("WASSH_BLOCK_PLUGINS", ""))
    only_text = os.environ.get("WASSH_LOAD_PLUGINS")
    only = _names(only_text) if only_text is not None else None
    for source, names in (
        ("--block-plugin", set(block)),
        ("WASSH_BLOCK_PLUGINS", env_block),
        ("WASSH_LOAD_PLUGINS", only or set()),
    ):
        unknown = sorted(names - known)
        if unknown:
            raise PluginError(
                f"{source}: no plugin named {', '.join(map(repr, unknown))} "
                f"(known: {', '.join(sorted(known)) or 'none'})"
            )
    for name in set(block) | env_block:
        pm.set_blocked(name)
    for name, plugin in DEFAULT_PLUGINS:
        if not pm.is_blocked(name):
            pm.register(plugin, name=name)
    if entry_points:
        for name, ep in sorted(installed.items()):
            if pm.is_blocked(name) or (only is not None and name not in only):
                continue
            try:
                loaded = ep.load()
            except Exception as exc:
                dist = ep.dist.name if ep.dist is not None else "unknown distribution"
                raise PluginError(
                    f"plugin {name!r} ({ep.value} from {dist}) failed to load: {_reason(exc)} "
                    f"(block it with --block-plugin {name} to run without it)"
                ) from exc
            pm.register(loaded, name=name)
    for plugin, plugin_name in zip(plugins, given, strict=True):
        if plugin_name and pm.is_blocked(plugin_name):
            continue
        pm.register(plugin, name=plugin_name)
    pm.check_pending()
    return pm


def _plugin_name(plugin: object) -> str | None:
    name: str | None = getattr(plugin, "name", None) or getattr(plugin, "__name__", None)
    return name
