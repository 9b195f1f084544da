"""Name lookups for the guest: resolver plugins, waited for where the guest can be stopped.

A resolver plugin (an offer of kind ``NAMES``) answers on the runtime's trio
loop; the guest thread waits for the answer through the runtime's waiter, so
cancellation, signals and the deadline (the connect timeout) end the wait
whatever the resolver does. The host's own resolver, which transports use at
connect time when no resolver plugin is configured, runs on a worker thread
and is waited for the same way.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .abi.errno import UNEXPECTED, Errno, WasiError
from .host.fakedns import hostname
from .host.waiter import POLLIN, GuestTerminated, Waiter
from .policy import IPAddress, NetworkPolicy, parse_address, unmap

if TYPE_CHECKING:
    from .plugins import Owner
    from .runtime import Process

log = logging.getLogger("wassh.names")
T = TypeVar("T")
# The most addresses one answer gives the guest (a DNS answer over TCP can hold
# thousands); the guest's own getaddrinfo asks for fewer.
MAX_ADDRESSES = 64


@dataclass(frozen=True)
class NameAnswer:
    """What ``wassh_getaddrinfo`` returns.

    ``addresses``: ``(socket.AF_INET, 4 packed bytes)`` or ``(socket.AF_INET6,
    16 packed bytes)`` pairs, in the order the guest should try them.
    ``canonical_name``: the name the answer's CNAME chain ends at (what
    ``AI_CANONNAME`` reports), or None when it is the name asked for.
    """

    addresses: Sequence[tuple[int, bytes]]
    canonical_name: str | None = None


MAX_PENDING = 32  # lookups under way at once per guest (each holds a pipe)
MAX_SYSTEM_THREADS = 16  # host resolver threads per guest, abandoned ones included
MAX_LEARNED = 4096  # addresses remembered with the names that led to them
MAX_NAMES_PER_ADDRESS = 8
# An answer that waited for a guest which never came back for it (a signal
# handler that longjmp'd away) serves a lookup of the same name only this fresh.
REUSE_ANSWER_FOR = 1.0


class _Expired(Exception):
    """The lookup's deadline passed before its answer came."""


class Pending(Generic[T]):
    """One lookup under way: its outcome, and a pipe that turns readable once it has one.

    ``finish`` runs once, on the thread or task doing the lookup; it closes the
    pipe's write end itself, so the guest thread can drop the lookup at any
    time (closing only the read end) without a late write reaching a reused
    descriptor.
    """

    def __init__(self, deadline: float) -> None:
        self.read_fd, self._write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.deadline = deadline
        self.outcome: T | BaseException | None = None
        self.done_at: float | None = None
        self._cancelled = False
        self._cancel_in_loop: Callable[[], None] | None = None

    def finish(self, outcome: T | BaseException) -> None:
        self.outcome = outcome
        self.done_at = time.monotonic()
        try:
            os.write(self._write_fd, b"!")
        except OSError:  # nobody waits any more: the read end is closed
            pass
        os.close(self._write_fd)

    def cancel(self) -> None:
        """Stop the lookup (its task, when it runs on the trio loop)."""
        self._cancelled = True
        stop = self._cancel_in_loop
        if stop is not None:
            stop()

    def on_cancel(self, stop: Callable[[], None]) -> bool:
        """Register how to stop the running lookup; False if it was cancelled already."""
        self._cancel_in_loop = stop
        return not self._cancelled

    def close(self) -> None:
        os.close(self.read_fd)


def wait_for(waiter: Waiter, pending: Pending[T]) -> T:
    """Block the guest thread until ``pending`` has its outcome.

    Raises the lookup's own error, ``_Expired`` at its deadline, and whatever
    the waiter raises: ``GuestTerminated`` when the guest is stopped, EINTR for a
    signal whose handler must run now (the lookup goes on meanwhile).
    """
    while pending.done_at is None:
        remaining = pending.deadline - time.monotonic()
        if remaining <= 0:
            raise _Expired
        waiter.wait_one(pending.read_fd, POLLIN, remaining)
    outcome = pending.outcome
    if isinstance(outcome, BaseException):
        raise outcome
    assert outcome is not None
    return outcome


