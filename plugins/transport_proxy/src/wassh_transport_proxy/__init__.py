"""wassh transport plugin: TCP through a SOCKS5 or HTTP CONNECT proxy.

``wassh run --proxy socks5h://[USER:PASS@]HOST[:PORT]`` (names resolved by the
proxy), ``--proxy socks5://...`` (names resolved here, every address checked by
the network policy) or ``--proxy http://[USER:PASS@]HOST:PORT`` (HTTP CONNECT).
Built on wassh's public plugin API only: ``wassh`` and ``wassh.os_socket``.
"""

from __future__ import annotations

from .transport import ProxyTransport

__all__ = ["ProxyTransport"]
