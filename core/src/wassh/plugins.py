"""Finding, ranking and dispatching to transport plugins."""

from __future__ import annotations

import errno
import inspect
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pluggy

from . import hookspecs
from .entrypoints import entry_points as find_entry_points
from .handle import SocketHandle
from .policy import NetworkPolicy

if TYPE_CHECKING:
    from .names import NameAnswer

log = logging.getLogger("wassh.plugins")
# Addressed to the user, not to a developer: the command line prints it as "wassh: ...".
notice = logging.getLogger("wassh")

ENTRY_POINT_GROUP = "wassh"

STREAM = "stream"
DGRAM = "dgram"
LISTEN = "listen"
UNIX = "unix"
# Not a socket: the plugin answers the guest's name lookups (``wassh_getaddrinfo``).
NAMES = "names"

# What a transport must implement for each kind it offers; a plugin missing
# one is refused at start-up. The other per-socket hooks have defaults.
_ALWAYS = ("wassh_sock_poll_handle", "wassh_sock_close")
REQUIRED_HOOKS: Mapping[str, tuple[str, ...]] = {
    STREAM: (
        "wassh_sock_connect",
        "wassh_sock_connect_check",
        "wassh_sock_recv",
        "wassh_sock_send",
        *_ALWAYS,
    ),
    UNIX: (
        "wassh_sock_connect",
        "wassh_sock_connect_check",
        "wassh_sock_recv",
        "wassh_sock_send",
        *_ALWAYS,
    ),
    LISTEN: (
        "wassh_sock_bind",
        "wassh_sock_listen",
        "wassh_sock_accept",
        "wassh_sock_recv",
        "wassh_sock_send",
        *_ALWAYS,
    ),
    DGRAM: (
        "wassh_sock_connect",
        "wassh_sock_sendto",
        "wassh_sock_recvfrom",
        "wassh_sock_send",
        *_ALWAYS,
    ),
    NAMES: ("wassh_getaddrinfo",),
}


@dataclass(frozen=True)
class ConnectRequest:
    """What a plugin's ``accepts`` sees when a socket is about to connect or bind."""

    kind: str  # STREAM, DGRAM, LISTEN, UNIX, or NAMES for a name lookup (port 0)
    family: int  # host socket.AF_* value (AF_UNSPEC for a lookup of either family)
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
    # Which connects this transport takes when it is the best-ranked for the
    # kind (a relay's claim rule); None takes every one. A declining offer
    # leaves the connect to the next one down the ranking.
    accepts: Callable[[ConnectRequest], bool] | None = None
    # True when the transport resolves every name with ``wassh.resolve`` before
    # dialling, which checks each address against the network policy. Otherwise
    # (a relay or proxy resolves at the far end) the policy decides on the name alone.
    checks_addresses: bool = False
    # True when a connected stream socket of this transport is the OS socket in
    # ``handle.state``: its ``fileno()`` carries the bytes. When the transport's
    # recv/send/poll hooks are also ``wassh.os_socket``'s (``OSSocketHooks``, as
    # checked at start-up), the core may move a connected stream's bytes itself,
    # in compiled code, without calling those three hooks.
    os_sockets: bool = False


@dataclass
class TransportConfig:
    """The core's settings for a runtime; each plugin's own are in ``settings``."""

    # Names resolved by the host itself (``--add-host NAME=ADDRESS``).
    hosts: dict[str, list[str]] = field(default_factory=dict)
    # False: never ask the host's resolver; names resolve through ``hosts`` or
    # at a relay only (the host's DNS never sees the guest's names).
    host_dns: bool = True
    connect_timeout: float = 75.0
    # The network policy (``wassh.policy``): HOST[:PORTS] patterns. Read once,
    # when the runtime starts; plugins see the settings but cannot change them.
    connect_allow: list[str] = field(default_factory=list)
    connect_deny: list[str] = field(default_factory=list)
    listen_allow: list[str] = field(default_factory=list)
    # Offer names that must be available, or the runtime does not start.
    require: list[str] = field(default_factory=list)
    # Each plugin's own settings, by plugin name then option ``dest``. Giving
    # settings to a plugin requires it: missing, blocked or unavailable, the
    # runtime does not start.
    settings: dict[str, Mapping[str, object]] = field(default_factory=dict)


