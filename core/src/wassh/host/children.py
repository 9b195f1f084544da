"""A guest's children: other guests it started, each on a thread of its own.

A child is a ``Process`` in this host process, built like its parent (the same
network policy and plugin settings, preopens, trace and memory limit) with its
own plugin instances, and its descriptors 0-2 handed over from the parent's.
``waitpid`` blocks on the parent's ``Waiter`` (cancellation and signals still
reach the parent); each child's end is a pipe closing. When the parent stops,
its children are stopped too.
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import wasmtime

from ..abi.errno import Errno, WasiError
from ..signals import SIGCHLD
from .waiter import POLLIN

if TYPE_CHECKING:
    from ..plugins import Transports
    from ..runtime import Process
    from ..spawn import ProgramMap
    from ..spawn_request import Handover

log = logging.getLogger("wassh.children")

MAX_CHILDREN = 64  # running or not yet waited for, per parent
# Running children in the whole host process, grandchildren included: a guest
# that starts itself over and over meets EAGAIN, as under RLIMIT_NPROC.
MAX_RUNNING = 128
_running = threading.BoundedSemaphore(MAX_RUNNING)
_SIGABRT = 6
_SIGKILL = 9
_NSIG = 65
# Linux's pids go up to 4194304; these stay clear of wasi-libc's getpid() (42)
# and are unique within the host process, grandchildren included.
_pids = itertools.count(1000)


def exited(code: int) -> int:
    """A wait status: exited with ``code``."""
    return (code & 0xFF) << 8


def signaled(signum: int) -> int:
    """A wait status: killed by ``signum``."""
    return signum & 0x7F


@dataclass
class Child:
    pid: int
    name: str
    process: Process | None = None
    status: int | None = None  # the wait status once it has ended
    # Readable (end of file) once the child has ended: what a waiting parent polls.
    done_r: int = -1
    done_w: int = -1
    thread: threading.Thread | None = field(default=None, repr=False)

    def finish(self, status: int) -> None:
        self.status = status
        fd, self.done_w = self.done_w, -1
        if fd >= 0:
            os.close(fd)


class Children:
    """The children of one guest process, and how it may start more."""

    def __init__(self, owner: Process) -> None:
        self.owner = owner
        self.programs: ProgramMap | None = None
        # Builds a child's transports: the parent's settings and policy, fresh plugins.
        self.make_transports: Callable[[], Transports] | None = None
        self._children: dict[int, Child] = {}
        self._lock = threading.Lock()
        self.forking = False  # between the SDK's fork() and exec
        self._fds_at_fork: frozenset[int] = frozenset()

    def configure(self, programs: ProgramMap, make_transports: Callable[[], Transports]) -> None:
        self.programs = programs
        self.make_transports = make_transports

    # -- starting -------------------------------------------------------------------
    def spawn(
        self,
        path: str,
        argv: list[str],
        env: Mapping[str, str],
        handover: list[Handover],
        *,
        forked: bool,
    ) -> int:
        """Start ``path`` on the handed-over descriptors; returns the child's pid.

        A program that cannot start raises its errno, unless ``forked`` (the caller
        already returned from fork()): then it is a child that says why on its
        stderr and exits 127, as a shell's "not found".
        """
        from ..spawn import SpawnFailure, resolve

        with self._lock:
            if len(self._children) >= MAX_CHILDREN:
                raise WasiError(Errno.EAGAIN, "too many children")
        if self.programs is None:
            raise WasiError(Errno.ENOSYS, "this process may not start programs")
        try:
            resolved = resolve(self.programs, path, argv, env)
        except SpawnFailure as failure:
            if failure.errno is not None and not forked:
                for given in handover:
                    given.release()
                raise WasiError(Errno(failure.errno), failure.message) from None
            self._tell(handover, f"wassh: {failure.message}\n")
            return self._finished(path, exited(failure.status), handover)
        if resolved is None:  # sh -c '' does nothing, successfully
            return self._finished(path, exited(0), handover)
        module, child_argv = resolved
        return self._start(module, child_argv, env, handover)

    def _tell(self, handover: list[Handover], text: str) -> None:
        """A failed child's one line, on the stderr it was given (else the host's)."""
        given = handover[2] if len(handover) > 2 else None
        data = text.encode("utf-8", "replace")
        try:
            if given is not None and given.host_fd is not None:
                os.write(given.host_fd, data)
                return
            if given is not None and given.shared is not None:
                given.shared.write([memoryview(data)])
                return
        except (OSError, WasiError):
            pass
        sys.stderr.write(text)

    def _new_child(self, name: str) -> Child:
        child = Child(pid=next(_pids), name=name)
        child.done_r, child.done_w = os.pipe2(os.O_CLOEXEC)
        with self._lock:
            self._children[child.pid] = child
        return child

    def _finished(self, name: str, status: int, handover: list[Handover]) -> int:
        for given in handover:
            given.release()
        child = self._new_child(name)
        child.finish(status)
        self._notify_parent()
        return child.pid

    def _start(
        self,
        module: wasmtime.Module,
        argv: list[str],
        env: Mapping[str, str],
        handover: list[Handover],
    ) -> int:
        if not _running.acquire(blocking=False):
            for given in handover:
                given.release()
            raise WasiError(Errno.EAGAIN, f"{MAX_RUNNING} children running in this host")
        try:
            proc = self._child_process(module, argv, env, handover)
            child = self._new_child(argv[0] if argv else "?")
        except BaseException:
            _running.release()
            for given in handover:
                given.release()
            raise
        child.process = proc
        child.thread = threading.Thread(
            target=self._run, args=(child, proc), name=f"wassh-child-{child.pid}", daemon=True
        )
        child.thread.start()
        return child.pid

    def _child_process(
        self,
        module: wasmtime.Module,
        argv: list[str],
        env: Mapping[str, str],
        handover: list[Handover],
    ) -> Process:
        from ..runtime import GuestConfig
        from ..spawn import ChildProcess

        assert self.programs is not None and self.make_transports is not None
        try:
            transports = self.make_transports()
        except Exception as exc:  # a plugin that cannot start: the child cannot either
            raise WasiError(Errno.EAGAIN, f"the child's transports: {exc}") from exc
        owner = self.owner
        parent = owner.config
        config = GuestConfig(
            argv=list(argv),
            env=dict(env),
            preopens=list(parent.preopens),
            trace=parent.trace,
            trace_file=parent.trace_file,
            dev=parent.dev,
            max_memory=parent.max_memory,
        )
        proc = ChildProcess(module, config, transports, events=owner.events)
        proc.handover = handover
        proc.share_loop(owner)
        proc.children.configure(self.programs, self.make_transports)
        return proc

    def _run(self, child: Child, proc: Process) -> None:
        from ..runtime import GuestCancelled
        from ..traps import GuestTrap

        status = signaled(_SIGKILL)
        try:
            code = proc.run()
            killed = proc.killed_by
            status = signaled(killed) if killed is not None else exited(code)
        except GuestTrap as trap:
            sys.stderr.write(trap.report(child.name, verbose=False))
            status = signaled(_SIGABRT)
        except GuestCancelled:
            status = signaled(proc.killed_by or _SIGKILL)
        except WasiError as exc:
            sys.stderr.write(f"wassh: {child.name}: cannot start: {exc}\n")
            status = exited(127)
        except Exception:  # never a traceback from a child's thread; the parent goes on
            if proc.waiter.cancelled:  # stopped while it was being instantiated
                status = signaled(proc.killed_by or _SIGKILL)
            else:
                log.exception("child %s (%s) failed", child.pid, child.name)
                status = exited(127)
        finally:
            for given in getattr(proc, "handover", ()):
                given.release()
            child.process = None  # an ended child keeps no instance (its memory) until reaped
            _running.release()
            child.finish(status)
            self._notify_parent()

    def _notify_parent(self) -> None:
        if not self.owner.stopped.is_set():
            self.owner.send_signal(SIGCHLD)

    # -- waiting and signalling ---------------------------------------------------------
    def _candidates(self, pid: int) -> list[Child]:
        with self._lock:
            if pid > 0:
                found = self._children.get(pid)
                return [found] if found is not None else []
            return list(self._children.values())

    def _reap(self, child: Child) -> tuple[int, int]:
        with self._lock:
            self._children.pop(child.pid, None)
        os.close(child.done_r)
        if child.thread is not None:
            child.thread.join()
        assert child.status is not None
        return child.pid, child.status

    def wait(self, pid: int, nohang: bool) -> tuple[int, int]:
        """``(pid, status)`` of an ended child (``pid`` -1 or 0: any); ``(0, 0)``
        under ``nohang`` while the children run; ECHILD without children; EINTR
        when a signal's handler ran while waiting."""
        waiter = self.owner.waiter
        while True:
            children = self._candidates(pid)
            if not children:
                raise WasiError(Errno.ECHILD)
            for child in children:
                if child.status is not None:
                    return self._reap(child)
            if nohang:
                return 0, 0
            try:
                waiter.wait({c.done_r: POLLIN for c in children}, None)
            except WasiError:  # EINTR: a caught signal (SIGCHLD too) ends the wait,
                if not any(c.status is not None for c in children):
                    raise  # unless a child ended meanwhile: its status comes first

    def kill(self, pid: int, signum: int) -> None:
        if not 0 <= signum < _NSIG:
            raise WasiError(Errno.EINVAL)
        with self._lock:
            child = self._children.get(pid)
        if child is None:
            raise WasiError(Errno.ESRCH)
        if signum == 0 or child.status is not None or child.process is None:
            return  # an ended child not yet waited for takes signals and ignores them
        child.process.send_signal(signum)

    # -- fork() without exec --------------------------------------------------------------
    def _unsupported(self, what: str) -> None:
        name = os.path.basename(self.owner.config.argv[0]) if self.owner.config.argv else "guest"
        # Logged, not printed: an embedding program decides where host messages go.
        log.warning(
            "%s: the child of fork() %s without exec: a fork that continues without "
            "exec is not supported",
            name,
            what,
        )

    def set_forking(self, on: bool) -> None:
        """The SDK's fork() starts recording a child, or exec has started it.

        What the child opened in between (a file to dup2 onto 0, say) was opened
        in this process: it was the child's, so it is closed here once exec has
        handed the child its descriptors.
        """
        fds = self.owner.fds
        if on:
            self._fds_at_fork = frozenset(fds.table)
        elif self.forking:
            for fd in set(fds.table) - self._fds_at_fork:
                fds.close(fd)
            self._fds_at_fork = frozenset()
        self.forking = on

    def refuse_in_fork(self, what: str) -> None:
        """Between fork() and exec: the child would need a process of its own (ENOSYS)."""
        if self.forking:
            self._unsupported(what)
            raise WasiError(Errno.ENOSYS, f"{what} between fork() and exec")

    def exit_status(self, code: int) -> int:
        """The parent's exit status; a fork() child that exited without exec is an error."""
        if self.forking:
            self.forking = False
            self._unsupported("exited")
            return 127
        return code

    def stop(self, timeout: float = 2.0) -> None:
        """The parent has ended: stop every child still running and release the rest."""
        with self._lock:
            children = list(self._children.values())
            self._children.clear()
        for child in children:
            if child.process is not None and child.status is None:
                child.process.cancel()
        for child in children:
            if child.thread is not None:
                child.thread.join(timeout)
            try:
                os.close(child.done_r)
            except OSError:
                pass
