"""The ``wassh`` command line: run, cc, transports, cache, and plugins' commands.

Writing to a closed pipe (``wassh transports | head -1``) ends quietly with
status 141, what a shell reports for a program that SIGPIPE ended, as other
tools do (and ``set -o pipefail`` sees).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import logging
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from .arguments import OneLineArgumentParser
from .commands import PluginCommand, plugin_commands
from .entrypoints import pinned
from .guest_arguments import split_guest_arguments
from .options import OptionConflict, PluginOptions, plugin_settings
from .plugins import (
    PluginError,
    TransportConfig,
    Transports,
    installed_plugins,
    make_plugin_manager,
)
from .policy import NetworkPolicy, PolicyError
from .verbosity import LOG_ENV, VerbosityError, configure, level, take_flags

if TYPE_CHECKING:
    from .runtime import Process


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"wassh: {message}\n")
    raise SystemExit(2)


def _parse_kv(values: Sequence[str], what: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            _fail(f"bad {what} {item!r}: expected NAME=VALUE")
        out.setdefault(key, []).append(value)
    return out


def _is_file(path: str) -> bool:
    return os.path.isfile(path)


def _size(text: str) -> int:
    """``65536``, ``64K``, ``256M``, ``1G`` -> bytes (argparse turns errors into one line)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    scale = units.get(text[-1:].upper(), 1)
    digits = text[:-1] if scale != 1 else text
    if not digits.isascii() or not digits.isdigit() or not 0 < int(digits) * scale <= 1 << 32:
        raise argparse.ArgumentTypeError(f"bad size {text!r}: a number up to 4G, with K, M or G")
    return int(digits) * scale


# What a shell reports for a program that SIGPIPE ended.
PIPE_CLOSED_STATUS = 128 + 13


def _add_verbosity(parser: argparse.ArgumentParser, after: bool) -> None:
    """-v/-q before or after the subcommand; the counts add up."""
    suffix = "_after" if after else ""
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, dest=f"verbose{suffix}", help="more logging"
    )
    parser.add_argument(
        "-q", "--quiet", action="count", default=0, dest=f"quiet{suffix}", help="less logging"
    )


class _Version(argparse.Action):
    """``--version``: the core's version and each plugin distribution's, one a line."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest=argparse.SUPPRESS, nargs=0, help=help)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        from .versions import version_lines

        sys.stdout.write("".join(f"{line}\n" for line in version_lines()))
        parser.exit(0)


_TRANSPORTS_JSON = (
    "print one JSON object instead: "
    '{"format": 1, "transports": [{"name", "plugin", "rank", "kinds", "available", '
    '"reason"}, ...], "policy": {"connect_allow", "connect_deny", "listen_allow"}}; '
    "transports best first; kinds among stream, dgram, listen, unix, names; reason is "
    '"" when available; the policy lists the patterns as given. Keys are only ever '
    "added, and format changes if one changes meaning"
)


def _build_parser(
    commands: Mapping[str, PluginCommand | str], blocked: frozenset[str] = frozenset()
) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The ``wassh`` parser, and its ``run`` parser's."""
    parser = OneLineArgumentParser(
        prog="wassh",
        description="Run WebAssembly (wasm32-wasi) programs with real, policy-gated network "
        "access through transport plugins.",
        epilog="WASSH_LOG=debug|info|warning|error sets how much is logged when neither -v "
        "nor -q is given. Writing to a closed pipe ends quietly with status 141.",
    )
    parser.add_argument(
        "--version", action=_Version, help="print the versions of wassh and its plugins"
    )
    _add_verbosity(parser, after=False)
    sub = parser.add_subparsers(dest="command", parser_class=OneLineArgumentParser)
    plugins = [(n, p) for n, p in installed_plugins() if n not in blocked]

    run = sub.add_parser("run", help="run a wasm32-wasi program")
    run.add_argument("program", help="the .wasm file, or a program wassh cc wrote")
    run.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the program")
    run.add_argument(
        "--dir",
        action="append",
        default=[],
        metavar="HOST[::GUEST]",
        help="preopen a host directory (sandboxed)",
    )
    run.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME[=VALUE]",
        help="set a guest environment variable; NAME alone passes this host's value "
        "(none if unset here), NAME= sets it empty",
    )
    run.add_argument(
        "--add-host",
        action="append",
        default=[],
        metavar="NAME=ADDRESS",
        help="map a name to an address for name resolution",
    )
    run.add_argument(
        "--program",
        dest="programs",
        action="append",
        default=[],
        metavar="NAME=PATH.wasm",
        help="a program the guest may start (posix_spawn, fork + exec, sh -c) by NAME; "
        "the guest's own module is there under its file name",
    )
    run.add_argument("--trace", action="store_true", help="log each host call to stderr")
    run.add_argument(
        "--max-memory",
        type=_size,
        metavar="SIZE",
        help="cap the guest's linear memory (bytes, or with K, M, G); default 4G",
    )
    _add_network_options(run)
    run.add_argument(
        "--events",
        metavar="FILE",
        help="write the sockets' events (opened, transport, policy, connected, closed) "
        "to FILE as JSON lines",
    )
    run.add_argument(
        "--no-cache",
        action="store_true",
        help="do not cache compiled modules (see 'wassh cache --help')",
    )
    _add_verbosity(run, after=True)
    _add_plugin_options(run, plugins)

    sub.add_parser("cc", help="compile C for wasm32-wasi against the guest SDK", add_help=False)

    tr = sub.add_parser(
        "transports",
        help="list transport plugins, their ranking and the network policy",
        description="Shows what 'wassh run' with the same options would use.",
    )
    tr.add_argument("--json", action="store_true", help=_TRANSPORTS_JSON)
    _add_network_options(tr)
    _add_verbosity(tr, after=True)
    _add_plugin_options(tr, plugins)
    _add_cache_parser(sub)
    for name, command in commands.items():
        what = command.help if isinstance(command, PluginCommand) else f"(unusable: {command})"
        sub.add_parser(name, help=what, add_help=False)
    return parser, run