class PluginError(Exception):
    """A plugin the configuration depends on cannot be used; one line for the user."""


# The per-socket hooks as the core calls them (see hookspecs for each contract).
Handle = SocketHandle[Any]
ConnectHook = Callable[[Handle, str, int], bool]
ConnectCheckHook = Callable[[Handle], bool]
RecvHook = Callable[[Handle, memoryview, bool], int]
RecvfromHook = Callable[[Handle, memoryview, bool], tuple[int, tuple[str, int] | None]]
SendHook = Callable[[Handle, memoryview], int]
SendtoHook = Callable[[Handle, memoryview, str, int], int]
PollHandleHook = Callable[[Handle, bool], tuple[int, int]]
SetsockoptHook = Callable[[Handle, int, int, int], None]
GetsockoptHook = Callable[[Handle, int, int], int | None]
ShutdownHook = Callable[[Handle, int], None]
CloseHook = Callable[[Handle], None]
GetnameHook = Callable[[Handle, bool], tuple[str, int] | None]
BindHook = Callable[[Handle, str, int], None]
ListenHook = Callable[[Handle, int], None]
AcceptHook = Callable[[Handle], object]
GetaddrinfoHook = Callable[[str, int, "TransportConfig"], Awaitable["NameAnswer"]]

SOCKET_HOOKS = tuple(n for n in dir(hookspecs) if n.startswith("wassh_sock_"))
# What an owner answers: its sockets' hooks, and name lookups for a NAMES offer.
OWNER_HOOKS = (*SOCKET_HOOKS, "wassh_getaddrinfo")


def _unsupported(*_args: object) -> Any:
    raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))


def _no_option(sock: Handle, level: int, name: int, value: int) -> None:
    return None  # the core keeps the value; nothing live to apply it to


def _stored_option(sock: Handle, level: int, name: int) -> int | None:
    return None


def _unknown_name(sock: Handle, remote: bool) -> tuple[str, int] | None:
    return None


F = TypeVar("F", bound=Callable[..., object])


class Owner:
    """One offer's socket hooks, looked up once and called directly.

    Each attribute is the plugin's implementation of the hook of the same name
    (or its default): ``owner.wassh_sock_send(handle, data)`` is a plain call,
    which pluggy's multicall would slow by microseconds on every ``send``.
    """

    __slots__ = (
        "name",
        "offer",
        "os_sockets",
        "plugin",
        "plugin_name",
        "wassh_getaddrinfo",
        "wassh_sock_accept",
        "wassh_sock_bind",
        "wassh_sock_close",
        "wassh_sock_connect",
        "wassh_sock_connect_check",
        "wassh_sock_getname",
        "wassh_sock_getsockopt",
        "wassh_sock_listen",
        "wassh_sock_poll_handle",
        "wassh_sock_recv",
        "wassh_sock_recvfrom",
        "wassh_sock_send",
        "wassh_sock_sendto",
        "wassh_sock_setsockopt",
        "wassh_sock_shutdown",
    )

    def __init__(
        self,
        impls: Mapping[str, Callable[..., object]],
        offer: Offer,
        plugin: object,
        plugin_name: str,
    ) -> None:
        self.offer = offer
        self.name = offer.name
        self.plugin = plugin
        self.plugin_name = plugin_name
        self.os_sockets = offer.os_sockets

        def pick(hook: str, default: F) -> F:
            return cast(F, impls.get(hook, default))

        self.wassh_sock_connect: ConnectHook = pick("wassh_sock_connect", _unsupported)
        self.wassh_sock_connect_check: ConnectCheckHook = pick(
            "wassh_sock_connect_check", _unsupported
        )
        self.wassh_sock_recv: RecvHook = pick("wassh_sock_recv", _unsupported)
        self.wassh_sock_recvfrom: RecvfromHook = pick("wassh_sock_recvfrom", _unsupported)
        self.wassh_sock_send: SendHook = pick("wassh_sock_send", _unsupported)
        self.wassh_sock_sendto: SendtoHook = pick("wassh_sock_sendto", _unsupported)
        self.wassh_sock_poll_handle: PollHandleHook = pick("wassh_sock_poll_handle", _unsupported)
        self.wassh_sock_setsockopt: SetsockoptHook = pick("wassh_sock_setsockopt", _no_option)
        self.wassh_sock_getsockopt: GetsockoptHook = pick("wassh_sock_getsockopt", _stored_option)
        self.wassh_sock_shutdown: ShutdownHook = pick("wassh_sock_shutdown", _unsupported)
        self.wassh_sock_close: CloseHook = pick("wassh_sock_close", _unsupported)
        self.wassh_sock_getname: GetnameHook = pick("wassh_sock_getname", _unknown_name)
        self.wassh_sock_bind: BindHook = pick("wassh_sock_bind", _unsupported)
        self.wassh_sock_listen: ListenHook = pick("wassh_sock_listen", _unsupported)
        self.wassh_sock_accept: AcceptHook = pick("wassh_sock_accept", _unsupported)
        self.wassh_getaddrinfo: GetaddrinfoHook = pick("wassh_getaddrinfo", _unsupported)


