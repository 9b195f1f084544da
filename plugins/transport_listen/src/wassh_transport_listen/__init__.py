"""wassh transport plugin: listening sockets, UDP datagrams and AF_UNIX streams.

Three offers from one distribution: ``listen`` (TCP ``bind``/``listen``/
``accept``; the accepted connections are served here too), ``udp`` and
``unix`` (guest AF_UNIX paths mapped to host sockets by the embedder). Where
a guest may listen or send is the core's network policy (``wassh.policy``):
loopback only, unless ``--listen-allow`` names the address.
"""

from __future__ import annotations

from .transport import (
    wassh_sock_accept,
    wassh_sock_bind,
    wassh_sock_close,
    wassh_sock_connect,
    wassh_sock_connect_check,
    wassh_sock_getsockopt,
    wassh_sock_listen,
    wassh_sock_name,
    wassh_sock_recv_into,
    wassh_sock_send,
    wassh_sock_sendto,
    wassh_sock_setsockopt,
    wassh_sock_shutdown,
    wassh_sock_wait_handle,
    wassh_transport_offer,
)

__all__ = [
    "wassh_sock_accept",
    "wassh_sock_bind",
    "wassh_sock_close",
    "wassh_sock_connect",
    "wassh_sock_connect_check",
    "wassh_sock_getsockopt",
    "wassh_sock_listen",
    "wassh_sock_name",
    "wassh_sock_recv_into",
    "wassh_sock_send",
    "wassh_sock_sendto",
    "wassh_sock_setsockopt",
    "wassh_sock_shutdown",
    "wassh_sock_wait_handle",
    "wassh_transport_offer",
]
