"""The original guest library's ``wassh_experimental`` imports, and this project's own."""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
import struct
import time
from typing import TYPE_CHECKING

from ..host.fakedns import MAX_NAME, FakeDns, hostname, literal, reverse_name
from ..host.pipe import make_pipe
from ..host.sockets import HOST_FAMILY, WASI_AF_INET, WASI_AF_INET6, WASI_AF_UNIX, WASI_FAMILY
from ..host.tty import WIRE as TTY_WIRE
from ..names import NameAnswer
from ..plugins import DGRAM
from ..policy import parse_address
from ..spawn_request import SPAWN_FORKED, WNOHANG, decode_spawn_request, hand_over
from .errno import Errno, WasiError

if TYPE_CHECKING:
    from ..host.sockets import Socket
    from ..plugins import Owner
    from ..runtime import Process
    from .hostcall import HostCallTable

EXPERIMENTAL = "wassh_experimental"
WASSH = "wassh"
# sock_recvfrom's flags, the numbers the SDK's <sys/socket.h> gives them: MSG_PEEK
# and MSG_WAITALL are wasi-libc's (preview1's RECV_PEEK, RECV_WAITALL), MSG_TRUNC and
# MSG_DONTWAIT Linux's. The original guest library passes only MSG_DONTWAIT.
MSG_PEEK = 0x01
MSG_WAITALL = 0x02
MSG_TRUNC = 0x20
MSG_DONTWAIT = 0x40
_RECV_FLAGS = MSG_PEEK | MSG_WAITALL | MSG_TRUNC | MSG_DONTWAIT

_AI_NUMERICHOST = 0x04
_AI_V4MAPPED = 0x10
_AI_ALL = 0x20
_AI_ADDRCONFIG = 0x40
# The SDK's EAI_* (its netdb.h), and what the host's (socket.EAI_*) become.
_EAI_AGAIN = -1
_EAI_FAIL = -3
_EAI_FAMILY = -4
_EAI_MEMORY = -5
_EAI_NONAME = -6
_EAI_NODATA = -11
_GUEST_EAI = {
    socket.EAI_AGAIN: _EAI_AGAIN,
    socket.EAI_FAIL: _EAI_FAIL,
    socket.EAI_FAMILY: _EAI_FAMILY,
    socket.EAI_MEMORY: _EAI_MEMORY,
    socket.EAI_NONAME: _EAI_NONAME,
    socket.EAI_NODATA: _EAI_NODATA,
}
_V4_MAPPED_PREFIX = bytes(10) + b"\xff\xff"
_AI_RECORD = struct.Struct("<iiiI16s")
_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")
# struct __wassh_itimer in the SDK's timers.c: expiry and period, in nanoseconds.
_ITIMER = struct.Struct("<QQ")
_ITIMER_REAL = 0
_LOCALHOST_V4 = bytes([127, 0, 0, 1])
_LOCALHOST_V6 = bytes(15) + b"\x01"


def is_localhost(name: str) -> bool:
    return name in ("localhost", "localhost.") or (
        name.endswith((".localhost", ".localhost.")) and not name.startswith(".")
    )


@functools.cache
def max_backlog() -> int:
    """The system's limit on a listen queue (``somaxconn``)."""
    try:
        with open("/proc/sys/net/core/somaxconn") as f:
            return min(int(f.read()), 0x7FFFFFFF)
    except (OSError, ValueError):
        return socket.SOMAXCONN


def require_terminal() -> None:
    """ENOTTY unless a person can answer a prompt: our stdin is a terminal we can open.

    With stdin a pipe, a file or a test runner's /dev/null nobody is known to be
    typing, and a prompt could wait forever (or, through ``input``, print the
    prompt into the program's output).
    """
    try:
        if not os.isatty(0):
            raise WasiError(Errno.ENOTTY, "standard input is not a terminal")
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise WasiError(Errno.ENOTTY, "no controlling terminal") from exc
    os.close(fd)