def _add_cache_parser(sub: Any) -> None:
    cache = sub.add_parser(
        "cache",
        help="show or empty the cache of compiled modules",
        description="'wassh run' keeps each module it compiles, least recently used "
        "evicted first beyond a size bound: WASSH_CACHE_MAX, in bytes or with K, M or "
        "G (default 512M; 0 keeps nothing). The cache is under $XDG_CACHE_HOME or ~/.cache.",
    )
    cache.add_argument(
        "action",
        nargs="?",
        choices=("info", "clear"),
        default="info",
        help="info (the default): its directory, entry count and size; clear: empty it",
    )
    _add_verbosity(cache, after=True)


def _add_plugin_options(parser: argparse.ArgumentParser, plugins: list[tuple[str, object]]) -> None:
    """Each installed plugin's own options (``wassh_addoption``), in a group of its own."""
    owners: dict[str, str] = {}
    for name, plugin in plugins:
        hook = getattr(plugin, "wassh_addoption", None)
        if hook is None:
            continue
        try:
            hook(options=PluginOptions(parser, name, f"{name} plugin", owners))
        except OptionConflict:
            raise
        except Exception as exc:
            raise PluginError(f"plugin {name!r} cannot add its options: {exc}") from exc


def _add_network_options(parser: argparse.ArgumentParser) -> None:
    """Options that choose transports and the network policy (run and transports)."""
    parser.add_argument(
        "--connect-allow",
        action="append",
        default=[],
        metavar="PATTERN",
        help="once given, only destinations matching a HOST[:PORTS] pattern are reachable",
    )
    parser.add_argument(
        "--connect-deny",
        action="append",
        default=[],
        metavar="PATTERN",
        help="refuse destinations matching HOST[:PORTS] (wins over --connect-allow)",
    )
    parser.add_argument(
        "--listen-allow",
        action="append",
        default=[],
        metavar="PATTERN",
        help="let the guest listen on a non-loopback ADDRESS[:PORTS] (or CIDR, or *)",
    )
    parser.add_argument(
        "--no-host-dns",
        action="store_true",
        help="never look names up on this host: only --add-host names, or a relay, resolve",
    )
    parser.add_argument("--connect-timeout", type=float, default=75.0, metavar="SECONDS")
    parser.add_argument(
        "--block-plugin",
        action="append",
        default=[],
        metavar="NAME",
        help="do not load this transport plugin",
    )