class Names:
    """One guest's name lookups, and the names behind the real addresses it was given."""

    def __init__(self, process: Process) -> None:
        self._process = process
        self._pending: dict[tuple[str, str, int], Pending[NameAnswer]] = {}
        # address (packed) -> the names whose lookups returned it, oldest first:
        # the network policy judges a connect to it by those names too.
        self.learned: OrderedDict[bytes, list[str]] = OrderedDict()
        self.canonical: OrderedDict[str, str] = OrderedDict()
        self._threads = 0
        self._threads_lock = threading.Lock()

    # -- resolver plugins -------------------------------------------------------------
    def lookup(self, owner: Owner, host: str, family: int, deadline: float) -> NameAnswer:
        """Ask ``owner`` (a ``NAMES`` offer's plugin) for ``host``; on the guest thread.

        Returns a checked answer (addresses of ``family`` unless AF_UNSPEC, never
        empty) and remembers which name led to each address. Raises
        ``socket.gaierror`` (the guest's getaddrinfo result), EINTR while a signal
        handler must run (the call is made again and finds this lookup under
        way), ``GuestTerminated`` when the guest is stopped.
        """
        key = (owner.name, host, family)
        pending = self._pending.get(key)
        done_at = None if pending is None else pending.done_at
        if done_at is not None and time.monotonic() - done_at > REUSE_ANSWER_FOR:
            self._drop(key)
            pending = None
        if pending is None:
            self._make_room()
            pending = self._pending[key] = Pending(deadline)
            self._start(owner, host, family, pending)
        try:
            answer = wait_for(self._process.waiter, pending)
        except _Expired:
            self._drop(key)
            raise socket.gaierror(
                socket.EAI_AGAIN, f"no answer for {host} from {owner.name!r} in time"
            ) from None
        except GuestTerminated:
            self._drop(key)
            raise
        except WasiError as exc:
            if exc.code != Errno.EINTR:
                self._drop(key)
            raise
        except BaseException:
            self._drop(key)
            raise
        self._drop(key)
        checked = _checked(owner, host, family, answer)
        self.learn(host, checked)
        return checked

    def _start(self, owner: Owner, host: str, family: int, pending: Pending[NameAnswer]) -> None:
        config = self._process.transports.config
        portal = self._process.portal

        async def run() -> None:
            import trio

            with trio.CancelScope() as scope:
                token = trio.lowlevel.current_trio_token()
                if not pending.on_cancel(lambda: _call_soon(token, scope.cancel)):
                    scope.cancel()
                try:
                    outcome: NameAnswer | BaseException = await owner.wassh_getaddrinfo(
                        host, family, config
                    )
                except socket.gaierror as exc:
                    outcome = exc
                except Exception as exc:  # a plugin bug: the guest gets EAI_FAIL
                    UNEXPECTED.record(exc)
                    log.error("resolver %r failed on %r: %s", owner.name, host, exc, exc_info=exc)
                    outcome = socket.gaierror(socket.EAI_FAIL, f"resolver {owner.name!r} failed")
                pending.finish(outcome)
            if scope.cancelled_caught:
                pending.finish(socket.gaierror(socket.EAI_AGAIN, "lookup cancelled"))

        portal.start_soon(run)

    def _drop(self, key: tuple[str, str, int]) -> None:
        pending = self._pending.pop(key, None)
        if pending is not None:
            if pending.done_at is None:
                pending.cancel()
            pending.close()

    def _make_room(self) -> None:
        if len(self._pending) < MAX_PENDING:
            return
        for key, pending in list(self._pending.items()):  # answers nobody came back for
            if pending.done_at is not None:
                self._drop(key)
        if len(self._pending) >= MAX_PENDING:
            raise socket.gaierror(socket.EAI_AGAIN, "too many lookups under way")

    def learn(self, host: str, answer: NameAnswer) -> None:
        """Remember that ``host`` led the guest to these addresses (and its canonical name)."""
        learned = self.learned
        for _, packed in answer.addresses:
            names = learned.pop(packed, None) or []
            if host in names:
                names.remove(host)
            names.append(host)
            del names[:-MAX_NAMES_PER_ADDRESS]
            learned[packed] = names
        while len(learned) > MAX_LEARNED:
            learned.popitem(last=False)
        if answer.canonical_name is not None:
            self.canonical.pop(host, None)
            self.canonical[host] = answer.canonical_name
            while len(self.canonical) > MAX_LEARNED:
                self.canonical.popitem(last=False)

    # -- the network policy on resolved addresses -------------------------------------
    def check_destination(
        self, policy: NetworkPolicy, host: str, port: int, *, addresses_checked: bool
    ) -> None:
        """``policy.check_destination``, judging a resolved literal by its names."""
        if self.learned:
            address = parse_address(host)
            if address is not None and unmap(address).packed in self.learned:
                self.check_address(policy, host, address, port)
                return
        policy.check_destination(host, port, addresses_checked=addresses_checked)

    def check_address(
        self, policy: NetworkPolicy, host: str, address: IPAddress, port: int
    ) -> None:
        """``policy.check_address`` for a connect to ``address`` that ``host`` named.

        When ``host`` is the literal itself and the guest got that address from a
        resolver plugin, the names whose lookups returned it stand in for it, as
        if the guest had connected to the name: the connect is allowed when one
        of them is allowed, as a name and together with the address (deny rules
        hold for both). Raises ``Denied``.
        """
        names = self._names_behind(host, address)
        if names is None:
            policy.check_address(host, address, port)
            return
        for name in names[:-1]:
            if _name_allows(policy, name, address, port):
                return
        policy.check_destination(names[-1], port, addresses_checked=True)
        policy.check_address(names[-1], address, port)

    def allows_address(
        self, policy: NetworkPolicy, host: str, address: IPAddress, port: int
    ) -> bool:
        """``check_address`` without raising or logging."""
        names = self._names_behind(host, address)
        if names is None:
            return policy.allows_address(host, address, port)
        return any(_name_allows(policy, name, address, port) for name in names)

    def _names_behind(self, host: str, address: IPAddress) -> list[str] | None:
        """The names a resolver plugin gave ``address`` for, when ``host`` is a literal."""
        if self.learned and parse_address(host) is not None:
            return self.learned.get(unmap(address).packed)
        return None

    def names_for(self, host: str) -> list[str]:
        """The names whose lookups returned the literal ``host`` (none for a name)."""
        if not self.learned:
            return []
        address = parse_address(host)
        return [] if address is None else list(self.learned.get(unmap(address).packed, ()))

    # -- the host's own resolver -------------------------------------------------------
    def system_lookup(
        self, host: str, port: int, family: int, deadline: float
    ) -> list[tuple[Any, ...]]:
        """``socket.getaddrinfo`` on a worker thread, waited for on the guest thread.

        The OS resolver cannot be interrupted: a lookup past its deadline is
        abandoned (its thread ends with the resolver's own timeout) and counts
        against the guest's thread limit until then.
        """
        with self._threads_lock:
            if self._threads >= MAX_SYSTEM_THREADS:
                raise OSError(errno.EAGAIN, "too many host name lookups under way")
            self._threads += 1
        pending: Pending[list[tuple[Any, ...]]] = Pending(deadline)

        def work() -> None:
            outcome: list[tuple[Any, ...]] | BaseException
            try:
                outcome = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
            except Exception as exc:
                outcome = exc
            finally:
                with self._threads_lock:
                    self._threads -= 1
            pending.finish(outcome)

        try:
            threading.Thread(target=work, name="wassh-getaddrinfo", daemon=True).start()
        except RuntimeError:
            with self._threads_lock:
                self._threads -= 1
            pending.finish(OSError(errno.EAGAIN, "cannot start a lookup thread"))
        try:
            return wait_for(self._process.waiter, pending)
        except _Expired:
            raise OSError(errno.ETIMEDOUT, f"no address for {host} in time") from None
        finally:
            pending.close()

    def close(self) -> None:
        for key in list(self._pending):
            self._drop(key)


