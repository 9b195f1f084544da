"""wassh transport plugin: listening sockets, UDP datagrams and AF_UNIX streams.

Three offers from one distribution: ``listen`` (TCP ``bind``/``listen``/
``accept``; the accepted connections are served here too), ``udp`` and
``unix`` (guest AF_UNIX paths mapped to host sockets with ``--unix``). Where
a guest may listen or send is the core's network policy (``wassh.policy``):
loopback only, unless ``--listen-allow`` names the address.
"""

from __future__ import annotations

from .transport import ListenTransport

__all__ = ["ListenTransport"]