def _transport_config(ns: argparse.Namespace) -> TransportConfig:
    """The transports' settings from the command line; a bad policy pattern is fatal."""
    config = TransportConfig(
        host_dns=not ns.no_host_dns,
        connect_timeout=ns.connect_timeout,
        connect_allow=list(ns.connect_allow),
        connect_deny=list(ns.connect_deny),
        listen_allow=list(ns.listen_allow),
        settings=dict(plugin_settings(ns)),
    )
    try:
        NetworkPolicy.from_patterns(config.connect_allow, config.connect_deny, config.listen_allow)
    except PolicyError as exc:
        _fail(str(exc))
    return config


def _guest_env(values: Sequence[str]) -> dict[str, str]:
    """``--env NAME=VALUE``, ``NAME=`` (empty) and ``NAME`` (this host's value, if it has
    one, as docker does); the last of a name wins."""
    env: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not name or "\0" in item:
            _fail(f"bad --env {item!r}: expected NAME, NAME= or NAME=VALUE")
        if sep:
            env[name] = value
        elif name in os.environ:
            env[name] = os.environ[name]
        else:
            env.pop(name, None)
    return env


def _cache_bound() -> int:
    from .cache import CacheSizeError, max_bytes

    try:
        return max_bytes()
    except CacheSizeError as exc:
        _fail(str(exc))


def _cmd_cache(ns: argparse.Namespace) -> int:
    from . import cache

    limit = _cache_bound()
    where = cache.cache_dir()
    if ns.action == "clear":
        removed = cache.clear(where)
        size = cache.human(sum(e.size for e in removed))
        print(f"removed {len(removed)} entries ({size}) from {where}")
        return 0
    found = cache.entries(where)
    print(f"directory: {where}")
    print(f"entries:   {len(found)}")
    total = cache.human(sum(e.size for e in found))
    print(f"size:      {total} (at most {cache.human(limit)}: {cache.MAX_ENV})")
    return 0


def _cmd_run(ns: argparse.Namespace) -> int:
    from .embed import prepare

    args = list(ns.args)
    env = _guest_env(ns.env)
    hosts = _parse_kv(ns.add_host, "--add-host")
    for name, addrs in hosts.items():
        for addr in addrs:
            import ipaddress

            try:
                ipaddress.ip_address(addr)
            except ValueError:
                _fail(f"bad --add-host {name}={addr}: {addr!r} is not an IP address")
    dirs = []
    for spec in ns.dir:
        host, sep, guest = spec.partition("::")
        import os

        if not os.path.isdir(host):
            _fail(f"--dir {spec}: {host!r} is not a directory")
        dirs.append((host, guest if sep else host))
    if not ns.no_cache:
        _cache_bound()
    from .command_module import StartError, compile_module, why_not_runnable

    try:
        module = compile_module(ns.program, use_cache=not ns.no_cache)
    except OSError as exc:
        _fail(f"cannot read {ns.program}: {exc.strerror or exc}")
    except StartError as exc:
        _fail(str(exc))

    unusable = why_not_runnable(module)
    if unusable is not None:
        _fail(f"{ns.program} cannot run: {unusable}")
    programs: dict[str, str] = {}
    for name, paths in _parse_kv(ns.programs, "--program").items():
        if "/" in name:
            _fail(f"bad --program {name}={paths[-1]}: NAME is a program name, without '/'")
        if not _is_file(paths[-1]):
            _fail(f"--program {name}={paths[-1]}: no such file")
        programs[name] = paths[-1]
    config = _transport_config(ns)
    events = None
    if ns.events:
        from .events import JsonLines

        try:
            events_file = open(ns.events, "w", encoding="utf-8")  # noqa: SIM115 (lives as long as the run)
        except OSError as exc:
            _fail(f"cannot write --events {ns.events}: {exc.strerror or exc}")
        events = JsonLines(events_file)

    try:
        proc = prepare(
            module,
            [ns.program, *args],
            env=env,
            dirs=dirs,
            hosts=hosts,
            block=ns.block_plugin,
            config=config,
            trace=ns.trace,
            max_memory=ns.max_memory,
            events=events,
            programs=programs,
        )
    except KeyboardInterrupt:  # Ctrl-C while plugins load: no guest ran yet
        return 130
    # The guest runs on this thread; a trio loop starts in the background only if
    # a plugin needs one (relays), so plain guests start without importing trio.
    # -v, or WASSH_LOG=info: a trap's report says more.
    return _run_guest(proc, ns.program, logging.getLogger().getEffectiveLevel() <= logging.INFO)


