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


@dataclass(frozen=True)
class Offer:
    """A plugin's answer to ``wassh_transport_offer``."""

    name: str
    kinds: frozenset[str]
    rank: int = 0
    available: bool = True
    reason: str = ""
    accepts: Callable[[ConnectRequest], bool] | None = None


@dataclass
class TransportConfig:
    """Settings every transport may read; plugins of third parties use ``extra``."""

    hosts: dict[str, list[str]] = field(default_factory=dict)
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
    listen_allow: list[str] = field(default_factory=list)
    unix_map: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


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
    """The ranked transports of one runtime."""

    def __init__(self, pm: pluggy.PluginManager, config: TransportConfig) -> None:
        self.pm = pm
        self.config = config
        self.offers: list[tuple[Offer, object]] = []
        for plugin in pm.get_plugins():
            impl = getattr(plugin, "wassh_transport_offer", None)
            if impl is None:
                continue
            try:
                offered = impl(config=config)
            except Exception as exc:  # a broken plugin must not take the runtime down
                log.warning("plugin %r failed to make an offer: %s", plugin, exc)
                continue
            # One plugin may serve several kinds under separate names and ranks.
            for offer in [offered] if isinstance(offered, Offer) else offered or ():
                self.offers.append((offer, plugin))
        self.offers.sort(key=lambda op: (-op[0].rank, op[0].name))
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


def make_plugin_manager(
    *,
    entry_points: bool = True,
    plugins: Sequence[object] = (),
    block: Sequence[str] = (),
) -> pluggy.PluginManager:
    """A fresh manager: built-in defaults, installed plugins and the embedder's own.

    ``WASSH_LOAD_PLUGINS=a,b`` loads only the named entry points (empty: none);
    ``WASSH_BLOCK_PLUGINS=a,b`` blocks names, as ``block`` does.
    """
    from .default_plugins import DEFAULT_PLUGINS

    pm = pluggy.PluginManager("wassh")
    pm.add_hookspecs(hookspecs)
    blocked = set(block) | {b for b in os.environ.get("WASSH_BLOCK_PLUGINS", "").split(",") if b}
    for name in blocked:
        pm.set_blocked(name)
    for name, plugin in DEFAULT_PLUGINS:
        if not pm.is_blocked(name):
            pm.register(plugin, name=name)
    if entry_points:
        only = os.environ.get("WASSH_LOAD_PLUGINS")
        if only is None:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        else:
            wanted = {n for n in only.split(",") if n}
            for name in wanted:
                pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=name)
    for plugin in plugins:
        given: str | None = getattr(plugin, "name", None) or getattr(plugin, "__name__", None)
        if given and pm.is_blocked(given):
            continue
        pm.register(plugin, name=given)
    pm.check_pending()
    return pm