class WasshCalls:
    def __init__(self, proc: Process) -> None:
        self.proc = proc
        self.fake = FakeDns()

    @property
    def mem(self):  # type: ignore[no-untyped-def]  # set after instantiation
        return self.proc.memory

    def register(self, table: HostCallTable) -> None:
        for module in (EXPERIMENTAL, WASSH):
            d = table.define
            d(module, "sock_create", "iiii", self.sock_create)
            d(module, "sock_connect", "iiii", self.sock_connect)
            d(module, "sock_bind", "iiii", self.sock_bind)
            d(module, "sock_listen", "is", self.sock_listen)
            d(module, "sock_accept", "ii", self.sock_accept)
            d(module, "sock_register_fake_addr", "iii", self.sock_register_fake_addr)
            d(module, "sock_get_name", "iiiii", self.sock_get_name)
            d(module, "sock_get_opt", "iiii", self.sock_get_opt)
            d(module, "sock_set_opt", "iiii", self.sock_set_opt)
            d(module, "sock_recvfrom", "iiiiiiii", self.sock_recvfrom)
            d(module, "sock_sendto", "iiiiiiii", self.sock_sendto)
            d(module, "fd_dup", "ii", self.fd_dup)
            d(module, "fd_dup2", "ii", self.fd_dup2)
            d(module, "tty_get_window_size", "ii", self.tty_get_window_size)
            d(module, "tty_set_window_size", "ii", self.tty_set_window_size)
            d(module, "readpassphrase", "iiiii", self.readpassphrase)
        table.define(WASSH, "sock_getaddrinfo", "iiiiiiiii", self.sock_getaddrinfo)
        table.define(WASSH, "sock_getnameinfo", "iiiii", self.sock_getnameinfo)
        table.define(WASSH, "sock_canonname", "iiiii", self.sock_canonname)
        table.define(WASSH, "fd_pipe", "i", self.fd_pipe)
        table.define(WASSH, "sock_pair", "iiii", self.sock_pair)
        table.define(WASSH, "proc_spawn", "ii", self.proc_spawn)
        table.define(WASSH, "proc_wait", "iiii", self.proc_wait)
        table.define(WASSH, "proc_kill", "ii", self.proc_kill)
        table.define(WASSH, "proc_forking", "i", self.proc_forking)
        table.define(WASSH, "tty_get_attr", "ii", self.tty_get_attr)
        table.define(WASSH, "tty_set_attr", "iii", self.tty_set_attr)
        table.define(WASSH, "signal_take", "i", self.signal_take)
        table.define(WASSH, "itimer_set", "iii", self.itimer_set)
        table.define(WASSH, "func_params", "ii", self.func_params)

    # -- addresses ---------------------------------------------------------------------
    def _decode(
        self, fd: int, domain: int, addr_ptr: int, port: int, *, bind: bool = False
    ) -> tuple[str, int]:
        """Address bytes from the guest -> (host name or literal, port)."""
        if domain not in HOST_FAMILY or (domain == WASI_AF_UNIX and bind):
            raise WasiError(Errno.EAFNOSUPPORT)
        sock = self.proc.sockets.get(fd)
        family = HOST_FAMILY.get(domain)
        # Linux: an IPv6 datagram socket reaches IPv4 addresses (as mapped ones);
        # otherwise an address of another family is refused, and an IPv6 or
        # AF_UNIX socket finds a sockaddr_in too short for its own (EINVAL).
        v4_on_v6 = domain == WASI_AF_INET and sock.family == socket.AF_INET6
        mapped = v4_on_v6 and sock.kind == DGRAM and not bind
        if family is not None and family != sock.family and not mapped:
            short = v4_on_v6 or (sock.family == socket.AF_UNIX and domain == WASI_AF_INET)
            raise WasiError(Errno.EINVAL if short else Errno.EAFNOSUPPORT)
        if domain == WASI_AF_INET:
            raw = self.mem.read(addr_ptr, 4)
        elif domain == WASI_AF_INET6:
            raw = self.mem.read(addr_ptr, 16)
        elif domain == WASI_AF_UNIX and not bind:
            path = self.mem.read(addr_ptr, min(port, 108))
            return path.split(b"\0", 1)[0].decode("utf-8", "replace"), 0
        else:
            raise WasiError(Errno.EAFNOSUPPORT)
        marked = sock.protocol == -1 or sock.protocol == 0xFFFFFFFF
        if bind and not marked:
            return literal(raw), port & 0xFFFF
        name = self.fake.lookup(raw, marked)
        if name is None and mapped:
            return f"::ffff:{literal(raw)}", port & 0xFFFF
        return (name if name is not None else literal(raw)), port & 0xFFFF

    # -- sockets ------------------------------------------------------------------------
    def sock_create(self, out: int, domain: int, type_: int, protocol: int) -> int:
        self.mem.check(out, 4)
        self.proc.children.refuse_in_fork("opened a socket")
        if protocol >= 1 << 31:
            protocol -= 1 << 32
        sock = self.proc.sockets.create(domain, type_, protocol)
        self.mem.set_u32(out, self.proc.sockets.install(sock))
        return 0

    def sock_connect(self, fd: int, domain: int, addr: int, port: int) -> int:
        host, port = self._decode(fd, domain, addr, port)
        dialled = None
        if domain in (WASI_AF_INET, WASI_AF_INET6):
            # getpeername answers with the address the guest dialled (a fake one
            # stays fake), whatever the transport made of the name behind it.
            dialled = literal(self.mem.read(addr, 4 if domain == WASI_AF_INET else 16))
        self.proc.sockets.get(fd).connect(host, port, dialled=dialled)
        return 0

    def sock_bind(self, fd: int, domain: int, addr: int, port: int) -> int:
        host, port = self._decode(fd, domain, addr, port, bind=True)
        self.proc.sockets.get(fd).bind(host, port)
        return 0

    def sock_listen(self, fd: int, backlog: int) -> int:
        # As Linux: a C int, and anything out of 0..somaxconn (negative ones too,
        # compared unsigned) becomes somaxconn, so no transport sees a wild number.
        limit = max_backlog()
        if not 0 <= backlog <= limit:
            backlog = limit
        self.proc.sockets.get(fd).listen(backlog)
        return 0

    def sock_accept(self, fd: int, out: int) -> int:
        self.mem.check(out, 4)
        sock = self.proc.sockets.get(fd)
        new = sock.accept()
        self.mem.set_u32(out, self.proc.sockets.install(new, listener=sock))
        return 0

    def sock_register_fake_addr(self, index: int, name_ptr: int, name_len: int) -> int:
        if name_len > MAX_NAME + 1:  # before reading: a long name costs the host nothing
            raise WasiError(Errno.EINVAL, "name too long")
        name = hostname(self.mem.read(name_ptr, name_len))
        if name is None:
            raise WasiError(Errno.EINVAL, "not a host name")
        self.fake.register_original(index, name)
        return 0

    def sock_get_name(
        self, fd: int, family_out: int, port_out: int, addr_out: int, remote: int
    ) -> int:
        sock = self.proc.sockets.get(fd)
        host, port = sock.name(bool(remote))
        ip = ipaddress.ip_address(host.split("%", 1)[0])
        packed = ip.packed
        wasi_family = WASI_AF_INET if ip.version == 4 else WASI_AF_INET6
        self.mem.check(family_out, 4)
        self.mem.check(port_out, 2)
        self.mem.check(addr_out, len(packed))
        self.mem.set_u32(family_out, wasi_family)
        self.mem.set_u16(port_out, port)
        self.mem.write(addr_out, packed)
        return 0

    def sock_get_opt(self, fd: int, level: int, name: int, out: int) -> int:
        self.mem.check(out, 4)
        value = self.proc.sockets.get(fd).getsockopt(level, name)
        self.mem.set_i32(out, value)
        return 0

    def sock_set_opt(self, fd: int, level: int, name: int, value: int) -> int:
        if value >= 1 << 31:
            value -= 1 << 32
        self.proc.sockets.get(fd).setsockopt(level, name, value)
        return 0

    def sock_recvfrom(
        self,
        fd: int,
        buf: int,
        length: int,
        out: int,
        flags: int,
        domain_out: int,
        addr_out: int,
        port_out: int,
    ) -> int:
        if flags & ~_RECV_FLAGS:
            raise WasiError(Errno.EINVAL)
        sock = self.proc.sockets.get(fd)
        mem = self.mem
        view = mem.slice(buf, length)
        # Every output is checked before anything is received: a bad pointer must
        # not cost the guest bytes taken off the socket.
        mem.check(out, 4)
        if domain_out:
            mem.check(domain_out, 4)
        if addr_out:
            mem.check(addr_out, 16)
        if port_out:
            mem.check(port_out, 2)
        wire = sock.peer_wire
        if wire is not None:  # a connected stream: the common case, kept short
            if flags & ~MSG_DONTWAIT:
                n = self._recv_flags(sock, view, flags)
            else:
                n = sock.recv_one(view, bool(flags))
            mv = mem.view
            _U32.pack_into(mv, out, n)
            if domain_out:
                _U32.pack_into(mv, domain_out, wire[0])
            if addr_out:
                packed = wire[1]
                mv[addr_out : addr_out + len(packed)] = packed
            if port_out:
                _U16.pack_into(mv, port_out, wire[2])
            return 0
        n = self._recv_flags(sock, view, flags)
        mem.set_u32(out, n)
        source = sock.last_source if sock.kind == "dgram" else None
        wasi_family = WASI_FAMILY.get(sock.family, WASI_AF_INET)
        if domain_out:
            mem.set_u32(domain_out, wasi_family)
        if sock.family == socket.AF_UNIX:
            if port_out:
                mem.set_u16(port_out, 0)
            return 0
        if source is None:
            try:
                source = sock.name(True)
            except WasiError:
                source = ("0.0.0.0" if sock.family == socket.AF_INET else "::", 0)
        packed = ipaddress.ip_address(source[0].split("%", 1)[0]).packed
        if addr_out:
            mem.write(addr_out, packed)
        if port_out:
            mem.set_u16(port_out, source[1])
        return 0

    @staticmethod
    def _recv_flags(sock: Socket, view: memoryview, flags: int) -> int:
        """``recv`` with the guest's flags; under MSG_TRUNC a datagram counts its full length."""
        n, _truncated = sock.recv_into(
            [view],
            peek=bool(flags & MSG_PEEK),
            waitall=bool(flags & MSG_WAITALL),
            dontwait=bool(flags & MSG_DONTWAIT),
            trunc=bool(flags & MSG_TRUNC),
        )
        return n

    def sock_sendto(
        self,
        fd: int,
        buf: int,
        length: int,
        out: int,
        flags: int,
        domain: int,
        addr: int,
        port: int,
    ) -> int:
        if flags & ~MSG_DONTWAIT:
            raise WasiError(Errno.EINVAL)
        mem = self.mem
        data = mem.slice(buf, length)
        mem.check(out, 4)
        sock = self.proc.sockets.get(fd)
        if domain == 0 or sock.kind == "stream":
            n = sock.send_one(data, bool(flags))
        else:
            if domain not in (WASI_AF_INET, WASI_AF_INET6):
                raise WasiError(Errno.EAFNOSUPPORT)
            host, port = self._decode(fd, domain, addr, port)
            n = sock.sendto(data, host, port, dontwait=bool(flags))
        mem.set_u32(out, n)
        return 0

    # -- descriptors and terminal ---------------------------------------------------------
    def fd_dup(self, fd: int, out: int) -> int:
        self.mem.check(out, 4)
        self.mem.set_u32(out, self.proc.fds.dup(fd))
        return 0

    def fd_dup2(self, old: int, new: int) -> int:
        self.proc.fds.dup2(old, new)
        return 0

    def fd_pipe(self, out: int) -> int:
        self.mem.check(out, 8)
        reader, writer = make_pipe(self.proc.waiter)
        fds = self.proc.fds
        try:
            rfd = fds.add(reader)
        except WasiError:
            reader.close()
            writer.close()
            raise
        try:
            wfd = fds.add(writer)
        except WasiError:
            fds.close(rfd)
            writer.close()
            raise
        self.mem.set_u32(out, rfd)
        self.mem.set_u32(out + 4, wfd)
        return 0

    def sock_pair(self, domain: int, type_: int, protocol: int, out: int) -> int:
        self.mem.check(out, 8)
        if protocol >= 1 << 31:
            protocol -= 1 << 32
        first, second = self.proc.sockets.pair(domain, type_, protocol)
        sockets = self.proc.sockets
        try:
            fd0 = sockets.install(first)
        except WasiError:
            second.close()
            raise
        try:
            fd1 = sockets.install(second)
        except WasiError:
            self.proc.fds.close(fd0)
            raise
        self.mem.set_u32(out, fd0)
        self.mem.set_u32(out + 4, fd1)
        return 0

    # -- other programs (wassh.host.children) ------------------------------------------
    def proc_spawn(self, req: int, pid_out: int) -> int:
        mem = self.mem
        mem.check(pid_out, 4)
        request = decode_spawn_request(mem, req)
        handover = hand_over(self.proc, request.fds)
        pid = self.proc.children.spawn(
            request.path,
            request.argv,
            request.env,
            handover,
            forked=bool(request.flags & SPAWN_FORKED),
        )
        mem.set_u32(pid_out, pid)
        return 0

    def proc_wait(self, pid: int, options: int, status_out: int, pid_out: int) -> int:
        self.mem.check(status_out, 4)
        self.mem.check(pid_out, 4)
        if pid >= 1 << 31:
            pid -= 1 << 32
        if options & ~WNOHANG:
            raise WasiError(Errno.EINVAL)
        found, status = self.proc.children.wait(pid, bool(options & WNOHANG))
        self.mem.set_u32(status_out, status)
        self.mem.set_u32(pid_out, found)
        return 0

    def proc_kill(self, pid: int, signum: int) -> int:
        self.proc.children.kill(pid, signum)
        return 0

    def proc_forking(self, on: int) -> int:
        self.proc.children.set_forking(bool(on))
        return 0

    def tty_get_attr(self, fd: int, out: int) -> int:
        obj = self.proc.fds.get(fd)
        self.mem.check(out, TTY_WIRE.size)
        self.mem.write(out, self.proc.terminals.get(obj))
        return 0

    def tty_set_attr(self, fd: int, action: int, ptr: int) -> int:
        obj = self.proc.fds.get(fd)
        self.proc.terminals.set(obj, action, bytes(self.mem.read(ptr, TTY_WIRE.size)))
        return 0

    def tty_get_window_size(self, fd: int, out: int) -> int:
        rows, cols = self.proc.window_size()
        self.mem.check(out, 8)
        self.mem.write(out, struct.pack("<HHHH", rows, cols, 0, 0))
        return 0

    def tty_set_window_size(self, fd: int, ptr: int) -> int:
        raise WasiError(Errno.ENOTTY)

    # -- signals and timers ------------------------------------------------------------
    def signal_take(self, out: int) -> int:
        self.mem.check(out, 4)
        self.mem.set_u32(out, self.proc.take_signal())
        return 0

    def func_params(self, index: int, out: int) -> int:
        self.mem.check(out, 4)
        self.mem.set_u32(out, self.proc.function_params(index) & 0xFFFFFFFF)
        return 0

    def itimer_set(self, which: int, new: int, old: int) -> int:
        # Only ITIMER_REAL: the guest's CPU time (VIRTUAL, PROF) is not accounted.
        if which != _ITIMER_REAL:
            raise WasiError(Errno.EINVAL, f"interval timer {which} is not supported")
        if old:
            self.mem.check(old, _ITIMER.size)
        timer = self.proc.timer
        if new:
            value_ns, interval_ns = self.mem.unpack(_ITIMER, new)
            assert isinstance(value_ns, int) and isinstance(interval_ns, int)
            before = timer.set(value_ns / 1e9, interval_ns / 1e9)
        else:
            before = timer.get()
        if old:
            left, interval = before
            self.mem.pack(_ITIMER, old, round(left * 1e9), round(interval * 1e9))
        return 0

    def readpassphrase(
        self, prompt: int, prompt_len: int, buf: int, buf_len: int, echo: int
    ) -> int:
        if prompt:
            self.mem.check(prompt, prompt_len)
        if buf_len == 0:
            raise WasiError(Errno.EINVAL)
        self.mem.check(buf, buf_len)
        require_terminal()  # before the prompt is copied: without a terminal it costs nothing
        text = self.mem.read_str(prompt, prompt_len) if prompt else ""
        answer = self.proc.read_passphrase(text, bool(echo)).encode()[: buf_len - 1]
        self.mem.write(buf, answer + b"\0")
        return 0

    # -- name resolution (this project's SDK) ---------------------------------------------
    def sock_getaddrinfo(
        self,
        node: int,
        node_len: int,
        family: int,
        socktype: int,
        protocol: int,
        flags: int,
        res: int,
        res_cap: int,
        nres_out: int,
    ) -> int:
        mem = self.mem
        mem.check(nres_out, 4)
        mem.check(res, _AI_RECORD.size * res_cap)
        if node_len > MAX_NAME + 1:  # before reading: a long name costs the host nothing
            return _EAI_NONAME & 0xFFFFFFFF
        raw = mem.read(node, node_len)
        name = raw.decode("utf-8", "replace")
        if family not in (0, WASI_AF_INET, WASI_AF_INET6):
            return _EAI_FAMILY & 0xFFFFFFFF
        want_v6 = family in (0, WASI_AF_INET6)
        want_v4 = family in (0, WASI_AF_INET)
        if socktype >= 1 << 31:
            socktype -= 1 << 32
        results: list[tuple[int, int, bytes]] = []  # (wasi family, protocol, addr16)
        numeric = _numeric(name)
        if numeric is not None:
            fam = WASI_AF_INET if len(numeric) == 4 else WASI_AF_INET6
            if (fam == WASI_AF_INET and not want_v4) or (fam == WASI_AF_INET6 and not want_v6):
                return _EAI_FAMILY & 0xFFFFFFFF
            results.append((fam, 0, numeric))
        elif flags & _AI_NUMERICHOST:
            return _EAI_NONAME & 0xFFFFFFFF
        elif is_localhost(name):
            if want_v6:
                results.append((WASI_AF_INET6, 0, _LOCALHOST_V6))
            if want_v4:
                results.append((WASI_AF_INET, 0, _LOCALHOST_V4))
        elif hostname(raw) is None:  # bytes no resolver would look up
            return _EAI_NONAME & 0xFFFFFFFF
        else:
            host_family = HOST_FAMILY.get(family, socket.AF_UNSPEC) if family else 0
            owner = self.proc.transports.resolver(name, host_family)
            if owner is not None:
                try:
                    found = self._resolved(owner, name, family, flags)
                except socket.gaierror as exc:
                    return _GUEST_EAI.get(exc.errno or 0, _EAI_FAIL) & 0xFFFFFFFF
                results.extend((wf, 0, addr) for wf, addr in found)
            else:
                try:
                    index = self.fake.register(name)
                except WasiError:
                    return _EAI_MEMORY & 0xFFFFFFFF
                if want_v6:
                    results.append((WASI_AF_INET6, -1, self.fake.v6_address(index)))
                if want_v4:
                    results.append((WASI_AF_INET, -1, self.fake.v4_address(index)))
        results = results[:res_cap]
        for i, (fam, proto, addr) in enumerate(results):
            mem.pack(
                _AI_RECORD,
                res + i * _AI_RECORD.size,
                fam,
                socktype,
                proto,
                0,
                addr.ljust(16, b"\0"),
            )
        mem.set_u32(nres_out, len(results))
        return 0

    def _resolved(
        self, owner: Owner, name: str, family: int, flags: int
    ) -> list[tuple[int, bytes]]:
        """A real answer for ``name`` as the guest's getaddrinfo gives it: ``(wasi family,
        address)``, with AI_V4MAPPED, AI_ALL and AI_ADDRCONFIG applied as glibc does.

        ``--add-host`` names are answered from that table, as /etc/hosts is read
        before DNS; other names by the resolver plugin ``owner``.
        """
        names = self.proc.names
        mapped = family == WASI_AF_INET6 and flags & _AI_V4MAPPED
        hosts = self.proc.transports.config.hosts.get(name)
        if hosts is not None:
            answer = NameAnswer(_host_entries(hosts))
            if answer.addresses:
                names.learn(name, answer)
        else:
            ask = socket.AF_UNSPEC if mapped or not family else HOST_FAMILY[family]
            deadline = time.monotonic() + self.proc.transports.config.connect_timeout
            answer = names.lookup(owner, name, ask, deadline)
        v6 = [a for f, a in answer.addresses if f == socket.AF_INET6]
        v4 = [a for f, a in answer.addresses if f == socket.AF_INET]
        found: list[tuple[int, bytes]]
        if family == WASI_AF_INET:
            found = [(WASI_AF_INET, a) for a in v4]
        elif family == WASI_AF_INET6:
            found = [(WASI_AF_INET6, a) for a in v6]
            if mapped and (not v6 or flags & _AI_ALL):
                found += [(WASI_AF_INET6, _V4_MAPPED_PREFIX + a) for a in v4]
        else:
            found = [(WASI_FAMILY[f], a) for f, a in answer.addresses]
        if flags & _AI_ADDRCONFIG:
            usable = configured_families()
            found = [(f, a) for f, a in found if f in usable]
        if not found:
            raise socket.gaierror(
                socket.EAI_NONAME if hosts is not None else socket.EAI_NODATA,
                f"{name} has no address of that family",
            )
        return found

    def sock_canonname(
        self, node: int, node_len: int, name_out: int, name_cap: int, len_out: int
    ) -> int:
        self.mem.check(len_out, 4)
        if node_len > MAX_NAME + 1:
            raise WasiError(Errno.ENOENT, "name too long")
        name = hostname(self.mem.read(node, node_len))
        canonical = None if name is None else self.proc.names.canonical.get(name)
        if canonical is None:
            raise WasiError(Errno.ENOENT, "no canonical name known beyond the name itself")
        data = canonical.encode("ascii")
        if len(data) > name_cap:
            raise WasiError(Errno.EOVERFLOW)
        self.mem.write(name_out, data)
        self.mem.set_u32(len_out, len(data))
        return 0

    def sock_getnameinfo(
        self, family: int, addr: int, name_out: int, name_cap: int, len_out: int
    ) -> int:
        if family not in (WASI_AF_INET, WASI_AF_INET6):
            raise WasiError(Errno.EAFNOSUPPORT)
        raw = self.mem.read(addr, 4 if family == WASI_AF_INET else 16)
        self.mem.check(len_out, 4)
        name = reverse_name(
            raw, self.proc.transports.config.hosts, self.fake, self.proc.names.learned
        )
        if name is None:
            raise WasiError(Errno.ENOENT, "no name known for this address")
        data = name.encode("ascii")
        if len(data) > name_cap:
            raise WasiError(Errno.EOVERFLOW)
        self.mem.write(name_out, data)
        self.mem.set_u32(len_out, len(data))
        return 0