def checked_name(owner: Owner, result: object) -> tuple[str, int] | None:
    """What ``wassh_sock_getname`` returned, held to its contract: an IP literal and a
    port, or None. Anything else is the plugin's bug: logged, and treated as unknown."""
    if result is None:
        return None
    host: object = None
    port: object = None
    try:
        host, port = result  # type: ignore[misc]
        # inet_pton, not ipaddress: this runs for every connection a guest makes.
        literal = str(host).split("%", 1)[0]
        try:
            socket.inet_pton(socket.AF_INET, literal)
        except OSError:
            socket.inet_pton(socket.AF_INET6, literal)
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(port)
    except (TypeError, ValueError, OSError):
        log.error(
            "transport %r returned %r from wassh_sock_getname: not (IP literal, port); ignored",
            owner.name,
            result,
        )
        return None
    assert isinstance(port, int)
    return str(host), port


def _owner_impls(pm: pluggy.PluginManager, plugin: object) -> dict[str, Callable[..., object]]:
    """``plugin``'s per-socket and lookup implementations, taking the spec's arguments in order."""
    found: dict[str, Callable[..., object]] = {}
    for hook_name in OWNER_HOOKS:
        caller = getattr(pm.hook, hook_name)
        impl = next((i for i in caller.get_hookimpls() if i.plugin is plugin), None)
        if impl is None:
            continue
        spec_args = tuple(caller.spec.argnames) if caller.spec else ()
        fn: Callable[..., object] = impl.function
        if hook_name == "wassh_getaddrinfo" and not inspect.iscoroutinefunction(fn):
            raise PluginError(
                f"plugin {impl.plugin_name!r}: wassh_getaddrinfo must be an async def "
                "(it runs on the trio loop)"
            )
        if tuple(impl.argnames) == spec_args:
            found[hook_name] = fn
        else:  # pluggy lets an implementation take fewer arguments than the spec
            picks = [spec_args.index(a) for a in impl.argnames]
            found[hook_name] = _adapt(fn, picks)
    return found


# What an offer declaring ``os_sockets`` must use for these hooks for the core to
# move its bytes in compiled code: that code does exactly what they do.
OS_SOCKET_HOOKS = ("wassh_sock_recv", "wassh_sock_send", "wassh_sock_poll_handle")


def _own_os_socket_hooks(impls: Mapping[str, Callable[..., object]]) -> list[str]:
    """The hooks of ``OS_SOCKET_HOOKS`` a plugin implements itself (a subclass that
    counts bytes, say): then its sockets' data goes through Python."""
    from .os_socket import is_standard_hook

    return [hook for hook in OS_SOCKET_HOOKS if not is_standard_hook(hook, impls.get(hook))]


