"""Guest sockets: POSIX semantics over whichever transport owns each socket.

The data path (read, write, poll) runs entirely on the guest thread: the owner's
hooks move bytes without blocking and name an OS handle to wait on, so a
``recv`` with data ready costs one host call and one OS read.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import math
import socket
import time
from typing import TYPE_CHECKING, Any

from ..abi.errno import Errno, WasiError, to_errno
from ..handle import SocketHandle
from ..plugins import DGRAM, LISTEN, STREAM, UNIX, ConnectRequest, Owner, checked_name
from ..policy import Denied, IPAddress, parse_address
from ..resolve import UnresolvedName
from .objects import ALWAYS_READY, Filestat, OpenObject
from .poll import NEVER_READY
from .sockopts import (
    OPTIONS,
    SO_ERROR,
    SO_LINGER,
    SO_RCVTIMEO,
    SO_SNDTIMEO,
    SO_TYPE,
    SOL_SOCKET,
    Option,
    Shadow,
    linger_size,
    pack_linger,
    unpack_linger,
)
from .waiter import POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDHUP
from .wasi_defs import SOCKET_RIGHTS, Filetype

if TYPE_CHECKING:
    from ..runtime import Process

log = logging.getLogger("wassh.sockets")

# guest (wasi-libc) domain numbers -> host families
WASI_AF_INET, WASI_AF_INET6, WASI_AF_UNIX = 1, 2, 3
HOST_FAMILY = {
    WASI_AF_INET: socket.AF_INET,
    WASI_AF_INET6: socket.AF_INET6,
    WASI_AF_UNIX: socket.AF_UNIX,
}
WASI_FAMILY: dict[int, int] = {v: k for k, v in HOST_FAMILY.items()}

NEW, CONNECTING, CONNECTED, BOUND, LISTENING, FAILED = range(6)
_SHUT = {1: socket.SHUT_RD, 2: socket.SHUT_WR, 3: socket.SHUT_RDWR}


class Socket(OpenObject):
    """One guest socket: POSIX state over its owner's hooks.

    Its transport sees only ``handle`` (``wassh.SocketHandle``): family, kind,
    options and the transport's own ``state``; the state machine stays here.
    """

    rights_base = SOCKET_RIGHTS
    rights_inheriting = 0

    def __init__(self, process: Process, family: int, kind: str, protocol: int) -> None:
        super().__init__()
        self.process = process
        self.family = family
        self.kind = kind
        self.protocol = protocol
        self.filetype = Filetype.SOCKET_STREAM if kind == STREAM else Filetype.SOCKET_DGRAM
        self.config = process.transports.config
        self.options: dict[tuple[int, int], int] = {}
        self._shadow: Shadow | None = None  # answers options while no OS socket does
        # SO_RCVTIMEO / SO_SNDTIMEO in seconds: None waits for ever, 0 not at all.
        self.rcvtimeo: float | None = None
        self.sndtimeo: float | None = None
        self.linger: int | None = None  # SO_LINGER as the SDK encodes it; None: never set
        self.handle: SocketHandle[Any] = SocketHandle(process, family, kind, protocol, self.options)
        self.owner: Owner | None = None
        self.state = NEW
        self.error = 0  # SO_ERROR (WASI errno), read-and-clear
        self.shut_rd = False
        self.shut_wr = False
        self.reset = False  # a reset was reported once; reads now see EOF
        self.peer: tuple[str, int] | None = None
        self._peer_wire: tuple[int, bytes, int] | None = None
        self.remote_host = ""  # what the guest asked to connect to (a name or literal)
        self.dialled: tuple[str, int] | None = None  # the address the guest passed
        self.last_source: tuple[str, int] | None = None  # datagrams: the latest sender
        # For the events stream (counted always: an add costs less than a test).
        self.id = process.sockets.next_id()
        self.opened_at = time.monotonic()
        self.bytes_sent = 0
        self.bytes_received = 0
        self.end_error = ""  # the errno name that ended the connection, if one did
        self.connect_deadline = 0.0  # while CONNECTING: when the connect fails with ETIMEDOUT
        # A connect finished (or failed) that no connect call has reported yet.
        self.unreported = False
        self._reported: set[tuple[str, int]] | None = None  # datagram destinations seen

    @property
    def peer_wire(self) -> tuple[int, bytes, int] | None:
        """The connected stream's peer as ``sock_recvfrom`` reports it, encoded once."""
        wire = self._peer_wire
        if wire is None and self.kind == STREAM and self.state == CONNECTED:
            wire = self._peer_wire = _wire_address(self.peer)
        return wire

    # -- connection set-up -------------------------------------------------------------
    def _choose(self, kind: str, host: str, port: int) -> Owner:
        request = ConnectRequest(kind=kind, family=self.family, host=host, port=port)
        owner = self.process.transports.choose(request)
        if owner is not None and self.process.events is not None:
            self._report_transport(owner, kind, "")
        if owner is None:
            if kind == LISTEN:
                raise WasiError(Errno.ENOTSUP, "no listening transport available")
            if kind == UNIX:
                raise WasiError(Errno.ECONNREFUSED, "no AF_UNIX transport available")
            raise WasiError(Errno.ENETUNREACH, f"no transport accepts {host}:{port}")
        return owner

    def _report_transport(self, owner: Owner, kind: str, why: str) -> None:
        sink = self.process.events
        if sink is None:
            return
        from ..events import TransportChosen  # only with an events sink: ~5 ms to import

        ranking = tuple(self.process.transports.ranking(kind))
        if not why:
            if ranking[:1] == (owner.name,):
                why = "claimed: its rule accepts this" if owner.offer.accepts else "best ranked"
            else:
                why = "the better-ranked transports declined"
        sink(
            TransportChosen(
                self.id,
                transport=owner.name,
                plugin=owner.plugin_name,
                reason=why,
                ranking=ranking,
            )
        )

    def _report_policy(self, action: str, host: str, port: int, denied: Denied | None) -> None:
        if denied is not None:
            self.end_error = "EACCES"
            denied.reported = True
        sink = self.process.events
        if sink is None:
            return
        from ..events import PolicyDecision

        if denied is None:
            policy = self.process.transports.policy
            why = "matches the allow rules" if policy.restricts_connects else "no connect rules"
            if action == "listen":
                why = "loopback or a --listen-allow rule"
            sink(PolicyDecision(self.id, action, host, port, allowed=True, reason=why))
        else:
            sink(
                PolicyDecision(
                    self.id,
                    action,
                    host,
                    port,
                    allowed=False,
                    reason=denied.reason,
                    address=denied.address,
                )
            )

    def _apply_options(self) -> None:
        assert self.owner is not None
        if self._live_os_socket():
            if self._shadow is not None:
                self._shadow.close()  # the transport's socket answers from now on
                self._shadow = None
            if self.linger is not None:
                linger = pack_linger(self.linger)
                try:
                    self.handle.state.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                except OSError as exc:  # the stand-in took it: not expected to fail here
                    log.debug("SO_LINGER not applied: %s", exc)
        for (level, name), value in self.options.items():
            try:
                self.owner.wassh_sock_setsockopt(self.handle, level, name, value)
            except OSError as exc:
                log.debug("option %s/%s not applied: %s", level, name, exc)

    def connect(self, host: str, port: int, dialled: str | None = None) -> None:
        """Connect to ``host`` (a name or literal); ``dialled`` is the address the
        guest passed, which ``getpeername`` reports (the fake one for a name)."""
        udp = self.kind == DGRAM and self.family != socket.AF_UNIX
        if self.state == CONNECTED:
            if udp:
                self._connect_dgram(host, port)
                return
            if self.unreported:  # Linux: a connect that finished unseen answers 0 once
                self.unreported = False
                return
            raise WasiError(Errno.EISCONN)
        if self.state == CONNECTING:
            if self._refresh_connect():
                self._connect_outcome()
                return
            if self.nonblocking:
                raise WasiError(Errno.EALREADY)
            self._await_connect(Errno.EALREADY)
            return
        if self.state == FAILED:
            err, self.error = self.error, 0
            self.state = NEW
            if err:
                raise WasiError(Errno(err))
        if self.state in (LISTENING,):
            raise WasiError(Errno.EISCONN)
        if udp:
            self._connect_dgram(host, port)
            return
        owner = self._connect_owner(host, port)
        if self.family != socket.AF_UNIX:  # AF_UNIX paths are mapped explicitly instead
            self._check_destination(owner, host, port, "connect")
        if owner is not self.owner and self.state == BOUND:
            self._drop_transport()  # a claiming transport dials from its own end
            self.state = NEW
        self.owner = owner
        self.remote_host = host
        self.dialled = (dialled, port) if dialled is not None else None
        # The connect timeout counts from here: a name the transport resolves
        # first spends part of it (``wassh.resolve`` waits no longer).
        self.connect_deadline = time.monotonic() + self.config.connect_timeout
        self.handle._connect_deadline = self.connect_deadline
        try:
            try:
                done = owner.wassh_sock_connect(self.handle, host, port)
            except UnresolvedName:
                self._drop_transport()
                self.state = NEW
                owner = self.owner = self._relay_for_unresolved(owner, host, port)
                done = owner.wassh_sock_connect(self.handle, host, port)
        except BaseException as exc:
            self._drop_transport()
            self.state, self.owner = NEW, None
            self._failed(exc, host, port)
            raise
        finally:
            self.handle._connect_deadline = math.inf
        self._apply_options()
        if done:
            self._connected()
            return
        self.state = CONNECTING
        self.unreported = True
        # The connect timeout holds for non-blocking connects too (as the kernel's
        # own SYN retries end one): poll wakes at the deadline and reports the
        # failure, whatever the transport's handle does meanwhile.
        self.process.sockets.connecting[self] = self.connect_deadline
        if self.nonblocking:
            raise WasiError(Errno.EINPROGRESS)
        self._await_connect(Errno.EINPROGRESS)

    def _await_connect(self, given_up_errno: Errno) -> None:
        """A blocking connect waits for the one under way to finish, and reports it.

        SO_SNDTIMEO bounds the wait; then, as on Linux, the connect goes on and
        the call fails (EINPROGRESS for the connect that started it, EALREADY
        for a later one). A signal ends the wait with EINTR (the SDK restarts
        the call under SA_RESTART, which waits again here).
        """
        owner = self.owner
        assert owner is not None
        given_up = self._deadline(self.sndtimeo)
        while not self._refresh_connect():
            now = time.monotonic()
            if now >= given_up:
                raise WasiError(given_up_errno)
            fd, mask = owner.wassh_sock_poll_handle(self.handle, True)
            remaining = max(0.0, min(self.connect_deadline, given_up) - now)
            self.process.waiter.wait_one(fd, mask, remaining)
        self._connect_outcome()

    def _connect_outcome(self) -> None:
        """The result of a connect that has finished, for the connect call that sees it."""
        if self.state == FAILED:
            err, self.error = self.error, 0
            self.state = NEW
            raise WasiError(Errno(err))
        self.unreported = False

    def _connect_owner(self, host: str, port: int) -> Owner:
        """Who carries a stream connect.

        A bound socket connects from its own address through the transport that
        bound it, unless a transport that claims destinations (``accepts``: a
        relay, an embedder's overlay) takes this one: then the claim wins, as it
        does for unbound sockets, so binding first is no way around a relay.
        """
        kind = UNIX if self.family == socket.AF_UNIX else STREAM
        if self.state != BOUND or self.owner is None:
            return self._choose(kind, host, port)
        request = ConnectRequest(kind=kind, family=self.family, host=host, port=port)
        best = self.process.transports.choose(request, fallback=True)
        if best is not None and best.offer.accepts is not None and best is not self.owner:
            self._report_transport(best, kind, "claimed: its rule accepts this, bound or not")
            return best
        self._report_transport(self.owner, kind, "the socket is bound through it")
        return self.owner

    def _relay_for_unresolved(self, tried: Owner, host: str, port: int) -> Owner:
        """A name the host cannot resolve goes to a transport that resolves elsewhere.

        With a relay configured, a name only the relay knows stays reachable on
        every connect, not just the ones the relay claims; the policy decides on
        the name alone there, as for any relay connect.
        """
        request = ConnectRequest(
            kind=STREAM, family=self.family, host=host, port=port, unresolved=True
        )
        other = self.process.transports.choose(request, skip=(tried.name,))
        if other is None or other.offer.checks_addresses:
            raise WasiError(Errno.EHOSTUNREACH, f"cannot resolve {host}")
        self._report_transport(other, STREAM, "the host cannot resolve the name: handed over")
        self._check_destination(other, host, port, "connect")
        return other

    def _check_destination(self, owner: Owner, host: str, port: int, action: str) -> None:
        try:
            self.process.names.check_destination(
                self.process.transports.policy,
                host,
                port,
                addresses_checked=owner.offer.checks_addresses,
            )
        except Denied as denied:
            self._report_policy(action, host, port, denied)
            raise
        if self.process.events is not None:
            if action == "sendto":  # once per destination, not per datagram
                seen = self._reported = self._reported or set()
                if (host, port) in seen or len(seen) >= 64:
                    return
                seen.add((host, port))
            self._report_policy(action, host, port, None)

    def _failed(self, exc: BaseException, host: str, port: int) -> None:
        """A connect ended in an error: remembered for ``closed``, reported if denied."""
        if isinstance(exc, Denied) and not exc.reported:
            self._report_policy("connect", host, port, exc)  # an address the name led to
        elif isinstance(exc, Exception):
            self.end_error = to_errno(exc).name

    def _connect_dgram(self, host: str, port: int) -> None:
        """A datagram socket's connect only sets the default peer (and filters by it)."""
        fresh = self.owner is None
        if fresh:
            self.owner = self._choose(DGRAM, host, port)
        assert self.owner is not None
        try:
            self._check_destination(self.owner, host, port, "connect")
        except BaseException:
            if fresh:
                self.owner = None
            raise
        try:
            self.owner.wassh_sock_connect(self.handle, host, port)
        except BaseException:
            if fresh:
                self._drop_transport()
                self.owner = None
            raise
        if fresh:
            self._apply_options()
        self.remote_host = host
        self.state = CONNECTED

    def is_connecting(self) -> bool:
        return self.state == CONNECTING

    def _refresh_connect(self) -> bool:
        """Advance a connect in progress; True once it has finished either way."""
        if self.state != CONNECTING:
            return True
        assert self.owner is not None
        # Read before the transport's check: at the deadline the transport has
        # the first say (its own timeout, with its own message).
        now = time.monotonic()
        try:
            if not self.owner.wassh_sock_connect_check(self.handle):
                if now < self.connect_deadline:
                    return False
                raise TimeoutError(errno.ETIMEDOUT, "connect timed out")
        except Exception as exc:
            if isinstance(exc, ConnectionResetError) and self.owner.os_sockets:
                self._connected_then_reset()
                return True
            self.error = int(to_errno(exc))
            self.end_error = Errno(self.error).name
            self.state = FAILED
            self._drop_transport()
            return True
        self._connected()
        return True

    def _connected_then_reset(self) -> None:
        """The handshake completed (a refused one is ECONNREFUSED) and the peer reset
        the connection before the connect was seen to finish. As on Linux, the
        connect succeeds and the reset is the next call's error (and SO_ERROR's)."""
        self.reset = True  # before _connected: the fast path must never serve it
        self._connected()
        self.error = int(Errno.ECONNRESET)
        self.end_error = "ECONNRESET"
        self._changed()

    def _connected(self, outgoing: bool = True) -> None:
        self.state = CONNECTED
        assert self.owner is not None
        if self.process.fast is not None:
            self.process.fast.new_epoch()  # its descriptor may be served in C now
        # Remembered now: once both sides have closed, the OS forgets the peer.
        owner = self.owner
        real = checked_name(owner, owner.wassh_sock_getname(self.handle, True))
        self._peer_wire = None
        if outgoing and real is not None:
            self._check_peer(real)
        self.peer = self.dialled if outgoing and self.dialled is not None else real
        sink = self.process.events
        if outgoing and sink is not None:
            from ..events import Connected

            address = real[0] if real is not None and not _placeholder(real[0]) else None
            port = self.dialled[1] if self.dialled else (real[1] if real else 0)
            sink(Connected(self.id, self.remote_host, port, address, self.owner.name))

    def _check_peer(self, peer: tuple[str, int]) -> None:
        """A second look at where a connect really went, before the guest sends a byte.

        Transports that dial on their own (not through ``resolve``) are held to
        the policy here: a real peer address it denies drops the connection.
        """
        policy = self.process.transports.policy
        if not policy.restricts_connects or self.family == socket.AF_UNIX:
            return
        address = parse_address(str(peer[0]))
        if address is None or address.is_unspecified or _is_fake(address):
            return  # a relay's placeholder, not where the bytes go
        try:
            self.process.names.check_address(policy, self.remote_host, address, int(peer[1]))
        except Denied as denied:
            self._drop_transport()
            self.state, self.owner, self.peer = NEW, None, None
            self._report_policy("connect", self.remote_host, int(peer[1]), denied)
            raise

    def _drop_transport(self) -> None:
        if self.owner is not None and self.handle.state is not None:
            try:
                self.owner.wassh_sock_close(self.handle)
            except Exception as exc:
                log.debug("transport close failed: %s", exc)
        self.handle.state = None
        if self.state != LISTENING:
            self.owner = None if self.state in (NEW, FAILED) else self.owner

    def bind(self, host: str, port: int) -> None:
        if self.state != NEW or self.owner is not None:
            raise WasiError(Errno.EINVAL, "socket already bound or connected")
        if self.family == socket.AF_UNIX:
            raise WasiError(Errno.EINVAL, "AF_UNIX sockets cannot bind")
        kind = LISTEN if self.kind == STREAM else DGRAM
        owner = self._choose(kind, host, port)
        address = parse_address(host)
        # UDP port 0 is what a first sendto binds anyway: only fixed ports serve.
        if not (kind == DGRAM and port == 0):
            policy = self.process.transports.policy
            try:
                if address is not None:
                    policy.check_listen(address, port)
                elif not owner.offer.checks_addresses:
                    why = "bind by name needs an address"
                    raise Denied(f"denied listen on {host}:{port}: {why}", f"{host}:{port}", why)
            except Denied as denied:
                self._report_policy("listen", host, port, denied)
                raise
            self._report_policy("listen", host, port, None)
        self.owner = owner
        try:
            owner.wassh_sock_bind(self.handle, host, port)
        except BaseException:
            self._drop_transport()
            self.owner = None
            raise
        self.state = BOUND
        self._apply_options()

    def listen(self, backlog: int) -> None:
        if self.kind != STREAM:
            raise WasiError(Errno.ENOTSUP, "listen on a datagram socket")  # EOPNOTSUPP
        if self.family == socket.AF_UNIX:
            raise WasiError(Errno.EINVAL)
        if self.state == LISTENING:
            return
        if self.state != BOUND or self.owner is None:
            raise WasiError(Errno.EINVAL, "listen on an unbound socket")
        self.owner.wassh_sock_listen(self.handle, backlog)
        self.state = LISTENING
        if self.process.fast is not None:
            self.process.fast.new_epoch()  # a listener's poll may be served in C now

    def accept(self) -> Socket:
        if self.state != LISTENING or self.owner is None:
            raise WasiError(Errno.EINVAL, "accept on a socket that is not listening")
        owner = self.owner
        deadline = None
        while True:
            try:
                state = owner.wassh_sock_accept(self.handle)
                break
            except BlockingIOError:
                if deadline is None:
                    deadline = self._deadline(self.rcvtimeo)
                if self.nonblocking or not self._wait_until(False, deadline):
                    raise WasiError(Errno.EAGAIN) from None
        return self.adopt(state)

    def adopt(self, state: object) -> Socket:
        """A connection this listener's transport accepted (its ``state``), as a socket."""
        new = Socket(self.process, self.family, self.kind, self.protocol)
        new.owner = self.owner
        new.handle.state = state
        new._connected(outgoing=False)
        return new

    # -- data ----------------------------------------------------------------------------
    def _check_readable(self) -> bool:
        """False when reads must return EOF right away."""
        if self.state == CONNECTING and not self._refresh_connect():
            if self.nonblocking or not self._wait_until(False, self._deadline(self.rcvtimeo)):
                raise WasiError(Errno.EAGAIN)
            return self._check_readable()
        if self.state != CONNECTED and not self._readable_unconnected():
            if self.state == FAILED:
                err, self.error = self.error, 0
                self.state = NEW
                if err:
                    raise WasiError(Errno(err))
            if self.family == socket.AF_UNIX:
                raise WasiError(Errno.EINVAL)
            raise WasiError(Errno.ENOTCONN)
        if self.reset and self.error:
            self._raise_pending()
        return not (self.shut_rd or self.reset)

    def _raise_pending(self) -> None:
        """A connected socket's error not yet reported: the next call's result."""
        err, self.error = self.error, 0
        raise WasiError(Errno(err))

    def _wait(self, write: bool, timeout: float | None = None) -> None:
        assert self.owner is not None
        fd, mask = self.owner.wassh_sock_poll_handle(self.handle, write)
        self.process.waiter.wait_one(fd, mask, timeout)

    @staticmethod
    def _deadline(timeout: float | None) -> float:
        """When a call that starts blocking now gives up (SO_RCVTIMEO/SO_SNDTIMEO)."""
        return math.inf if timeout is None else time.monotonic() + timeout

    def _wait_until(self, write: bool, deadline: float) -> bool:
        """Wait to read or write; False once ``deadline`` has passed (the call gives up).

        Called again after every wake-up, so the time left is measured each time.
        """
        if deadline == math.inf:
            self._wait(write)
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self._wait(write, remaining)
        return True

    def _wait_more(self, write: bool, deadline: float, done: int) -> bool:
        """``_wait_until`` for a call that has already moved ``done`` bytes: a signal
        ends it with that count, as on Linux, rather than EINTR (the bytes are gone
        from the socket, or on their way, either way)."""
        try:
            return self._wait_until(write, deadline)
        except WasiError as exc:
            if exc.code == Errno.EINTR and done:
                return False
            raise

    def _readable_unconnected(self) -> bool:
        return self.state == BOUND and self.kind == DGRAM

    def _recv_error(self, exc: OSError) -> int:
        if isinstance(exc, ConnectionResetError | ConnectionAbortedError):
            self.reset = True
            self._changed()
        raise exc

    def _changed(self) -> None:
        """State the compiled fast path relies on changed (shut, reset): it lets go."""
        fast = self.process.fast
        if fast is not None:
            fast.forget_object(self)

    def recv_one(self, buf: memoryview, dontwait: bool = False) -> int:
        """``recv`` into one buffer: the hot path of every stream read."""
        if self.state != CONNECTED or self.kind != STREAM or self.shut_rd or self.reset:
            return self.recv_into([buf], dontwait=dontwait)[0]
        owner = self.owner
        assert owner is not None
        recv = owner.wassh_sock_recv
        handle = self.handle
        deadline = None
        while True:
            try:
                n = recv(handle, buf, False)
                self.bytes_received += n
                return n
            except BlockingIOError:
                if deadline is None:
                    deadline = self._deadline(self.rcvtimeo)
                if self.nonblocking or dontwait or not self._wait_until(False, deadline):
                    raise WasiError(Errno.EAGAIN) from None
            except OSError as exc:
                self._recv_error(exc)

    def send_one(self, data: memoryview, dontwait: bool = False) -> int:
        """``send`` of one buffer: the hot path of every stream write."""
        if self.state != CONNECTED or self.shut_wr or self.kind != STREAM or self.reset:
            return self.write([data], dontwait)
        owner = self.owner
        assert owner is not None
        send = owner.wassh_sock_send
        handle = self.handle
        size = len(data)
        sent: int = 0
        deadline = None
        while True:
            try:
                n = send(handle, data[sent:] if sent else data)
            except BlockingIOError:
                if deadline is None:
                    deadline = self._deadline(self.sndtimeo)
                if self.nonblocking or dontwait or not self._wait_more(True, deadline, sent):
                    if sent:
                        return sent
                    raise WasiError(Errno.EAGAIN) from None
                continue
            except OSError:
                if sent:
                    return sent
                raise
            sent += n
            self.bytes_sent += n
            if sent >= size:
                return sent

    def recv_into(
        self,
        bufs: list[memoryview],
        *,
        peek: bool = False,
        waitall: bool = False,
        dontwait: bool = False,
        trunc: bool = False,
    ) -> tuple[int, bool]:
        """Scatter received bytes; block only while nothing at all has arrived.

        Returns the count and whether a datagram was truncated. ``trunc`` is
        Linux's MSG_TRUNC: the count of a datagram is its full length, even
        where ``bufs`` hold less, and a TCP stream's bytes are taken without
        being copied into ``bufs`` (AF_UNIX streams ignore it, as Linux does).
        """
        nonblocking = self.nonblocking or dontwait
        if self.kind == DGRAM and self.state == NEW and self.family != socket.AF_UNIX:
            self._wait_unbound(nonblocking)
        if not self._check_readable():
            return 0, False
        owner = self.owner
        assert owner is not None
        if self.kind == DGRAM:
            return self._recv_datagram(bufs, peek, nonblocking, trunc)
        if trunc and self.family != socket.AF_UNIX:
            bufs = _discarding(sum(map(len, bufs)), peek)
        if peek:
            return self._peek_stream(bufs, waitall and not nonblocking, nonblocking), False
        recv = owner.wassh_sock_recv
        handle = self.handle
        total = 0
        deadline = None
        for buf in bufs:
            filled = 0
            size = len(buf)
            while filled < size:
                try:
                    n = recv(handle, buf[filled:] if filled else buf, False)
                except BlockingIOError:
                    if total or filled:
                        if not (waitall and not nonblocking):
                            return total + filled, False
                    elif nonblocking:
                        raise WasiError(Errno.EAGAIN) from None
                    if deadline is None:
                        deadline = self._deadline(self.rcvtimeo)
                    if not self._wait_more(False, deadline, total + filled):
                        if total or filled:
                            return total + filled, False
                        raise WasiError(Errno.EAGAIN) from None
                    continue
                except OSError as exc:
                    if total or filled:
                        return total + filled, False
                    self._recv_error(exc)
                if n == 0:
                    return total + filled, False
                self.bytes_received += n
                filled += n
                if not waitall:
                    break
            total += filled
            if filled < size:
                return total, False
        return total, False

    def _wait_unbound(self, nonblocking: bool) -> None:
        """A datagram socket with no address: nothing can arrive, so a read waits
        until a signal ends it (EINTR) or the guest is stopped, as on Linux."""
        deadline = self._deadline(self.rcvtimeo)
        while not nonblocking:
            remaining = None if deadline == math.inf else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            self.process.waiter.wait({}, remaining)
        raise WasiError(Errno.EAGAIN)

    def _peek_stream(self, bufs: list[memoryview], waitall: bool, nonblocking: bool) -> int:
        """MSG_PEEK on a stream: the bytes from the start of what is buffered, left there.

        With ``waitall`` it waits, as Linux does, until all of ``bufs`` can be
        filled or the stream ends. The handle stays readable while any byte is
        buffered, so more bytes are waited for by time (up to 50 ms between
        looks); an end of stream behind the bytes is seen where the handle
        reports it (an OS socket's POLLRDHUP).
        """
        assert self.owner is not None
        recv = self.owner.wassh_sock_recv
        handle = self.handle
        target = bufs[0] if len(bufs) == 1 else memoryview(bytearray(sum(map(len, bufs))))
        size = len(target)
        if size == 0:
            return 0
        pause = 0.001
        deadline = self._deadline(self.rcvtimeo)
        while True:
            try:
                n = recv(handle, target, True)
            except BlockingIOError:
                if nonblocking or not self._wait_until(False, deadline):
                    raise WasiError(Errno.EAGAIN) from None
                continue
            except OSError as exc:
                self._recv_error(exc)
            if n == 0 or n >= size or not waitall:
                break
            fd, _mask = self.owner.wassh_sock_poll_handle(handle, False)
            if self.process.waiter.wait_one(fd, POLLRDHUP, pause):
                break  # the stream ends (or failed) after these bytes
            pause = min(pause * 2, 0.05)
        if len(bufs) > 1:
            offset = 0
            for buf in bufs:
                step = min(len(buf), n - offset)
                buf[:step] = target[offset : offset + step]
                offset += step
        return n

    def _recv_datagram(
        self, bufs: list[memoryview], peek: bool, nonblocking: bool, trunc: bool = False
    ) -> tuple[int, bool]:
        """One whole datagram, scattered over ``bufs``; the part that does not fit is lost.

        The count is what was copied, or with ``trunc`` the datagram's full length.
        """
        assert self.owner is not None
        target = bufs[0] if len(bufs) == 1 else memoryview(bytearray(sum(map(len, bufs))))
        deadline = None
        while True:
            try:
                n, self.last_source = self.owner.wassh_sock_recvfrom(self.handle, target, peek)
                break
            except BlockingIOError:
                if deadline is None:
                    deadline = self._deadline(self.rcvtimeo)
                if nonblocking or not self._wait_until(False, deadline):
                    raise WasiError(Errno.EAGAIN) from None
        full = n
        truncated = n > len(target)
        n = min(n, len(target))
        if not peek:
            self.bytes_received += n
        if len(bufs) > 1:
            offset = 0
            for buf in bufs:
                step = min(len(buf), n - offset)
                buf[:step] = target[offset : offset + step]
                offset += step
        return (full if trunc else n), truncated

    def read(self, bufs: list[memoryview]) -> int:
        if len(bufs) == 1:
            return self.recv_one(bufs[0])
        return self.recv_into(bufs)[0]

    def write(self, bufs: list[memoryview], dontwait: bool = False) -> int:
        if self.reset and self.error:
            self._raise_pending()
        plain = self.state == CONNECTED and self.kind == STREAM and not self.shut_wr
        if len(bufs) == 1 and plain and not self.reset:
            return self.send_one(bufs[0], dontwait)
        if self.state != CONNECTED:
            if self.state == CONNECTING and self._refresh_connect() and self.state == CONNECTED:
                pass
            elif self.state == CONNECTING:
                connected_by = self._deadline(self.sndtimeo)
                while not self._refresh_connect():
                    if self.nonblocking or dontwait or not self._wait_until(True, connected_by):
                        raise WasiError(Errno.EAGAIN)
                return self.write(bufs, dontwait)
            elif self.kind == DGRAM:
                raise WasiError(Errno.EDESTADDRREQ)
            else:
                raise WasiError(Errno.ENOTCONN)
        if self.shut_wr:
            raise WasiError(Errno.EPIPE)
        owner = self.owner
        assert owner is not None
        send = owner.wassh_sock_send
        handle = self.handle
        nonblocking = self.nonblocking or dontwait
        if self.kind == DGRAM and len(bufs) > 1:
            bufs = [memoryview(b"".join(bufs))]  # a writev is one datagram
        total = 0
        deadline = None
        for buf in bufs:
            sent = 0
            size = len(buf)
            while sent < size:
                try:
                    n = send(handle, buf[sent:] if sent else buf)
                except BlockingIOError:
                    if deadline is None:
                        deadline = self._deadline(self.sndtimeo)
                    if nonblocking or not self._wait_more(True, deadline, total + sent):
                        if total or sent:
                            return total + sent
                        raise WasiError(Errno.EAGAIN) from None
                    continue
                except OSError:
                    if total or sent:
                        return total + sent
                    raise
                sent += n
                self.bytes_sent += n
            total += sent
        return total

    def sendto(self, data: memoryview, host: str, port: int, dontwait: bool = False) -> int:
        """Send one datagram to ``host``/``port`` (streams ignore the address, as Linux does)."""
        if self.kind != DGRAM or self.family == socket.AF_UNIX:
            return self.write([data], dontwait)
        if self.shut_wr:
            raise WasiError(Errno.EPIPE)
        fresh = self.owner is None
        if fresh:
            self.owner = self._choose(DGRAM, host, port)
        owner = self.owner
        assert owner is not None
        try:
            self._check_destination(owner, host, port, "sendto")
            deadline = None
            while True:
                try:
                    n: int = owner.wassh_sock_sendto(self.handle, data, host, port)
                    self.bytes_sent += n
                    return n
                except BlockingIOError:
                    if deadline is None:
                        deadline = self._deadline(self.sndtimeo)
                    if self.nonblocking or dontwait or not self._wait_until(True, deadline):
                        raise WasiError(Errno.EAGAIN) from None
        finally:
            if fresh and self.handle.state is None:
                self.owner = None  # nothing was created: the socket is still new
            elif fresh:
                self.state = BOUND  # the transport bound it to an ephemeral port
                self._apply_options()

    def shutdown(self, how: int) -> None:
        if how not in _SHUT:
            raise WasiError(Errno.EINVAL)
        if self.state != CONNECTED or self.owner is None:
            raise WasiError(Errno.ENOTCONN)
        self.owner.wassh_sock_shutdown(self.handle, _SHUT[how])
        if how & 1:
            self.shut_rd = True
        if how & 2:
            self.shut_wr = True
        self._changed()

    # -- options -------------------------------------------------------------------------
    def _option(self, level: int, name: int) -> Option:
        opt = OPTIONS.get((level, name))
        if opt is None or self.family == socket.AF_UNIX:
            raise WasiError(Errno.ENOPROTOOPT)
        return opt

    def _live_os_socket(self) -> bool:
        """Whether the transport's own OS socket answers options now."""
        owner = self.owner
        return owner is not None and owner.os_sockets and self.handle.state is not None

    def _stand_in(self) -> Shadow:
        shadow = self._shadow
        if shadow is None:
            shadow = self._shadow = Shadow(self.family, self.kind == STREAM, self.options)
        return shadow

    def setsockopt(self, level: int, name: int, value: int) -> None:
        if level == SOL_SOCKET and name in (SO_RCVTIMEO, SO_SNDTIMEO):
            # Milliseconds from the SDK: 0 for none, -1 for "do not wait" (Linux's
            # answer to a negative tv_sec). The host does the waiting, so the OS
            # socket never sees them; the compiled fast path leaves the socket.
            timeout = None if value == 0 else max(value, 0) / 1000
            if name == SO_RCVTIMEO:
                self.rcvtimeo = timeout
            else:
                self.sndtimeo = timeout
            self._changed()
            return
        if level == SOL_SOCKET and name == SO_LINGER:
            self._set_linger(value)
            return
        opt = self._option(level, name)
        if opt.boolean:
            value = 1 if value else 0
        if self._live_os_socket():
            assert self.owner is not None
            # A live OS socket answers as it would natively (IPV6_V6ONLY after
            # connect is EINVAL on Linux); the value is kept only once applied.
            self.owner.wassh_sock_setsockopt(self.handle, opt.level, opt.name, value)
        else:
            self._stand_in().set(opt, value)  # the kernel's verdict on the value
            if self.owner is not None and self.handle.state is not None:
                self.owner.wassh_sock_setsockopt(self.handle, opt.level, opt.name, value)
        self.options[(opt.level, opt.name)] = value

    def _set_linger(self, value: int) -> None:
        """SO_LINGER (a struct, so not in ``options``): on the OS socket once there is one."""
        if self.family == socket.AF_UNIX:
            raise WasiError(Errno.ENOPROTOOPT)
        packed = pack_linger(value)
        if self._live_os_socket():
            self.handle.state.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, packed)
        else:
            self._stand_in().sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, packed)
        self.linger = value

    def _get_linger(self) -> int:
        if self.family == socket.AF_UNIX:
            raise WasiError(Errno.ENOPROTOOPT)
        if self._live_os_socket():
            raw = self.handle.state.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger_size())
            return unpack_linger(raw)
        return 0 if self.linger is None else self.linger

    def getsockopt(self, level: int, name: int) -> int:
        if level == SOL_SOCKET and name == SO_ERROR:
            if self.state == CONNECTING:
                self._refresh_connect()
            err, self.error = self.error, 0
            return err
        if level == SOL_SOCKET and name == SO_TYPE:
            return int(self.filetype)
        if level == SOL_SOCKET and name in (SO_RCVTIMEO, SO_SNDTIMEO):
            timeout = self.rcvtimeo if name == SO_RCVTIMEO else self.sndtimeo
            return 0 if timeout is None else round(timeout * 1000)
        if level == SOL_SOCKET and name == SO_LINGER:
            return self._get_linger()
        opt = self._option(level, name)
        if self.owner is not None and self.handle.state is not None:
            live = self.owner.wassh_sock_getsockopt(self.handle, opt.level, opt.name)
            if live is not None:
                return (1 if live else 0) if opt.boolean else int(live)
        return self._stand_in().get(opt)

    # -- names ---------------------------------------------------------------------------
    def name(self, remote: bool) -> tuple[str, int]:
        if self.family == socket.AF_UNIX:
            raise WasiError(Errno.EPROTONOSUPPORT)
        if self.state == CONNECTING:
            self._refresh_connect()
        if self.owner is None or self.handle.state is None:
            if remote:
                raise WasiError(Errno.ENOTCONN)
            return ("0.0.0.0" if self.family == socket.AF_INET else "::", 0)
        if remote and self.state != CONNECTED:
            raise WasiError(Errno.ENOTCONN)
        if remote and self.peer:
            result: tuple[str, int] | None = self.peer
        else:
            owner = self.owner
            result = checked_name(owner, owner.wassh_sock_getname(self.handle, remote))
        if result is None:
            if remote:
                raise WasiError(Errno.ENOTCONN)
            return ("0.0.0.0" if self.family == socket.AF_INET else "::", 0)
        return (str(result[0]), int(result[1]))

    # -- poll ----------------------------------------------------------------------------
    def poll_handle(self, write: bool) -> tuple[int, int]:
        state = self.state
        if state in (CONNECTED, LISTENING) or self._readable_unconnected():
            if write and self.shut_wr:
                return ALWAYS_READY
            if not write and (self.shut_rd or self.reset):
                return ALWAYS_READY
            assert self.owner is not None
            fd, mask = self.owner.wassh_sock_poll_handle(self.handle, write)
            return fd, (mask | POLLRDHUP) if not write and mask == POLLIN else mask
        if state == CONNECTING:
            assert self.owner is not None
            fd, mask = self.owner.wassh_sock_poll_handle(self.handle, True)
            return fd, mask
        if not write and self.kind == DGRAM:
            return NEVER_READY  # no transport holds it: nothing can arrive (Linux)
        return ALWAYS_READY

    def poll_event(self, write: bool, revents: int) -> tuple[int, int, int] | None:
        if self.state == CONNECTING:
            # The handle woke, but a transport's connect may take several steps
            # (a proxy's handshake): ready only once it has finished either way.
            return (0, 0, 0) if self._refresh_connect() else None
        if self.state in (NEW, FAILED, BOUND) and not self._readable_unconnected():
            # Not connected. Linux: a datagram socket is writable; a stream socket
            # hangs up, with nothing to read (POLLHUP, which EPIPE reports) and
            # still writable (POLLOUT|POLLHUP).
            if self.kind == DGRAM:
                return 0, 0, 0
            return (0, 0, 1) if write else (int(Errno.EPIPE), 0, 1)
        hangup = 1 if revents & (POLLHUP | POLLRDHUP) else 0
        if write:
            if self.shut_wr:
                return int(Errno.EPIPE), 0, 0
            if revents & POLLHUP and not revents & POLLOUT:
                return int(Errno.EPIPE), 0, 1
            return 0, 0, 0
        if self.shut_rd or self.reset:
            return 0, 0, 1
        if revents & POLLERR and not revents & POLLIN:
            return int(Errno.ECONNRESET), 0, hangup
        return 0, 0, hangup

    def filestat(self) -> Filestat:
        return Filestat(filetype=self.filetype)

    def set_fdflags(self, flags: int) -> None:
        if flags & 1:
            raise WasiError(Errno.EINVAL, "O_APPEND on a socket")
        self.nonblocking = bool(flags & 4)

    def close(self, reason: str = "closed") -> None:
        self._drop_transport()
        if self._shadow is not None:
            self._shadow.close()
            self._shadow = None
        self.state = NEW
        self.process.sockets.forget(self)
        self.process.sockets.connecting.pop(self, None)
        sink = self.process.events
        if sink is not None:
            from ..events import Closed

            sink(
                Closed(
                    self.id,
                    reason=f"{reason} after {self.end_error}" if self.end_error else reason,
                    duration=round(time.monotonic() - self.opened_at, 6),
                    bytes_sent=self.bytes_sent,
                    bytes_received=self.bytes_received,
                )
            )


