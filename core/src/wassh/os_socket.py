"""Helpers for transports whose connections are host OS sockets (public API).

A transport that keeps a non-blocking ``socket.socket`` in ``sock.state``
gets its whole data path, readiness, options, half-close, names and close
from here: the kernel's buffers are the socket's buffers and poll(2) on the
socket is its readiness, so ``recv``/``send`` are one OS call each.

Two ways to use them: a class-based transport inherits ``OSSocketHooks``
(and implements ``wassh_transport_offer`` and ``wassh_sock_connect`` itself);
a module-based one re-exports the functions under the hook names,
``wassh_sock_send = hookimpl(os_socket.send)``.
"""

from __future__ import annotations

import errno
import os
import select
import socket
from typing import Any, Generic, TypeVar

from .handle import SocketHandle
from .hookspecs import hookimpl

_NOSIGNAL = getattr(socket, "MSG_NOSIGNAL", 0)
_PEEK = socket.MSG_PEEK
# Linux reports a datagram's full length under MSG_TRUNC, so truncation is seen.
_TRUNC = getattr(socket, "MSG_TRUNC", 0)
_POLLIN, _POLLOUT = select.POLLIN, select.POLLOUT

OSHandle = SocketHandle[socket.socket]
"""A guest socket whose ``state`` is a plain ``socket.socket``."""
# The transport's own socket class (a subclass carrying, say, a connect target).
C = TypeVar("C", bound=socket.socket)


def open_socket(
    sock: SocketHandle[Any],
    type_: int = socket.SOCK_STREAM,
    cls: type[C] = socket.socket,  # type: ignore[assignment]
    family: int | None = None,
) -> C:
    """A non-blocking OS socket of ``cls`` with the options the guest set.

    Of the guest socket's family unless ``family`` says otherwise (a proxy's
    own address may be of another). An option the OS refuses is left out
    here; the guest hears its errno if it sets the option again live.
    """
    conn = cls(sock.family if family is None else family, type_)
    conn.setblocking(False)
    apply_options(sock, conn)
    return conn


def apply_options(sock: SocketHandle[Any], conn: socket.socket) -> None:
    """Apply the options the guest set before the OS socket existed."""
    for (level, opt), value in sock.options.items():
        try:
            conn.setsockopt(level, opt, value)
        except OSError:  # answered again, with its errno, if the guest sets it live
            pass


def recv(sock: SocketHandle[C], buf: memoryview, peek: bool) -> int:
    """``wassh_sock_recv``: one ``recv_into`` of the OS socket (``MSG_PEEK`` for ``peek``)."""
    return sock.state.recv_into(buf, 0, _PEEK if peek else 0)


def recvfrom(
    sock: SocketHandle[C], buf: memoryview, peek: bool
) -> tuple[int, tuple[str, int] | None]:
    """One datagram; its full length even when ``buf`` is shorter (Linux's MSG_TRUNC)."""
    conn = sock.state
    n, source = conn.recvfrom_into(buf, 0, (_TRUNC | _PEEK) if peek else _TRUNC)
    if conn.family == socket.AF_UNIX or not source:
        return n, None
    return n, (str(source[0]), int(source[1]))


def send(sock: SocketHandle[C], data: memoryview) -> int:
    """``wassh_sock_send``: one ``send`` of the OS socket, without ``SIGPIPE``."""
    return sock.state.send(data, _NOSIGNAL)


def poll_handle(sock: SocketHandle[C], write: bool) -> tuple[int, int]:
    """``wassh_sock_poll_handle``: the OS socket's descriptor and ``POLLOUT`` or ``POLLIN``."""
    return sock.state.fileno(), _POLLOUT if write else _POLLIN


def setsockopt(sock: SocketHandle[C], level: int, name: int, value: int) -> None:
    """``wassh_sock_setsockopt``: set the option on the OS socket."""
    sock.state.setsockopt(level, name, value)


def getsockopt(sock: SocketHandle[C], level: int, name: int) -> int | None:
    """``wassh_sock_getsockopt``: the OS socket's value of the option."""
    return sock.state.getsockopt(level, name)


def shutdown(sock: SocketHandle[C], how: int) -> None:
    """``wassh_sock_shutdown``: shut the OS socket down; a peer already gone is no error."""
    try:
        sock.state.shutdown(how)
    except OSError as exc:
        if exc.errno != errno.ENOTCONN:  # the peer may already be gone: nothing to do
            raise


def accept(sock: SocketHandle[C]) -> socket.socket:
    """A pending connection of a listening socket, non-blocking.

    :raises BlockingIOError: nothing is pending.
    """
    conn, _ = sock.state.accept()
    conn.setblocking(False)
    return conn