def _adapt(fn: Callable[..., object], picks: list[int]) -> Callable[..., object]:
    return lambda *args: fn(*(args[i] for i in picks))


class Transports:
    """The ranked transports of one runtime, and the network policy they all obey.

    Fails closed: a plugin that cannot make its offer, lacks a hook a kind it
    offers needs, or a transport the configuration needs that is missing or
    unavailable, raises ``PluginError`` before any guest runs; a bad policy
    pattern raises ``PolicyError``.
    """

    def __init__(self, pm: pluggy.PluginManager, config: TransportConfig) -> None:
        self.pm = pm
        self.config = config
        # Built before any plugin runs, from copies: nothing a plugin does to
        # ``config`` afterwards changes it.
        self.policy = NetworkPolicy.from_patterns(
            list(config.connect_allow), list(config.connect_deny), list(config.listen_allow)
        )
        self._check_settings_targets()
        self.offers: list[tuple[Offer, str]] = []
        owners_of: dict[str, object] = {}
        for impl in pm.hook.wassh_transport_offer.get_hookimpls():
            name = impl.plugin_name
            owners_of[name] = impl.plugin
            offered = self._offer(impl, name)
            # One plugin may serve several kinds under separate names and ranks.
            many = [offered] if isinstance(offered, Offer) else offered
            if many is not None and not isinstance(many, list | tuple):
                raise PluginError(f"plugin {name!r} offered {many!r}, not a wassh.Offer")
            for offer in many or ():
                if not isinstance(offer, Offer):
                    raise PluginError(f"plugin {name!r} offered {offer!r}, not a wassh.Offer")
                self.offers.append((offer, name))
        self.offers.sort(key=lambda op: (-op[0].rank, op[0].name))
        self._check_required()
        self._owners: dict[int, Owner] = {}
        self._told: set[str] = set()  # kinds whose want of a transport was noticed
        impls_of: dict[str, dict[str, Callable[..., object]]] = {}
        for offer, name in self.offers:
            if not offer.available:
                continue
            if name not in impls_of:
                impls_of[name] = _owner_impls(pm, owners_of[name])
            impls = impls_of[name]
            for kind in sorted(offer.kinds):
                missing = [h for h in REQUIRED_HOOKS.get(kind, ()) if h not in impls]
                if kind not in REQUIRED_HOOKS:
                    raise PluginError(f"plugin {name!r} offers unknown socket kind {kind!r}")
                if missing:
                    raise PluginError(
                        f"plugin {name!r} offers {kind} sockets ({offer.name!r}) but does not "
                        f"implement {', '.join(missing)}"
                    )
            owner = self._owners[id(offer)] = Owner(impls, offer, owners_of[name], name)
            own = _own_os_socket_hooks(impls) if offer.os_sockets else []
            if own:
                owner.os_sockets = False
                log.info(
                    "transport %r: data through Python, not compiled code (its own %s)",
                    offer.name,
                    ", ".join(own),
                )
        log.info(
            "transport ranking: %s",
            ", ".join(
                f"{o.name}({o.rank}{'' if o.available else ', unavailable: ' + o.reason})"
                for o, _ in self.offers
            )
            or "(none)",
        )

    def _offer(self, impl: Any, name: str) -> object:
        given = {"config": self.config, "settings": self.config.settings.get(name, {})}
        try:
            return impl.function(**{a: given[a] for a in impl.argnames})
        except Exception as exc:
            raise PluginError(
                f"plugin {name!r} cannot make its offer: {_reason(exc)} "
                f"(block it with --block-plugin {name} to run without it)"
            ) from exc

    def _check_settings_targets(self) -> None:
        for name, given in self.config.settings.items():
            if self.pm.get_plugin(name) is not None:
                continue
            why = "it is blocked" if self.pm.is_blocked(name) else "no loaded plugin has that name"
            keys = f" ({', '.join(sorted(given))})" if given else ""
            raise PluginError(f"settings given for plugin {name!r}{keys}, but {why}")

    def _check_required(self) -> None:
        needed = {n: "require" for n in self.config.require}
        for name, given in self.config.settings.items():
            if not given:
                continue
            mine = [o for o, p in self.offers if p == name]
            if not any(o.available for o in mine):
                reason = mine[0].reason if mine else "it offers no transport"
                raise PluginError(
                    f"settings given for plugin {name!r} ({', '.join(sorted(given))}), "
                    f"but it is unavailable: {reason or 'no reason given'}"
                )
        for name, setting in needed.items():
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
        served = any(o.available and kind in o.kinds for o, _ in self.offers)
        # A stream socket is made when a transport connects or listens with it (the
        # core asks for LISTEN only then): what fails for want of either is told once.
        if not served and kind != LISTEN and (kind != STREAM or not self.serves(LISTEN)):
            self._tell_unserved(kind, None)
        return served

    def ranking(self, kind: str) -> list[str]:
        """Available offers serving ``kind``, best first (for events and diagnostics)."""
        return [o.name for o, _ in self.offers if o.available and kind in o.kinds]

    def choose(
        self, request: ConnectRequest, skip: Iterable[str] = (), *, fallback: bool = False
    ) -> Owner | None:
        """The best-ranked available offer serving ``request``, or None.

        None is told to the user once per kind (why no transport serves it),
        unless offers were skipped or the caller has a ``fallback`` of its own.
        """
        skipped = set(skip)
        for offer, _ in self.offers:
            if not offer.available or request.kind not in offer.kinds or offer.name in skipped:
                continue
            if offer.accepts is not None and not offer.accepts(request):
                continue
            return self._owners[id(offer)]
        if request.kind != NAMES and not skipped and not fallback:
            self._tell_unserved(request.kind, request)
        return None

    def _tell_unserved(self, kind: str, request: ConnectRequest | None) -> None:
        """Why no transport takes a guest's socket, on the ``wassh`` logger, once a kind."""
        if kind in self._told:
            return
        self._told.add(kind)
        mine = [o for o, _ in self.offers if kind in o.kinds]
        taking = [o.name for o in mine if o.available]
        why = [f"declined: {', '.join(taking)}"] if taking else [] if mine else ["none installed"]
        unavailable = [f"{o.name} ({o.reason or 'no reason'})" for o in mine if not o.available]
        if unavailable:
            why.append(f"unavailable: {', '.join(unavailable)}")
        blocked = sorted(name for name, plugin in self.pm.list_name_plugin() if plugin is None)
        if blocked:
            why.append(f"blocked: {', '.join(blocked)}")
        what = f"{_KIND_WORDS.get(kind, kind)} sockets"
        if taking and request is not None and request.host:
            what += f" to {request.host}:{request.port}"
        notice.warning("no transport serves %s (%s)", what, "; ".join(why))

    def resolver(self, host: str, family: int) -> Owner | None:
        """The owner of the best-ranked ``NAMES`` offer taking ``host``, or None (fake DNS)."""
        return self.choose(ConnectRequest(kind=NAMES, family=family, host=host, port=0))

    def stop(self) -> None:
        """The guest has finished: each plugin releases its runtime state."""
        for impl in self.pm.hook.wassh_transport_stop.get_hookimpls():
            try:
                impl.function()
            except Exception:
                log.exception("plugin %r failed to stop cleanly", impl.plugin_name)


