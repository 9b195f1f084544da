"""What the guest's sockets do, as a typed stream of events (embedders, operators).

An embedder passes ``events=callback`` to ``wassh.run``/``prepare``; the
command line writes them as JSON lines with ``wassh run --events FILE``. The
callback runs on the guest thread, in order, synchronously: it must be quick
and must not raise (an exception is logged and the event dropped).

Every event names its ``socket``: a number unique within the runtime (not
the guest's descriptor, which is reused). The stream for one connection is
``opened``, ``transport`` (who carries it and why), ``policy`` (the
decision), ``connected`` (or ``closed`` with the error), ..., ``closed``
(reason, duration, bytes each way).
"""

from __future__ import annotations

import logging
import socket as _socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import IO, ClassVar

log = logging.getLogger("wassh.events")

_FAMILIES: dict[int, str] = {
    _socket.AF_INET: "inet",
    _socket.AF_INET6: "inet6",
    _socket.AF_UNIX: "unix",
}


def family_name(family: int) -> str:
    """An address family as events name it: ``"inet"``, ``"inet6"``, ``"unix"``, else a number."""
    return _FAMILIES.get(family, str(family))


@dataclass(frozen=True)
class Event:
    """Common fields: which socket, and when (seconds since the epoch)."""

    event: ClassVar[str] = ""
    socket: int
    time: float = field(default_factory=time.time, kw_only=True)

    def to_json(self) -> dict[str, object]:
        return {"event": self.event, **asdict(self)}


@dataclass(frozen=True)
class SocketOpened(Event):
    """The guest made a socket (``socket()``), or ``accept`` gave it one (``listener`` set)."""

    event: ClassVar[str] = "opened"
    family: str  # "inet", "inet6" or "unix"
    kind: str  # "stream" or "dgram"
    listener: int | None = None
    peer: str | None = None  # an accepted connection's peer, "address:port"


@dataclass(frozen=True)
class TransportChosen(Event):
    """Which transport carries the socket, and why (``reason``), among ``ranking``."""

    event: ClassVar[str] = "transport"
    transport: str
    plugin: str
    reason: str
    ranking: tuple[str, ...]


@dataclass(frozen=True)
class PolicyDecision(Event):
    """The network policy's verdict on a destination (connect, send) or a bind."""

    event: ClassVar[str] = "policy"
    action: str  # "connect", "sendto" or "listen"
    destination: str  # as the guest named it (or the address a name resolved to)
    port: int
    allowed: bool
    reason: str  # the rule that denied it, or why it was allowed
    address: str | None = None  # the address ``destination`` resolved to, when that was judged


@dataclass(frozen=True)
class Connected(Event):
    """A connect finished: ``host`` as the guest named it, ``address`` where it went
    (None when the transport cannot tell, as for a relay that resolves remotely)."""

    event: ClassVar[str] = "connected"
    host: str
    port: int
    address: str | None
    transport: str


@dataclass(frozen=True)
class Closed(Event):
    """The socket is gone: ``reason`` ("closed", "exit", or the error that ended a
    connect), seconds since it opened, and the bytes it moved each way."""

    event: ClassVar[str] = "closed"
    reason: str
    duration: float
    bytes_sent: int
    bytes_received: int


EventSink = Callable[[Event], None]
"""What ``events=`` takes: a callable given each event, on the guest thread."""


def guarded(sink: EventSink) -> EventSink:
    """A sink that logs its own failures instead of raising into the guest's call."""
    failed: list[bool] = []

    def deliver(event: Event) -> None:
        try:
            sink(event)
        except Exception:
            if not failed:  # once: a broken sink must not flood the log
                failed.append(True)
                log.exception("the events callback failed; later failures are not logged")

    return deliver


class JsonLines:
    """``--events FILE``: one JSON object per line, flushed per event."""

    def __init__(self, stream: IO[str]) -> None:
        import json  # here: a run without --events does not import it

        self.stream = stream
        self._lock = threading.Lock()
        self._dumps = json.dumps

    def __call__(self, event: Event) -> None:
        line = self._dumps(event.to_json(), separators=(",", ":"))
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()
