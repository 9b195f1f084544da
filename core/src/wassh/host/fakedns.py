"""Late name resolution: names get reserved addresses that connect swaps back.

Two encodings live side by side:

* this project's SDK asks the host (``wassh.sock_getaddrinfo``); its addresses
  lie truly inside 0.0.0.0/8 (index in the low 24 bits, network order) and
  100::/64 (index in the low 64 bits);
* guests linked against the original wassh-libc-sup register names with
  ``sock_register_fake_addr`` and encode the index little-endian in IPv4
  (``x.y.z.0``) and in the last byte of 100::XX.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from ..abi.errno import Errno, WasiError

# Both tables keep a copy of every name a guest hands us, so both are bounded:
# names as DNS bounds them, and the number of distinct names (far more than any
# program resolves, a few tens of MB at most).
MAX_NAME = 253
MAX_NAMES = 1 << 16
# Letters, digits, hyphens and underscores (internal names use them), in labels
# of 1 to 63 bytes; one trailing dot may mark the name absolute.
_HOSTNAME = re.compile(rb"(?:[A-Za-z0-9_-]{1,63}\.)*[A-Za-z0-9_-]{1,63}\.?")


def hostname(raw: bytes) -> str | None:
    """``raw`` as a host name, or None when no resolver would look it up."""
    if len(raw) > MAX_NAME + raw.endswith(b".") or not _HOSTNAME.fullmatch(raw):
        return None
    return raw.decode("ascii")


class FakeDns:
    def __init__(self) -> None:
        self._names: list[str] = [""]  # index 0 is never handed out: 0.0.0.0 stays "any"
        self._index_of: dict[str, int] = {}
        self._orig_v4: dict[int, str] = {}
        self._orig_v6: dict[int, str] = {}

    # -- this project's encoding ---------------------------------------------------
    def register(self, name: str) -> int:
        """The index for ``name`` (a checked ``hostname``); the same name keeps its index."""
        index = self._index_of.get(name)
        if index is None:
            index = len(self._names)
            if index > MAX_NAMES:
                raise WasiError(Errno.ENOMEM, "fake name table full")
            self._names.append(name)
            self._index_of[name] = index
        return index

    @staticmethod
    def v4_address(index: int) -> bytes:
        return bytes([0, (index >> 16) & 0xFF, (index >> 8) & 0xFF, index & 0xFF])

    @staticmethod
    def v6_address(index: int) -> bytes:
        return b"\x01\x00" + b"\x00" * 6 + index.to_bytes(8, "big")

    # -- the original guest library's encoding ---------------------------------------
    def register_original(self, index: int, name: str) -> None:
        if index not in self._orig_v4 and len(self._orig_v4) >= MAX_NAMES:
            raise WasiError(Errno.ENOMEM, "fake name table full")
        self._orig_v4[index] = name
        self._orig_v6[index & 0xFF] = name

    # -- lookups -----------------------------------------------------------------------
    def lookup(self, addr: bytes, marked: bool) -> str | None:
        """The name behind ``addr``, or None when it is a real address.

        ``marked`` is true for sockets created with protocol -1 (addresses come
        from the fake table); unmarked sockets still get a name when the
        address is a registered fake (so 1.0.0.0-style fakes never leak out).
        """
        if len(addr) == 4:
            if addr[0] == 0:
                index = (addr[1] << 16) | (addr[2] << 8) | addr[3]
                if 0 < index < len(self._names):
                    return self._names[index]
            if addr[3] == 0:
                name = self._orig_v4.get(int.from_bytes(addr, "little"))
                if name is not None:
                    return name
        elif len(addr) == 16 and addr[0] == 0x01 and not any(addr[1:8]):
            index = int.from_bytes(addr[8:], "big")
            if 0 < index < len(self._names):
                return self._names[index]
            if not any(addr[8:15]):
                name = self._orig_v6.get(addr[15])
                if name is not None:
                    return name
        if marked and self._is_fake_form(addr):
            raise WasiError(Errno.EFAULT, "unregistered fake address")
        return None

    @staticmethod
    def _is_fake_form(addr: bytes) -> bool:
        if len(addr) == 4:
            return addr[0] == 0 or addr[3] == 0
        return addr[0] == 0x01 and not any(addr[1:8])


def literal(addr: bytes) -> str:
    """The text form of packed address bytes."""
    if len(addr) == 4:
        return str(ipaddress.IPv4Address(addr))
    return str(ipaddress.IPv6Address(addr))


_V4_MAPPED = bytes(10) + b"\xff\xff"
_LOOPBACK = {bytes([127, 0, 0, 1]): "localhost", bytes(15) + b"\x01": "localhost"}


def reverse_name(
    addr: bytes,
    hosts: dict[str, list[str]],
    fake: FakeDns,
    learned: Mapping[bytes, list[str]],
) -> str | None:
    """The name this host knows for ``addr`` (packed), or None: no DNS is asked.

    In order: an ``--add-host`` name for the address (the first given), the
    name a reserved address stands for, the name whose lookup (through a
    resolver plugin) last gave the guest the address, ``localhost`` for the
    loopback addresses (as a stock /etc/hosts answers). An IPv4-mapped IPv6
    address is looked up as the IPv4 address it carries, as glibc does.
    """
    if len(addr) == 16 and addr[:12] == _V4_MAPPED:
        addr = addr[12:]
    for name, texts in hosts.items():
        for text in texts:
            try:
                if ipaddress.ip_address(text.split("%", 1)[0]).packed == addr:
                    return name
            except ValueError:
                continue
    found = fake.lookup(addr, False)
    if found is not None:
        return found
    names = learned.get(addr)
    if names:
        return names[-1]
    return _LOOPBACK.get(addr)
