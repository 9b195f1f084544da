"""wassh transport plugin: TCP through WebSocket relays.

Protocols: ``websockify`` (raw bytes in binary messages), ``corp-relay``
(``/proxy`` then ``/connect`` with 24-bit acks and resume) and ``corp-relay-v4``
(tagged commands, 64-bit acks, transparent reconnect). With a relay configured
(``--relay URL --relay-protocol P``), the guest's first TCP connect goes to the
relay carrying the host *name* the guest asked for; later connects go to the
best direct transport (``--relay-claim all`` sends every connect through it).

Each relay socket has a trio task (the WebSocket, framing, acks, reconnects)
and a ``RelayConnection`` the guest thread reads and writes without waiting on
trio: bounded buffers plus two eventfds for readiness.

``wassh relay`` (``wassh_transport_websocket.server``) is a relay server for
the websockify-style and corp-relay-v4 endpoints.
"""

from __future__ import annotations

from .transport import RelayTransport

__all__ = ["RelayTransport"]