def _name_allows(policy: NetworkPolicy, name: str, address: IPAddress, port: int) -> bool:
    return policy.destination_verdict(
        name, port, addresses_checked=True
    ) is None and policy.allows_address(name, address, port)


def _call_soon(token: Any, fn: Callable[[], object]) -> None:
    try:
        token.run_sync_soon(fn)
    except Exception:  # the loop has ended: nothing left to cancel
        pass


def _checked(owner: Owner, host: str, family: int, answer: object) -> NameAnswer:
    """The plugin's answer held to its contract; anything else is its bug (EAI_FAIL)."""
    if not isinstance(answer, NameAnswer):
        log.error(
            "resolver %r answered %r for %r, not a wassh.NameAnswer", owner.name, answer, host
        )
        raise socket.gaierror(socket.EAI_FAIL, f"resolver {owner.name!r} answered nonsense")
    sizes: dict[int, int] = {socket.AF_INET: 4, socket.AF_INET6: 16}
    kept: list[tuple[int, bytes]] = []
    try:
        for fam, packed in answer.addresses:
            if sizes.get(fam) != len(packed) or not isinstance(packed, bytes):
                raise ValueError(fam, packed)
            if (family == socket.AF_UNSPEC or fam == family) and (fam, packed) not in kept:
                kept.append((fam, bytes(packed)))
    except (TypeError, ValueError):
        log.error(
            "resolver %r answered %r for %r: not (family, packed address) pairs",
            owner.name,
            answer.addresses,
            host,
        )
        raise socket.gaierror(
            socket.EAI_FAIL, f"resolver {owner.name!r} answered nonsense"
        ) from None
    if not kept:
        raise socket.gaierror(socket.EAI_NODATA, f"{host} has no address of that family")
    canonical = answer.canonical_name
    if canonical is not None:
        canonical = canonical.rstrip(".")
        if hostname(canonical.encode("ascii", "replace")) is None or canonical == host:
            canonical = None
    return NameAnswer(kept[:MAX_ADDRESSES], canonical)