@contextlib.contextmanager
def _forward_signals(proc: Process) -> Iterator[None]:
    """The host's signals act on the guest while it runs here, as on a native process.

    Ctrl-C, SIGTERM, SIGHUP and SIGQUIT reach the guest's handler or stop it with
    128 + signal; resizes of the host terminal reach it as SIGWINCH.
    """
    import os

    from .host_signals import SignalForwarder

    try:
        interactive = os.isatty(0)
    except OSError:
        interactive = False
    # linger: this process exits with the guest; a late signal must not change its status.
    with SignalForwarder(proc, resizes=interactive, linger=True):
        yield


def _run_guest(proc: Process, program: str, verbose: bool) -> int:
    """Run the guest to its exit status; a trap is a short report and 134, never a traceback."""
    import os

    from .command_module import StartError
    from .host.waiter import GuestTerminated
    from .signals import SIGINT, exit_status
    from .traps import GuestTrap

    try:
        _collector.resume()
        with _forward_signals(proc):
            return proc.run()
    except GuestTrap as trap:
        sys.stderr.write(trap.report(os.path.basename(program), verbose=verbose))
        return trap.exit_status
    except StartError as exc:
        # Instantiating failed (a trap while running is a GuestTrap): say why in one line.
        why = exc.reason
        limit = " (--max-memory)" if "memory" in why and "limit" in why else ""
        sys.stderr.write(f"wassh: {program} cannot start: {why}{limit}\n")
        return 2
    except (GuestTerminated, KeyboardInterrupt):
        # A signal's handler raised just outside the guest call (or before ours were in).
        return exit_status(SIGINT if proc.killed_by is None else proc.killed_by)


def _cmd_transports(ns: argparse.Namespace) -> int:
    config = _transport_config(ns)
    pm = make_plugin_manager(block=ns.block_plugin)
    transports = Transports(pm, config)
    rows: list[dict[str, Any]] = []
    for offer, plugin in transports.offers:
        rows.append(
            {
                "name": offer.name,
                "plugin": plugin,
                "rank": offer.rank,
                "kinds": sorted(offer.kinds),
                "available": offer.available,
                "reason": offer.reason,
            }
        )
    policy = transports.policy
    if ns.json:
        import json

        print(
            json.dumps(
                {
                    "format": 1,
                    "transports": rows,
                    "policy": {
                        "connect_allow": [r.text for r in policy.connect_allow],
                        "connect_deny": [r.text for r in policy.connect_deny],
                        "listen_allow": [r.text for r in policy.listen_allow],
                    },
                },
                indent=2,
            )
        )
        return 0
    if not rows:
        print("no transport plugins found (install wassh-transport-tcp)")
        return 1
    words = {"dgram": "datagram"}
    for r in rows:
        state = "available" if r["available"] else f"unavailable: {r['reason']}"
        serves = ",".join(words.get(k, k) for k in r["kinds"])
        source = "" if r["plugin"] == r["name"] else f" (plugin {r['plugin']})"
        print(f"{r['name']:<12} rank {r['rank']:>4}  {serves:<24} {state}{source}")
    print("network policy:")
    for line in policy.describe():
        print(f"  {line}")
    return 0


def _blocked_early(argv: list[str]) -> frozenset[str]:
    """Plugins blocked on this command line or in the environment, read before parsing:
    a blocked plugin adds no options, so blocking resolves a clash between two."""
    names = {n.strip() for n in os.environ.get("WASSH_BLOCK_PLUGINS", "").split(",")}
    for i, arg in enumerate(argv):
        if arg == "--block-plugin" and i + 1 < len(argv):
            names.add(argv[i + 1])
        elif arg.startswith("--block-plugin="):
            names.add(arg.partition("=")[2])
    return frozenset(n for n in names if n)


