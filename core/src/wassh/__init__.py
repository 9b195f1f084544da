"""wassh: run WebAssembly programs with real network access through transport plugins."""

from __future__ import annotations

import gc as _gc

# Importing wassh (and wasmtime's bindings) builds tens of thousands of objects that
# live as long as the process. The cyclic collector's young-generation passes over
# them would cost ~10 ms of every start-up; they go straight to the oldest generation
# instead (collected there as before). Skipped when the embedder freezes objects itself.
_collecting = _gc.isenabled()
_gc.disable()
try:
    from . import os_socket
    from .abi.errno import Errno, WasiError
    from .arguments import OneLineArgumentParser
    from .command_module import StartError
    from .commands import PluginCommand
    from .embed import Capture, prepare, run, run_process, run_sync
    from .handle import SocketHandle
    from .hookspecs import hookimpl, hookspec
    from .names import NameAnswer
    from .options import PluginOptions, parse_pairs
    from .plugins import (
        DGRAM,
        LISTEN,
        NAMES,
        REQUIRED_HOOKS,
        STREAM,
        UNIX,
        ConnectRequest,
        Offer,
        PluginError,
        TransportConfig,
        Transports,
        make_plugin_manager,
    )
    from .policy import Denied, NetworkPolicy, PolicyError
    from .resolve import lookup_host, resolve
    from .runtime import GuestCancelled, GuestConfig, GuestKilled, Process
    from .signals import SignalAction
    from .traps import GuestTrap, TrapFrame
finally:
    if _gc.get_freeze_count() == 0:
        _gc.freeze()
        _gc.unfreeze()
    if _collecting:
        _gc.enable()
    del _collecting

__all__ = [
    "DGRAM",
    "LISTEN",
    "NAMES",
    "REQUIRED_HOOKS",
    "STREAM",
    "UNIX",
    "Capture",
    "ConnectRequest",
    "Denied",
    "Errno",
    "GuestCancelled",
    "GuestConfig",
    "GuestKilled",
    "GuestTrap",
    "NameAnswer",
    "NetworkPolicy",
    "Offer",
    "OneLineArgumentParser",
    "PluginCommand",
    "PluginError",
    "PluginOptions",
    "PolicyError",
    "Process",
    "SignalAction",
    "SocketHandle",
    "StartError",
    "TransportConfig",
    "Transports",
    "TrapFrame",
    "WasiError",
    "hookimpl",
    "hookspec",
    "lookup_host",
    "make_plugin_manager",
    "os_socket",
    "parse_pairs",
    "prepare",
    "resolve",
    "run",
    "run_process",
    "run_sync",
]