_KIND_WORDS = {DGRAM: "datagram", LISTEN: "listening", UNIX: "AF_UNIX"}


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _names(text: str) -> set[str]:
    return {n.strip() for n in text.split(",") if n.strip()}


def _instance(loaded: object) -> object:
    """A class is instantiated, so each runtime's plugin keeps its own state."""
    return loaded() if isinstance(loaded, type) else loaded


class _PluginManager(pluggy.PluginManager):
    """pluggy's manager, quicker to register a plugin object.

    Registering looks at every name in ``dir(plugin)`` statically, ~30 µs each;
    half of them are ``object``'s own (``__init__``, ``__eq__``, ...), which no
    plugin object overrides and which are never hook implementations. Those are
    answered here; every other name is pluggy's to judge, as before.
    """

    def parse_hookimpl_opts(self, plugin: object, name: str) -> Any:
        if name in _OBJECT_NAMES and _inherited_from_object(plugin, name):
            return None
        return super().parse_hookimpl_opts(plugin, name)


_OBJECT_NAMES = frozenset(vars(object))
_true_dict = type.__dict__["__dict__"].__get__  # a class's own namespace, never shadowed


def _inherited_from_object(plugin: object, name: str) -> bool:
    """True when ``plugin.name`` is ``object``'s attribute, found by a plain lookup
    through no instance, class or custom ``__getattribute__`` of the plugin's own."""
    cls = type(plugin)
    if isinstance(plugin, type) or cls.__getattribute__ is not object.__getattribute__:
        return False  # classes, modules (ModuleType.__getattribute__) and the unusual
    try:
        own = object.__getattribute__(plugin, "__dict__")
    except AttributeError:
        own = {}
    if not isinstance(own, dict) or name in own:
        return False
    return all(name not in _true_dict(klass) for klass in cls.__mro__[:-1])