def _split_command(argv: list[str], commands: Mapping[str, object]) -> int | None:
    """Where a plugin command's name stands in ``argv`` (after global options), if any."""
    for i, arg in enumerate(argv):
        if arg in commands:
            return i
        if not arg.startswith("-") or arg == "--":
            return None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["cc"]:
        from .cc import main as cc_main

        return cc_main(argv[1:])
    _collector.exit_quickly()
    try:
        try:
            # One reading of the installed plugins serves the options, the commands and the run.
            _collector.pause()
            try:
                with pinned():
                    return _main(argv)
            finally:
                _collector.resume()
        finally:
            sys.stdout.flush()  # here, where a closed pipe can still be answered
    except BrokenPipeError:
        _discard_stdout()
        return PIPE_CLOSED_STATUS


def _discard_stdout() -> None:
    """What is still buffered for a closed stdout goes nowhere (no error at exit)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


class _Collector:
    """The cyclic garbage collector waits while the command line sets up.

    What set-up builds (plugins, parsers, the module, its host functions) lives
    as long as the run: it goes straight to the oldest generation when the guest
    or a plugin's command starts, and the collector runs again as it did before.
    """

    def __init__(self) -> None:
        self.paused = False
        self.at_exit = False

    def exit_quickly(self) -> None:
        """At exit, no cyclic collection over everything wassh built (~30 ms).

        The interpreter's last collections would only free memory the process
        is about to give back (wasmtime's stores, host functions, parsers):
        those objects are frozen once the process is exiting (``atexit``, after
        the guest and its sockets are closed and the threads are joined).
        """
        if not self.at_exit:
            self.at_exit = True
            atexit.register(gc.freeze)

    def pause(self) -> None:
        if gc.isenabled():
            gc.disable()
            self.paused = True

    def resume(self) -> None:
        if not self.paused:
            return
        self.paused = False
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        gc.enable()


_collector = _Collector()


def _parse(
    commands: Mapping[str, PluginCommand | str], argv: list[str]
) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    """The command line read, with the arguments after ``run``'s program the guest's."""
    first = next((i for i, arg in enumerate(argv) if not arg.startswith("-")), None)
    if first is None or argv[first] != "run":
        parser, _ = _build_parser(commands, _blocked_early(argv))
        return parser, parser.parse_args(argv)
    wasshs = argv[first + 1 :]
    split = None
    unblocked = _blocked_early([])  # WASSH_BLOCK_PLUGINS only
    try:
        # Every plugin's options known, wassh's part ends where the program's path is:
        # a guest's --block-plugin blocks nothing.
        parser, run = _build_parser(commands, unblocked)
        split = split_guest_arguments(run._option_string_actions, wasshs)
        if split is not None:
            wasshs = split[0]
    except (OptionConflict, PluginError):
        pass  # a plugin clashes or fails: the --block-plugin that drops it is wassh's, surely
    blocked = _blocked_early(wasshs)
    if split is None or blocked != unblocked:
        parser, run = _build_parser(commands, blocked)
        split = split_guest_arguments(run._option_string_actions, argv[first + 1 :])
    if split is None:  # an option run has not: argparse says which, given everything
        ns = parser.parse_args(argv)
        ns.args = ns.args[1:] if ns.args[:1] == ["--"] else ns.args  # a path such as -1
        return parser, ns
    ns = parser.parse_args(argv[: first + 1] + split[0])
    ns.args = split[1]
    return parser, ns


def _main(argv: list[str]) -> int:
    try:
        commands = plugin_commands()
        at = _split_command(argv, commands)
        rest: list[str] = []
        if at is not None:
            argv, rest = argv[: at + 1], argv[at + 1 :]
        parser, ns = _parse(commands, argv)
        rest, verbose, quiet = take_flags(rest)
        verbose += ns.verbose + getattr(ns, "verbose_after", 0)
        quiet += ns.quiet + getattr(ns, "quiet_after", 0)
        try:
            configure(level(verbose, quiet, os.environ.get(LOG_ENV)))
        except VerbosityError as exc:
            _fail(str(exc))
        if ns.command == "run":
            return _cmd_run(ns)
        if ns.command == "transports":
            return _cmd_transports(ns)
        if ns.command == "cache":
            return _cmd_cache(ns)
        command = commands.get(ns.command) if ns.command else None
        if isinstance(command, PluginCommand):
            _collector.resume()
            return int(command.main(rest) or 0)
        if isinstance(command, str):
            _fail(f"{ns.command}: {command}")
    except (PluginError, PolicyError, OptionConflict) as exc:
        # Fail closed, in one line: nothing ran, nothing reached the network.
        _fail(str(exc))
    parser.print_help()
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
