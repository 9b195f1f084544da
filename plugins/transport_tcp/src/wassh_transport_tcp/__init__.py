"""wassh transport plugin: direct TCP connections over the host's own sockets.

The connection is a non-blocking OS socket driven from the guest thread: the
kernel's socket buffers are the per-socket buffers, and poll(2) on the socket
is the readiness signal, so the data path never crosses into another thread.
"""

from __future__ import annotations

from .transport import (
    wassh_sock_close,
    wassh_sock_connect,
    wassh_sock_connect_check,
    wassh_sock_getsockopt,
    wassh_sock_name,
    wassh_sock_recv_into,
    wassh_sock_send,
    wassh_sock_setsockopt,
    wassh_sock_shutdown,
    wassh_sock_wait_handle,
    wassh_transport_offer,
)

__all__ = [
    "wassh_sock_close",
    "wassh_sock_connect",
    "wassh_sock_connect_check",
    "wassh_sock_getsockopt",
    "wassh_sock_name",
    "wassh_sock_recv_into",
    "wassh_sock_send",
    "wassh_sock_setsockopt",
    "wassh_sock_shutdown",
    "wassh_sock_wait_handle",
    "wassh_transport_offer",
]