def make_plugin_manager(
    *,
    entry_points: bool = True,
    plugins: Sequence[object] = (),
    block: Sequence[str] = (),
) -> pluggy.PluginManager:
    """A fresh manager: built-in defaults, installed plugins and the embedder's own.

    An entry point (or an embedder's plugin) may be a module, an object, or a
    class, which is instantiated here: one instance per runtime.
    ``WASSH_LOAD_PLUGINS=a,b`` loads only the named entry points (empty: none);
    ``WASSH_BLOCK_PLUGINS=a,b`` blocks names, as ``block`` does. A name that
    is no plugin's, or an entry point that fails to load, raises ``PluginError``:
    a typo must not leave a transport running that the user meant to remove.
    """
    from .default_plugins import DEFAULT_PLUGINS

    pm = _PluginManager("wassh")
    pm.add_hookspecs(hookspecs)
    installed = {ep.name: ep for ep in find_entry_points(ENTRY_POINT_GROUP)}
    given = [plugin_name(p) for p in plugins]
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
            _register(pm, _instance(plugin), name)
    if entry_points:
        for name, ep in sorted(installed.items()):
            if pm.is_blocked(name) or (only is not None and name not in only):
                continue
            try:
                loaded = _instance(ep.load())
            except Exception as exc:
                dist = ep.dist_name or "unknown distribution"
                raise PluginError(
                    f"plugin {name!r} ({ep.value} from {dist}) failed to load: {_reason(exc)} "
                    f"(block it with --block-plugin {name} to run without it)"
                ) from exc
            _register(pm, loaded, name)
    for plugin, own_name in zip(plugins, given, strict=True):
        if own_name and pm.is_blocked(own_name):
            continue
        _register(pm, _instance(plugin), own_name)
    return pm


def _register(pm: pluggy.PluginManager, plugin: object, name: str | None) -> None:
    try:
        pm.register(plugin, name=name)
        pm.check_pending()
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise PluginError(f"plugin {name!r} cannot be registered: {_reason(exc)}") from exc


def plugin_name(plugin: object) -> str | None:
    """The name a plugin object is registered (and given settings) under."""
    name: str | None = getattr(plugin, "name", None) or getattr(plugin, "__name__", None)
    return name if isinstance(name, str) else None


def installed_plugins() -> list[tuple[str, object]]:
    """Every installed plugin that loads, blocked or not (for ``wassh_addoption``)."""
    found: list[tuple[str, object]] = []
    for ep in sorted(find_entry_points(ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            found.append((ep.name, _instance(ep.load())))
        except Exception as exc:  # reported, fail closed, when a run loads it
            log.debug("plugin %r does not load: %s", ep.name, exc)
    return found