def close(sock: SocketHandle[C]) -> None:
    """``wassh_sock_close``: close the OS socket."""
    sock.state.close()


def getname(sock: SocketHandle[C], remote: bool) -> tuple[str, int] | None:
    """``wassh_sock_getname``: the peer's (``remote``) or the local ``(address, port)``.

    None for ``AF_UNIX`` and for an OS socket that has no such name yet.
    """
    conn = sock.state
    if conn.family == socket.AF_UNIX:
        return None
    try:
        addr = conn.getpeername() if remote else conn.getsockname()
    except OSError:
        return None
    return str(addr[0]), int(addr[1])


def connect_step(conn: socket.socket, address: Any) -> bool:
    """Start or advance a non-blocking connect: True once connected, False while pending.

    :raises OSError: the connect failed (``ECONNREFUSED``...).
    """
    err = conn.connect_ex(address)
    if err in (0, errno.EISCONN):
        return True
    # AF_UNIX answers EAGAIN while the server's backlog is full: try again later.
    if err in (errno.EINPROGRESS, errno.EALREADY, errno.EAGAIN):
        return False
    raise OSError(err, os.strerror(err))


class Dialled(socket.socket):
    """An OS socket that remembers where its connect is heading (``target``), so a
    connect in progress can be advanced with ``dial_check``."""

    __slots__ = ("target",)
    target: Any


D = TypeVar("D", bound=Dialled)


def dial(sock: SocketHandle[D], conn: D, address: Any) -> bool:
    """Start connecting ``conn`` to ``address``; on success it becomes ``sock.state``.

    Returns True when connected already, False while in progress (the core then
    calls ``wassh_sock_connect_check``: answer it with ``dial_check``). A failed
    start closes ``conn`` and raises the errno.
    """
    conn.target = address
    try:
        done = connect_step(conn, address)
    except BaseException:
        conn.close()
        raise
    sock.state = conn
    return done


def dial_check(sock: SocketHandle[D]) -> bool:
    """Advance the connect ``dial`` started: True once connected, False while pending."""
    return connect_step(sock.state, sock.state.target)


class OSSocketHooks(Generic[C]):
    """The per-socket hooks of an OS-socket transport, as methods to inherit.

    ``sock.state`` is the transport's socket: ``OSSocketHooks[MySocket]`` types
    every hook's handle as ``SocketHandle[MySocket]`` (plain ``OSSocketHooks``
    means ``socket.socket``), so the subclass's own hooks agree. The subclass
    implements ``wassh_transport_offer``, ``wassh_sock_connect`` and
    ``wassh_sock_connect_check`` (see ``connect_step``), and what else its
    kinds need (``bind``/``listen``, ``sendto``); ``accept`` takes a pending
    connection of a listening ``sock.state``.
    """

    @hookimpl
    def wassh_sock_recv(self, sock: SocketHandle[C], buf: memoryview, peek: bool) -> int:
        return sock.state.recv_into(buf, 0, _PEEK if peek else 0)

    @hookimpl
    def wassh_sock_send(self, sock: SocketHandle[C], data: memoryview) -> int:
        return sock.state.send(data, _NOSIGNAL)

    @hookimpl
    def wassh_sock_poll_handle(self, sock: SocketHandle[C], write: bool) -> tuple[int, int]:
        return sock.state.fileno(), _POLLOUT if write else _POLLIN

    @hookimpl
    def wassh_sock_setsockopt(
        self, sock: SocketHandle[C], level: int, name: int, value: int
    ) -> None:
        sock.state.setsockopt(level, name, value)

    @hookimpl
    def wassh_sock_getsockopt(self, sock: SocketHandle[C], level: int, name: int) -> int | None:
        return sock.state.getsockopt(level, name)

    @hookimpl
    def wassh_sock_shutdown(self, sock: SocketHandle[C], how: int) -> None:
        shutdown(sock, how)

    @hookimpl
    def wassh_sock_accept(self, sock: SocketHandle[C]) -> socket.socket:
        return accept(sock)

    @hookimpl
    def wassh_sock_close(self, sock: SocketHandle[C]) -> None:
        sock.state.close()

    @hookimpl
    def wassh_sock_getname(self, sock: SocketHandle[C], remote: bool) -> tuple[str, int] | None:
        return getname(sock, remote)


def is_standard_hook(hook: str, fn: object) -> bool:
    """Whether ``fn``, a transport's implementation of ``hook`` (``wassh_sock_recv``,
    say), is this module's own: the method of ``OSSocketHooks`` or the plain
    function. Only then may the compiled fast path do the hook's work itself."""
    fn = getattr(fn, "__func__", fn)
    if fn is None:
        return False
    return fn is getattr(OSSocketHooks, hook, None) or fn is globals().get(
        hook.removeprefix("wassh_sock_")
    )