def _host_entries(texts: list[str]) -> list[tuple[int, bytes]]:
    """The ``--add-host`` addresses of a name, as a resolver would answer them."""
    found: list[tuple[int, bytes]] = []
    for text in texts:
        packed = _numeric(text)
        if packed is not None:
            entry = (socket.AF_INET if len(packed) == 4 else socket.AF_INET6, packed)
            if entry not in found:
                found.append(entry)
    return found


@functools.cache
def configured_families() -> frozenset[int]:
    """The address families this host can use (AI_ADDRCONFIG), as WASI values.

    A family counts when a datagram socket of it can be connected to its
    loopback address: no packet is sent, and a host with IPv6 turned off
    answers EAFNOSUPPORT or EADDRNOTAVAIL.
    """
    usable = set()
    for fam, loopback, wasi in (
        (socket.AF_INET, "127.0.0.1", WASI_AF_INET),
        (socket.AF_INET6, "::1", WASI_AF_INET6),
    ):
        try:
            with socket.socket(fam, socket.SOCK_DGRAM) as probe:
                probe.connect((loopback, 9))
        except OSError:
            continue
        usable.add(wasi)
    return frozenset(usable)


def _numeric(name: str) -> bytes | None:
    """The address a numeric name denotes, as a Linux resolver reads it (``127.1`` too)."""
    try:
        return ipaddress.ip_address(name.split("%", 1)[0]).packed
    except ValueError:
        address = parse_address(name)
        return None if address is None else address.packed