# The protocols socket() takes per kind, as Linux: 0 (the default), the kind's
# own, and -1 (this host's mark for sockets given fake addresses).
_PROTOCOLS = {
    STREAM: frozenset({0, -1, socket.IPPROTO_TCP}),
    DGRAM: frozenset({0, -1, socket.IPPROTO_UDP}),
    UNIX: frozenset({0, WASI_AF_UNIX}),
}

_FAKE_NETWORKS = (ipaddress.ip_network("0.0.0.0/8"), ipaddress.ip_network("100::/64"))


# Where TCP's MSG_TRUNC puts the bytes it takes: nobody reads them back.
_DISCARD = memoryview(bytearray(1 << 16))
_PEEK_DISCARD_MAX = 1 << 20


def _discarding(size: int, peek: bool) -> list[memoryview]:
    """Buffers for ``size`` bytes received without being copied (TCP's MSG_TRUNC).

    A peek looks at the first MiB at most.
    """
    if peek:
        return [memoryview(bytearray(min(size, _PEEK_DISCARD_MAX)))]
    whole, rest = divmod(size, len(_DISCARD))
    return [_DISCARD] * whole + ([_DISCARD[:rest]] if rest else [])


def _placeholder(literal: str) -> bool:
    """A relay's stand-in address (unspecified, or fake), not where the bytes go."""
    address = parse_address(literal)
    return address is None or address.is_unspecified or _is_fake(address)


