"""wassh: run WebAssembly programs with real network access through transport plugins."""

from __future__ import annotations

from . import os_socket
from .abi.errno import Errno, WasiError
from .arguments import OneLineArgumentParser
from .commands import PluginCommand
from .embed import Capture, prepare, run, run_process, run_sync
from .handle import SocketHandle
from .hookspecs import hookimpl, hookspec
from .options import PluginOptions, parse_pairs
from .plugins import (
    DGRAM,
    LISTEN,
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
from .resolve import resolve
from .runtime import GuestCancelled, GuestConfig, GuestKilled, Process
from .signals import SignalAction
from .traps import GuestTrap, TrapFrame

__all__ = [
    "DGRAM",
    "LISTEN",
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
    "TransportConfig",
    "Transports",
    "TrapFrame",
    "WasiError",
    "hookimpl",
    "hookspec",
    "make_plugin_manager",
    "os_socket",
    "parse_pairs",
    "prepare",
    "resolve",
    "run",
    "run_process",
    "run_sync",
]
