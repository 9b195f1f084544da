"""wassh transport plugin: direct TCP connections over the host's own sockets.

The connection is a non-blocking OS socket driven from the guest thread: the
kernel's socket buffers are the per-socket buffers, and poll(2) on the socket
is the readiness signal, so the data path never crosses into another thread.
"""

from __future__ import annotations

from .transport import TcpTransport

__all__ = ["TcpTransport"]