def _is_fake(address: IPAddress) -> bool:
    """In the ranges fake DNS hands out: a name a relay resolves, not a real peer."""
    return any(address.version == n.version and address in n for n in _FAKE_NETWORKS)


def _wire_address(addr: tuple[str, int] | None) -> tuple[int, bytes, int] | None:
    """``(wasi family, packed address, port)`` as ``sock_recvfrom`` reports a peer."""
    if addr is None:
        return None
    literal = addr[0].split("%", 1)[0]
    # inet_pton, not ipaddress: this runs for every connection a guest accepts.
    for family, wasi in ((socket.AF_INET, WASI_AF_INET), (socket.AF_INET6, WASI_AF_INET6)):
        try:
            return wasi, socket.inet_pton(family, literal), addr[1]
        except OSError:
            continue
    return None


class SocketLayer:
    """The sockets of one process: creation and lookups by descriptor."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self.live: set[Socket] = set()
        self._slots = process.fds.table
        self._ids = 0
        # Non-blocking connects in progress and their deadlines, for poll_oneoff.
        self.connecting: dict[Socket, float] = {}

    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    def create(self, wasi_domain: int, wasi_type: int, protocol: int) -> Socket:
        base = wasi_type & ~0x6000
        family = HOST_FAMILY.get(wasi_domain)
        if family is None:
            raise WasiError(Errno.EAFNOSUPPORT)
        if base == Filetype.SOCKET_STREAM:
            kind = STREAM
        elif base == Filetype.SOCKET_DGRAM:
            kind = DGRAM
        else:
            raise WasiError(Errno.EPROTONOSUPPORT)
        if protocol not in _PROTOCOLS[kind if family != socket.AF_UNIX else UNIX]:
            raise WasiError(Errno.EPROTONOSUPPORT, f"protocol {protocol} for a {kind} socket")
        transports = self.process.transports
        if family == socket.AF_UNIX:
            if not transports.serves(UNIX):
                raise WasiError(Errno.EPROTONOSUPPORT, "no AF_UNIX transport installed")
        elif not (transports.serves(kind) or (kind == STREAM and transports.serves(LISTEN))):
            raise WasiError(Errno.EPROTONOSUPPORT, f"no {kind} transport installed")
        sock = Socket(self.process, family, kind, protocol)
        sock.nonblocking = bool(wasi_type & 0x4000)
        return sock

    def pair(self, wasi_domain: int, wasi_type: int, protocol: int) -> tuple[Socket, Socket]:
        """``socketpair``: two connected AF_UNIX sockets over an OS socket pair.

        They belong to the AF_UNIX transport, as a connected AF_UNIX socket
        does, so reading, writing, poll and shutdown work as for any other.
        """
        if wasi_domain in (WASI_AF_INET, WASI_AF_INET6):
            raise WasiError(Errno.ENOTSUP, "socketpair is AF_UNIX only")  # EOPNOTSUPP
        if wasi_domain != WASI_AF_UNIX:
            raise WasiError(Errno.EAFNOSUPPORT)
        ends = (
            self.create(wasi_domain, wasi_type, protocol),
            self.create(wasi_domain, wasi_type, protocol),
        )
        owner = ends[0]._choose(UNIX, "", 0)
        kind = socket.SOCK_STREAM if ends[0].kind == STREAM else socket.SOCK_DGRAM
        conns = socket.socketpair(socket.AF_UNIX, kind)
        for sock, conn in zip(ends, conns, strict=True):
            conn.setblocking(False)
            sock.owner = owner
            sock.handle.state = conn
            sock._connected(outgoing=False)
        return ends

    def install(self, sock: Socket, listener: Socket | None = None) -> int:
        try:
            fd = self.process.fds.add(sock)
        except WasiError:
            sock.close()
            raise
        self.live.add(sock)
        sink = self.process.events
        if sink is not None:
            from ..events import SocketOpened, family_name

            peer = None
            if listener is not None and sock.peer is not None:
                peer = f"{sock.peer[0]}:{sock.peer[1]}"
            sink(
                SocketOpened(
                    sock.id,
                    family_name(sock.family),
                    sock.kind,
                    listener=listener.id if listener is not None else None,
                    peer=peer,
                )
            )
        return fd

    def forget(self, sock: Socket) -> None:
        self.live.discard(sock)

    def get(self, fd: int) -> Socket:
        obj = self._slots.get(fd)  # the fd table's own dict: this runs on every socket call
        if type(obj) is Socket:
            return obj
        if obj is None:
            raise WasiError(Errno.EBADF, f"fd {fd} is not open")
        if not isinstance(obj, Socket):
            raise WasiError(Errno.ENOTSOCK)
        return obj

    def close_all(self) -> None:
        for sock in list(self.live):
            sock.close("exit")
