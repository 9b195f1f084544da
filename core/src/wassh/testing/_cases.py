"""The conformance cases: ``StreamConformance``, ``ListenConformance``, ``DatagramConformance``.

Each case runs the conformance guest (``guests/conform.c``) with the transport
under test alone, against loopback servers the kit started, and asserts
bytes, errno names and generous time bounds. Cases are plain (synchronous)
pytest tests that run their own trio loop, so they work whatever async
plugin the author's project uses.
"""

from __future__ import annotations

import errno
import itertools
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import trio

from ..plugins import DGRAM, LISTEN, STREAM, ConnectRequest, Transports, make_plugin_manager
from ._guest import ConformanceFailure, GuestRun, run_case, run_guest
from ._peer import PeerConnection, PeerServer, UdpEchoServer, pattern, pattern_digest
from ._spec import Endpoint, TransportUnderTest

T = TypeVar("T")

RUN_TIMEOUT = 60.0  # seconds one guest run may take before the case fails
CANCEL_BOUND = 5.0  # seconds from cancelling a blocked guest to wassh.run returning
CLOSE_BOUND = 10.0  # seconds for the far end to see a cancelled guest's socket close
SETTLE = 0.3  # seconds to let a guest that said "blocking" reach its blocking call

ECHO_SIZES = (1, 1000, 16384, 65536, 300000)
ECHO_TOTAL = sum(ECHO_SIZES) + 3 + 11 + 5  # + write/read, writev, peek/readv
BIG = 16 << 20
DOWNLOAD = 8 << 20
UPLOAD = 8 << 20
SERVE_BIG = 8 << 20
MANY = 16
HOLD_LIMIT = 128 << 20
UDP_SIZES = (0, 1, 1472, 8192, 65507)


def _fail(message: str, run: GuestRun | None = None) -> ConformanceFailure:
    return ConformanceFailure(message + ("\n" + run.describe() if run is not None else ""))


def expect(actual: object, expected: object, what: str, run: GuestRun | None = None) -> None:
    """Fail with both values, what was checked and the guest's output."""
    if actual != expected:
        raise _fail(f"{what}: expected {expected!r}, got {actual!r}", run)


def expect_true(condition: bool, what: str, run: GuestRun | None = None) -> None:
    if not condition:
        raise _fail(what, run)


def _errname(number: int) -> str:
    return errno.errorcode.get(number, f"E{number}")


def _unspecified(family: int) -> str:
    return ":: 0" if family == socket.AF_INET6 else "0.0.0.0 0"


class Kit:
    """What a conformance case works with (the ``wassh_kit`` fixture).

    Also usable for an author's own extra cases: ``kit.run(endpoint, *argv)``
    runs the conformance guest with the transport under test configured for
    ``endpoint``; ``kit.peer`` is the TCP peer server, ``kit.udp`` the UDP echo.
    """

    _tokens = itertools.count()

    def __init__(
        self, transport: TransportUnderTest, peer: PeerServer, udp: UdpEchoServer, guest: Path
    ) -> None:
        self.transport = transport
        self.peer = peer
        self.udp = udp
        self.guest = guest
        self.expects = transport.expects
        # How long one guest run may take before the case fails.
        self.run_timeout = RUN_TIMEOUT

    def token(self) -> str:
        """A name for this case's connections at the peer server, unique in the session."""
        return f"c{os.getpid()}-{next(self._tokens)}"

    def new_run(self, *argv: str) -> GuestRun:
        return GuestRun(self.transport.name, argv)

    async def arun(
        self,
        endpoint: Endpoint,
        *argv: str,
        timeout: float | None = None,
        state: GuestRun | None = None,
    ) -> GuestRun:
        """Run the guest to its end on the current trio loop (``state`` to watch it run)."""
        run = state or self.new_run(*argv)
        config = self.transport.config(endpoint)
        options = self.transport.run_options()
        start = time.monotonic()
        limit = self.run_timeout if timeout is None else timeout
        await run_guest(self.guest, run, config, options, timeout=limit)
        run.seconds = time.monotonic() - start
        return run

    def run(self, endpoint: Endpoint, *argv: str, timeout: float | None = None) -> GuestRun:
        """Run the guest to its end (a trio loop of its own); fails if it exits non-zero."""
        run = run_case(lambda: self.arun(endpoint, *argv, timeout=timeout))
        expect(run.code, 0, "the guest's exit status", run)
        return run

    def check_offer(self, kind: str, endpoint: Endpoint) -> None:
        """The transport under test is available and is the one chosen for ``endpoint``."""
        pm = make_plugin_manager(**self.transport.run_options())
        transports = Transports(pm, self.transport.config(endpoint))
        try:
            mine = [o for o, p in transports.offers if p == self.transport.name]
            expect_true(
                bool(mine),
                f"plugin {self.transport.name!r} made no offer (offers: {transports.offers})",
            )
            serving = [o for o in mine if o.available and kind in o.kinds]
            expect_true(
                bool(serving),
                f"no available offer of plugin {self.transport.name!r} serves {kind} sockets: "
                + ", ".join(f"{o.name} {sorted(o.kinds)} {o.reason}" for o in mine),
            )
            request = ConnectRequest(kind, endpoint.family, endpoint.host, endpoint.port)
            owner = transports.choose(request)
            expect_true(
                owner is not None and owner.plugin_name == self.transport.name,
                f"a {kind} socket for {endpoint.host} {endpoint.port} would be served by "
                f"{owner.plugin_name if owner else 'nothing'!r}, not {self.transport.name!r}",
            )
        finally:
            transports.stop()

    def connection(self, token: str) -> PeerConnection:
        return self.peer.connection(token)

    def ended(self, conn: PeerConnection, run: GuestRun, timeout: float = CLOSE_BOUND) -> str:
        """How the peer saw ``conn`` end, once it has (fails after ``timeout`` seconds)."""
        expect_true(
            conn.wait_ended(timeout),
            f"the peer did not see the connection end within {timeout} s after the guest "
            f"closed it ({conn.describe()})",
            run,
        )
        return conn.end


async def _cancel_when_blocked(
    kit: Kit,
    endpoint: Endpoint,
    argv: Sequence[str],
    ready: Callable[[GuestRun], Awaitable[None]],
) -> tuple[GuestRun, float]:
    """Run the guest, wait until ``ready`` says it is blocked, cancel it; the time it took."""
    run = kit.new_run(*argv)
    scope = trio.CancelScope()
    cancelled_at = 0.0

    async def guest() -> None:
        with scope:
            await kit.arun(endpoint, *argv, state=run)
        run.cancelled = scope.cancelled_caught and run.code is None

    async with trio.open_nursery() as nursery:
        nursery.start_soon(guest)
        await ready(run)
        await trio.sleep(SETTLE)
        expect(run.code, None, "the guest should still be blocked", run)
        cancelled_at = time.monotonic()
        scope.cancel()
    took = time.monotonic() - cancelled_at
    expect_true(run.cancelled, "wassh.run did not end by cancellation", run)
    expect_true(
        took < CANCEL_BOUND,
        f"wassh.run took {took:.2f} s to return after its scope was cancelled "
        f"(bound {CANCEL_BOUND} s)",
        run,
    )
    return run, took


async def _in_thread(fn: Callable[[], T]) -> T:
    return await trio.to_thread.run_sync(fn)


# -------------------------------------------------------------------------------------------
# Stream client cases
# -------------------------------------------------------------------------------------------


class StreamConformance:
    """Conformance of a transport serving the guest's outgoing TCP connections.

    Subclass it in a test module (name the subclass ``Test...``) and say which
    transport with a class attribute ``transport = TransportUnderTest(...)``,
    or override the ``wassh_transport`` fixture (for one that needs servers
    of its own, or a parametrisation). Needs the ``wassh.testing`` plugin.
    """

    transport: ClassVar[TransportUnderTest]

    def test_offer(self, wassh_kit: Kit) -> None:
        """The transport is available, and chosen for a connect to the peer."""
        wassh_kit.check_offer(STREAM, wassh_kit.peer.endpoint())

    def test_echo(self, wassh_kit: Kit) -> None:
        """Bytes both ways through send/recv, write/read, writev, MSG_PEEK and readv;
        getpeername is what the guest dialled; getsockname per ``local_address``;
        the peer received exactly what the guest sent, then end of stream."""
        _echo(wassh_kit, socket.AF_INET)

    def test_echo_ipv6(self, wassh_kit: Kit) -> None:
        """The same to ``::1`` (``ipv6=False``: the connect fails with an errno)."""
        import pytest

        if not wassh_kit.peer.ipv6:
            pytest.skip("this host has no IPv6 loopback")
        if wassh_kit.expects.ipv6:
            _echo(wassh_kit, socket.AF_INET6)
            return
        ep = wassh_kit.peer.endpoint(socket.AF_INET6)
        run = wassh_kit.run(ep, "connect", ep.host, str(ep.port))
        result = run.value("connect")
        expect_true(
            result != "OK" and result.startswith("E"),
            f"ipv6=False is declared, but a connect to [::1] gave {result!r}, not an errno",
            run,
        )

    def test_concurrent_connections(self, wassh_kit: Kit) -> None:
        """Sixteen connections open at once each carry their own bytes."""
        kit = wassh_kit
        ep, token = kit.peer.endpoint(), kit.token()
        run = kit.run(ep, "many", ep.host, str(ep.port), token, str(MANY))
        expect(run.value("ok"), f"{MANY} of {MANY}", "connections echoed correctly", run)
        for i in range(MANY):
            conn = kit.connection(f"{token}.{i}")
            expect(kit.ended(conn, run), "eof", f"how connection {i} ended at the peer", run)
            expect(conn.received, len(f"connection {i}\n"), f"bytes of connection {i}", run)

    def test_half_close(self, wassh_kit: Kit) -> None:
        """shutdown(SHUT_WR): the peer sees end of stream and the guest still reads
        (``half_close=False``: the peer sees nothing until close, the guest still
        reads; ``"ends-connection"``: the guest's reading ends too); a write after
        the shutdown fails with EPIPE in every case."""
        kit = wassh_kit
        ep, token = kit.peer.endpoint(), kit.token()
        run = kit.run(ep, "halfclose", ep.host, str(ep.port), token, "1500")
        expect(run.value("shutdown"), "OK", "shutdown(SHUT_WR)", run)
        expect(run.value("send-after-shutdown"), "EPIPE", "a send after SHUT_WR", run)
        if kit.expects.half_close == "ends-connection":
            echoed = run.value("echoed").split()
            expect(echoed[-1], "ok", "the part of the echo read after SHUT_WR", run)
            expect_true(
                "[eof after 1000]".startswith(run.value("after")[1:-1]),
                "after SHUT_WR the guest read something the peer did not send",
                run,
            )
            end = run.value("end")
            expect_true(
                end in ("eof", "ECONNRESET"),
                f'half_close="ends-connection" is declared, but reading ended with {end}',
                run,
            )
            conn = kit.connection(token)
            end = kit.ended(conn, run)  # "reset" when its echo met the closed tunnel
            expect_true(end in ("eof", "reset"), f"the peer saw {end!r}, not an end", run)
            expect(conn.received, 1000, "bytes the peer received", run)
            return
        expect(run.value("echoed"), "1000 ok", "the echo read after SHUT_WR", run)
        if kit.expects.half_close:
            expect(
                run.value("after"), "[[eof after 1000]]", "what the peer sent at end of stream", run
            )
            expect(run.value("end"), "eof", "how the guest's reading ended", run)
        else:
            expect(
                run.value("after"),
                "[]",
                "half_close=False is declared: the peer must not see end of stream "
                "before close, so it sends nothing after the echo",
                run,
            )
            expect(run.value("end"), "timeout", "the guest's reading (no EOF, no error)", run)
        conn = kit.connection(token)
        expect(kit.ended(conn, run), "eof", "how the peer saw the connection end", run)
        expect(conn.received, 1000, "bytes the peer received (none after SHUT_WR)", run)

    def test_nonblocking_connect(self, wassh_kit: Kit) -> None:
        """A non-blocking connect: EINPROGRESS (or at once), POLLOUT, SO_ERROR 0 and
        cleared, then the socket carries data."""
        kit = wassh_kit
        ep, token = kit.peer.endpoint(), kit.token()
        run = kit.run(ep, "nbconnect", ep.host, str(ep.port), token)
        connect = run.value("connect")
        expect_true(connect in ("OK", "EINPROGRESS"), f"connect gave {connect}", run)
        if connect == "EINPROGRESS":
            expect(run.value("poll"), "1 OUT", "poll(POLLOUT) after EINPROGRESS", run)
        expect(run.value("so_error"), "OK", "SO_ERROR once connected", run)
        expect(run.value("so_error-again"), "OK", "SO_ERROR read again", run)
        expect(run.value("echo"), "ok", "data after a non-blocking connect", run)
        expect(kit.ended(kit.connection(token), run), "eof", "the peer's view of the end", run)

    def test_nonblocking_connect_refused(self, wassh_kit: Kit) -> None:
        """A non-blocking connect to a port nothing listens on reports the declared
        ``refused`` errno: in SO_ERROR (then cleared), or at the first recv."""
        _nonblocking_failure(wassh_kit, wassh_kit.peer.refused, "refused")

    def test_connect_refused(self, wassh_kit: Kit) -> None:
        """A blocking connect to a port nothing listens on: the declared ``refused`` errno."""
        _blocking_failure(wassh_kit, wassh_kit.peer.refused, "refused")

    def test_connect_unreachable(self, wassh_kit: Kit) -> None:
        """A blocking connect to an unreachable address: the declared ``unreachable`` errno."""
        _blocking_failure(wassh_kit, wassh_kit.peer.unreachable, "unreachable")

    def test_options(self, wassh_kit: Kit) -> None:
        """Options set before connect are in effect after it; set on the live socket
        they read back; SO_TYPE, SO_ERROR; an unknown option is ENOPROTOOPT; the
        connection still carries data."""
        kit = wassh_kit
        ep, token = kit.peer.endpoint(), kit.token()
        run = kit.run(ep, "opts", ep.host, str(ep.port), token)
        expected = [
            "before TCP_NODELAY set 1 OK",
            "before SO_KEEPALIVE set 1 OK",
            "before TCP_NODELAY get 1",
            "connected TCP_NODELAY get 1",
            "connected SO_KEEPALIVE get 1",
        ]
        for name in ("TCP_NODELAY", "SO_KEEPALIVE", "SO_REUSEADDR"):
            expected += [
                f"live {name} set 0 OK",
                f"live {name} get 0",
                f"live {name} set 1 OK",
                f"live {name} get 1",
            ]
        expected += ["live IP_TOS set 16 OK", "live IP_TOS get 16"]
        lines = [line for line in run.lines if line.split()[0] in ("before", "connected", "live")]
        fixed = [line for line in lines if "SO_RCVBUF" not in line and "SO_SNDBUF" not in line]
        fixed = [line for line in fixed if "UNKNOWN" not in line]
        if fixed != expected:
            diff = [
                f"  expected {e!r}, got {a!r}"
                for e, a in zip(expected, fixed, strict=False)
                if e != a
            ]
            extra = len(fixed) - len(expected)
            raise _fail(
                "socket options do not read back what was set:\n"
                + "\n".join(diff)
                + (f"\n  {extra:+d} lines" if extra else ""),
                run,
            )
        for name in ("SO_RCVBUF", "SO_SNDBUF"):
            setting = [line for line in lines if line.startswith(f"live {name} set")]
            getting = [line for line in lines if line.startswith(f"live {name} get")]
            expect(len(setting) == 1 and len(getting) == 1, True, f"{name} lines", run)
            set_errno = setting[0].split()[-1]
            got = getting[0].split()[-1]
            if set_errno == "ENOPROTOOPT":
                expect(got, "ENOPROTOOPT", f"{name} get, when set said ENOPROTOOPT", run)
            else:
                expect(set_errno, "OK", f"{name} set 65536", run)
                expect_true(
                    got.isdigit() and int(got) > 0, f"{name} reads back {got}, not a size", run
                )
        expect(
            [line for line in lines if "UNKNOWN" in line],
            ["live UNKNOWN set 1 ENOPROTOOPT", "live UNKNOWN get ENOPROTOOPT"],
            "an option no one knows",
            run,
        )
        expect(run.value("so_type"), "SOCK_STREAM", "SO_TYPE", run)
        expect(run.value("so_error"), "OK", "SO_ERROR of a healthy connection", run)
        expect(run.value("echo"), "ok", "data after the options", run)

    def test_poll_readiness(self, wassh_kit: Kit) -> None:
        """poll: not readable while idle (a 300 ms timeout takes 0.25-5 s), writable,
        readable when data arrives and still after MSG_PEEK, not once drained,
        readable at the peer's close and after the EOF was read."""
        kit = wassh_kit
        ep, token = kit.peer.endpoint(), kit.token()
        run = kit.run(ep, "poll", ep.host, str(ep.port), token)
        expect(run.value("idle"), "0", "poll(POLLIN, 0) with nothing to read", run)
        idle = run.value("idle-300ms").split()
        expect(idle[0], "0", "poll(POLLIN, 300) with nothing to read", run)
        waited = int(idle[-1])
        expect_true(250 <= waited <= 5000, f"poll(POLLIN, 300) returned after {waited} ms", run)
        expect(run.value("writable"), "1 OUT", "poll(POLLOUT, 0) on a fresh connection", run)
        expect(run.value("readable"), "1 IN", "poll(POLLIN) once the echo is due", run)
        expect(run.value("after-peek"), "5 1 IN", "MSG_PEEK, then poll(POLLIN, 0)", run)
        expect(run.value("recv"), "ok", "the echoed line", run)
        expect(run.value("drained"), "0", "poll(POLLIN, 0) once drained", run)
        expect(run.value("bye"), "ok", "the peer's last line", run)
        closed = run.value("peer-closed").split()
        expect_true(
            closed[:1] == ["1"] and "IN" in closed,
            f"poll(POLLIN) after the peer closed gave {' '.join(closed)}, not 1 with IN",
            run,
        )
        expect(run.value("recv-at-end"), "EOF", "recv after the peer closed", run)
        after = run.value("after-eof").split()
        expect_true(
            after[:1] == ["1"] and "IN" in after,
            f"poll(POLLIN) after EOF was read gave {' '.join(after)}: EOF stays readable",
            run,
        )

    def test_large_transfer(self, wassh_kit: Kit) -> None:
        """16 MiB each way at once, every byte checked by the guest and the peer."""
        kit = wassh_kit
        ep, token = kit.peer.endpoint(), kit.token()
        run = kit.run(ep, "big", ep.host, str(ep.port), token, str(BIG))
        expect(run.value("sent"), f"{BIG} got {BIG} bad 0", "bytes sent, echoed and checked", run)
        conn = kit.connection(token)
        expect(kit.ended(conn, run), "eof", "the peer's view of the end", run)
        expect(conn.received, BIG, "bytes the peer received", run)
        expect(conn.digest.hexdigest(), pattern_digest(BIG), "SHA-256 at the peer", run)

    def test_download_until_peer_close(self, wassh_kit: Kit) -> None:
        """The peer sends 8 MiB and closes: every byte arrives, then end of stream."""
        kit = wassh_kit
        ep, token = kit.peer.endpoint(), kit.token()
        run = kit.run(ep, "download", ep.host, str(ep.port), token, str(DOWNLOAD))
        expect(run.value("got"), f"{DOWNLOAD} bad 0 end EOF", "bytes received, then EOF", run)
        conn = kit.connection(token)
        expect(conn.sent, DOWNLOAD, "bytes the peer sent", run)
        expect(kit.ended(conn, run), "eof", "the peer's view of the end", run)

    def test_upload_then_close(self, wassh_kit: Kit) -> None:
        """8 MiB sent, then close at once and exit: the peer still receives every byte."""
        kit = wassh_kit
        ep, token = kit.peer.endpoint(), kit.token()
        run = kit.run(ep, "upload", ep.host, str(ep.port), token, str(UPLOAD))
        expect(run.value("sent"), f"{UPLOAD} close OK", "bytes sent and close", run)
        conn = kit.connection(token)
        expect(kit.ended(conn, run), "eof", "the peer's view of the end", run)
        expect(conn.received, UPLOAD, "bytes the peer received", run)
        expect(conn.digest.hexdigest(), pattern_digest(UPLOAD), "SHA-256 at the peer", run)

    def test_peer_reset(self, wassh_kit: Kit) -> None:
        """The peer resets the connection: recv reports the declared ``reset`` errno."""
        kit = wassh_kit
        ep, token = kit.peer.endpoint(), kit.token()
        run = kit.run(ep, "reset", ep.host, str(ep.port), token)
        want = "EOF" if kit.expects.reset is None else _errname(kit.expects.reset)
        expect(run.value("poll"), f"1 recv {want}", "poll(POLLIN), then recv after a RST", run)

    def test_cancel_blocked_recv(self, wassh_kit: Kit) -> None:
        """A guest blocked in recv on a silent peer: cancelling wassh.run's scope ends
        it within 5 s and the peer sees the connection closed."""
        kit = wassh_kit
        ep, token = kit.peer.endpoint(), kit.token()

        async def ready(run: GuestRun) -> None:
            await run.wait_line("blocking")

        run, _ = run_case(
            _cancel_when_blocked, kit, ep, ["stall", ep.host, str(ep.port), token], ready
        )
        expect(run.values("recv"), [], "recv returned before the cancellation", run)
        conn = kit.connection(token)
        end = kit.ended(conn, run)
        expect_true(end in ("eof", "reset"), f"the peer saw {end!r}, not a close", run)

    def test_cancel_blocked_send(self, wassh_kit: Kit) -> None:
        """Sending to a peer that does not read blocks (``backpressure``; else 128 MiB
        go out freely); cancelling the sending guest ends it within 5 s, and the
        peer, reading again, sees the connection closed."""
        kit = wassh_kit
        ep, token = kit.peer.endpoint(), kit.token()
        argv = ["hold", ep.host, str(ep.port), token, str(HOLD_LIMIT)]

        async def ready(run: GuestRun) -> None:
            with trio.move_on_after(60):
                while not (run.values("full-after") or run.values("not-full-after")):
                    if run.code is not None:
                        break
                    await trio.sleep(0.02)

        try:
            run, _ = run_case(_cancel_when_blocked, kit, ep, argv, ready)
        finally:
            found = kit.peer.find(token)
            if found is not None:
                found.release()
        if kit.expects.backpressure:
            sent = int(run.value("full-after"))
            expect_true(0 < sent < HOLD_LIMIT, f"send blocked after {sent} bytes", run)
        else:
            sent = int(run.value("not-full-after"))
            expect_true(
                sent >= HOLD_LIMIT,
                f"backpressure=False is declared, but send blocked after {sent} bytes",
                run,
            )
        expect(run.values("send"), [], "send returned before the cancellation", run)
        conn = kit.connection(token)
        end = kit.ended(conn, run)
        expect_true(end in ("eof", "reset"), f"the peer saw {end!r}, not a close", run)


def _echo(kit: Kit, family: int) -> None:
    ep, token = kit.peer.endpoint(family), kit.token()
    run = kit.run(ep, "echo", ep.host, str(ep.port), token)
    expect(run.values("echo"), [f"{n} ok" for n in ECHO_SIZES], "echoed messages", run)
    expect(run.value("write-read"), "3 3 ok", "write() then read()", run)
    expect(run.value("writev"), "11 ok", "writev() of three pieces", run)
    expect(run.value("peek"), "5 5 readv 5 ok", "MSG_PEEK twice, then readv()", run)
    expect(run.value("peer"), f"{ep.host} {ep.port}", "getpeername: the address dialled", run)
    conn = kit.connection(token)
    if kit.expects.local_address:
        local = f"{conn.client[0]} {conn.client[1]}"
        expect(
            run.value("local"), local, "getsockname: where the peer saw the connection from", run
        )
    else:
        expect(
            run.value("local"),
            _unspecified(family),
            "getsockname (local_address=False: the unspecified address, port 0)",
            run,
        )
    expect(run.value("so_error"), "OK", "SO_ERROR", run)
    expect(run.value("sent"), str(ECHO_TOTAL), "bytes the guest sent", run)
    expect(run.value("close"), "OK", "close()", run)
    expect(kit.ended(conn, run), "eof", "the peer's view of the end", run)
    expect(conn.received, ECHO_TOTAL, "bytes the peer received", run)
    expect(conn.digest.hexdigest(), pattern_digest(ECHO_TOTAL), "SHA-256 at the peer", run)


def _blocking_failure(kit: Kit, ep: Endpoint, which: str) -> None:
    failure = getattr(kit.expects, which)
    run = kit.run(ep, "connect", ep.host, str(ep.port))
    if failure.reported_at == "connect":
        expect(run.value("connect"), failure.name, f"a blocking connect ({which})", run)
    else:
        expect(run.value("connect"), "OK", f"a blocking connect ({which}, reported at io)", run)
        expect(run.value("then"), f"poll 1 recv {failure.name}", f"the first recv ({which})", run)
    expect_true(run.seconds < 30, f"the failure took {run.seconds:.1f} s", run)


def _nonblocking_failure(kit: Kit, ep: Endpoint, which: str) -> None:
    failure = getattr(kit.expects, which)
    run = kit.run(ep, "nbconnect", ep.host, str(ep.port), "-")
    connect = run.value("connect")
    if failure.reported_at == "connect":
        if connect == failure.name:  # failed at once, as Linux may for loopback
            return
        expect(connect, "EINPROGRESS", f"a non-blocking connect ({which})", run)
        polled = run.value("poll").split()
        expect_true(
            polled[:1] == ["1"] and ("OUT" in polled or "ERR" in polled),
            f"poll(POLLOUT) on a failed connect gave {' '.join(polled)}, not 1 with OUT or ERR",
            run,
        )
        expect(run.value("so_error"), failure.name, "SO_ERROR after the failed connect", run)
        expect(run.value("so_error-again"), "OK", "SO_ERROR is cleared once read", run)
    else:
        expect_true(connect in ("OK", "EINPROGRESS"), f"connect gave {connect}", run)
        if connect == "EINPROGRESS":
            expect(run.value("poll"), "1 OUT", "poll(POLLOUT) (failure reported at io)", run)
        expect(run.value("so_error"), "OK", "SO_ERROR (failure reported at io)", run)
        expect(run.value("then"), f"poll 1 recv {failure.name}", f"the first recv ({which})", run)


# -------------------------------------------------------------------------------------------
# Listening (guest as server) cases
# -------------------------------------------------------------------------------------------


async def _client_exchange(
    family: int, host: str, port: int, payload: bytes
) -> tuple[bytes, tuple[str, int]]:
    """Connect, send ``payload`` while reading, half-close, read to EOF: (bytes, local name)."""
    stream = await trio.open_tcp_stream(host, port)
    local = stream.socket.getsockname()
    received = bytearray()
    async with stream:

        async def send() -> None:
            view = memoryview(payload)
            for i in range(0, len(view), 1 << 16):
                await stream.send_all(view[i : i + (1 << 16)])
            await stream.send_eof()

        async def receive() -> None:
            while True:
                data = await stream.receive_some(1 << 16)
                if not data:
                    return
                received.extend(data)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send)
            nursery.start_soon(receive)
    return bytes(received), (str(local[0]), int(local[1]))


class ListenConformance:
    """Conformance of a transport serving listening TCP sockets (the guest as server).

    Declare the transport as for ``StreamConformance``; the guest binds loopback.
    """

    transport: ClassVar[TransportUnderTest]

    def test_offer(self, wassh_kit: Kit) -> None:
        """The transport is available and chosen for a listening socket on loopback."""
        wassh_kit.check_offer(LISTEN, Endpoint("listen", "127.0.0.1", 0))

    def test_serve_echo_and_half_close(self, wassh_kit: Kit) -> None:
        """bind/listen/accept; 8 MiB echoed byte-exact; the host's SHUT_WR is the
        guest's EOF and the guest still writes after it; names on both ends agree."""
        _serve(wassh_kit, "127.0.0.1", socket.AF_INET)

    def test_serve_ipv6(self, wassh_kit: Kit) -> None:
        """The same on ``::1``."""
        import pytest

        if not wassh_kit.peer.ipv6:
            pytest.skip("this host has no IPv6 loopback")
        _serve(wassh_kit, "::1", socket.AF_INET6)

    def test_nonblocking_accept_many(self, wassh_kit: Kit) -> None:
        """A non-blocking listener: accept says EAGAIN and poll 0 while idle; eight
        clients at once are accepted (blocking sockets) and served through poll."""
        kit = wassh_kit
        clients = 8
        ep = Endpoint("listen", "127.0.0.1", 0)
        results: list[tuple[bytes, bytes]] = []

        async def main() -> GuestRun:
            run = kit.new_run("serve-many", ep.host, str(clients))
            async with trio.open_nursery() as nursery:
                nursery.start_soon(lambda: kit.arun(ep, *run.argv, state=run))
                port = int(await run.wait_line("port"))

                async def client(i: int) -> None:
                    payload = pattern(i * 7919, 20000 + i)
                    got, _ = await _client_exchange(socket.AF_INET, ep.host, port, payload)
                    results.append((payload, got))

                async with trio.open_nursery() as clients_nursery:
                    for i in range(clients):
                        clients_nursery.start_soon(client, i)
            return run

        run = run_case(main)
        expect(run.code, 0, "the guest's exit status", run)
        expect(run.value("accept-idle"), "EAGAIN", "accept on an idle non-blocking listener", run)
        expect(run.value("poll-idle"), "0", "poll(POLLIN, 0) on an idle listener", run)
        total = sum(len(p) for p, _ in results)
        expect(
            run.value("served"),
            f"{clients} bytes {total} accepted-blocking yes",
            "clients served",
            run,
        )
        for payload, got in results:
            expect(got == payload, True, f"the echo of a {len(payload)}-byte client", run)

    def test_bind_busy_port(self, wassh_kit: Kit) -> None:
        """Binding a port the host is listening on fails with EADDRINUSE."""
        kit = wassh_kit
        with socket.socket() as held:
            held.bind(("127.0.0.1", 0))
            held.listen(1)
            port = held.getsockname()[1]
            ep = Endpoint("listen", "127.0.0.1", port)
            run = kit.run(ep, "bind-busy", ep.host, str(port))
        expect(run.value("bind"), "EADDRINUSE", "bind to a busy port", run)

    def test_cancel_blocked_accept(self, wassh_kit: Kit) -> None:
        """A guest blocked in accept: cancelling ends it within 5 s and the port is
        closed (a connect is refused)."""
        kit = wassh_kit
        ep = Endpoint("listen", "127.0.0.1", 0)
        port = 0

        async def ready(run: GuestRun) -> None:
            nonlocal port
            port = int(await run.wait_line("port"))
            await run.wait_line("blocking")

        run, _ = run_case(_cancel_when_blocked, kit, ep, ["serve-stall", ep.host], ready)
        expect(run.values("accept"), [], "accept returned before the cancellation", run)
        with socket.socket() as probe:
            probe.settimeout(CLOSE_BOUND)
            code = probe.connect_ex(("127.0.0.1", port))
        expect(_errname(code), "ECONNREFUSED", "a connect to the cancelled guest's port", run)

    def test_cancel_blocked_recv(self, wassh_kit: Kit) -> None:
        """A guest blocked in recv on an accepted connection: cancelling ends it within
        5 s and the client sees the connection closed."""
        kit = wassh_kit
        ep = Endpoint("listen", "127.0.0.1", 0)
        client = socket.socket()

        async def ready(run: GuestRun) -> None:
            port = int(await run.wait_line("port"))
            await _in_thread(lambda: client.connect(("127.0.0.1", port)))
            await run.wait_line("local")

        try:
            run, _ = run_case(_cancel_when_blocked, kit, ep, ["serve", ep.host], ready)
            client.settimeout(CLOSE_BOUND)
            try:
                end = "EOF" if client.recv(1) == b"" else "data"
            except ConnectionResetError:
                end = "reset"
            except TimeoutError:
                end = "nothing"
        finally:
            client.close()
        expect_true(end in ("EOF", "reset"), f"the client saw {end}, not a close", run)


def _serve(kit: Kit, host: str, family: int) -> None:
    ep = Endpoint("listen", host, 0)
    payload = pattern(0, SERVE_BIG)

    async def main() -> tuple[GuestRun, bytes, tuple[str, int], int]:
        run = kit.new_run("serve", host)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: kit.arun(ep, *run.argv, state=run))
            port = int(await run.wait_line("port"))
            got, local = await _client_exchange(family, host, port, payload)
        return run, got, local, port

    run, got, local, port = run_case(main)
    expect(run.code, 0, "the guest's exit status", run)
    trailer = f"[eof after {SERVE_BIG}]".encode()
    expect(len(got), SERVE_BIG + len(trailer), "bytes the client received", run)
    expect(got[:SERVE_BIG] == payload, True, "the echo is byte-exact", run)
    expect(got[SERVE_BIG:], trailer, "what the guest wrote after the client's SHUT_WR", run)
    expect(run.value("accepted"), f"{local[0]} {local[1]}", "accept()'s peer address", run)
    expect(run.value("peer"), f"{local[0]} {local[1]}", "getpeername on the accepted socket", run)
    expect(run.value("local"), f"{host} {port}", "getsockname on the accepted socket", run)
    expect(run.value("served"), f"{SERVE_BIG} end EOF close OK", "the guest's account", run)


# -------------------------------------------------------------------------------------------
# Datagram cases
# -------------------------------------------------------------------------------------------


class DatagramConformance:
    """Conformance of a transport serving UDP sockets (client and server shapes)."""

    transport: ClassVar[TransportUnderTest]

    def test_offer(self, wassh_kit: Kit) -> None:
        """The transport is available and chosen for a datagram socket."""
        wassh_kit.check_offer(DGRAM, wassh_kit.udp.endpoint())

    def test_udp_serve(self, wassh_kit: Kit) -> None:
        """A bound guest echoes datagrams of 0 to 65507 bytes with recvfrom/sendto;
        each reply is whole, byte-exact and from the guest's port."""
        _udp_serve(wassh_kit, "127.0.0.1", socket.AF_INET)

    def test_udp_serve_ipv6(self, wassh_kit: Kit) -> None:
        """The same on ``::1``."""
        import pytest

        if not wassh_kit.peer.ipv6:
            pytest.skip("this host has no IPv6 loopback")
        _udp_serve(wassh_kit, "::1", socket.AF_INET6)

    def test_udp_client(self, wassh_kit: Kit) -> None:
        """The first sendto binds; poll readiness; MSG_PEEK; the source address;
        truncation (MSG_TRUNC, the rest dropped); an empty datagram; connect, then
        send/recv and write/read."""
        kit = wassh_kit
        ep = kit.udp.endpoint()
        run = kit.run(ep, "udp-client", ep.host, str(ep.port))
        where = f"{ep.host} {ep.port}"
        expected = [
            "unbound-local 0.0.0.0 0",
            "sendto 3",
            "auto-bound yes",
            "readable 1 IN",
            f"peek 3 recvfrom 3 one from {where}",
            "idle 0",
            "truncated OK 10 ok TRUNCATED",
            "then 4 next",
            "empty 0 0",
            "connect OK",
            f"peer {where}",
            "send 3 recv 3 two",
            "write 5 read 5 three",
            "drained 0",
        ]
        # Not the transport's: the core answers for a socket no transport has yet
        # (unbound-poll), and the SDK's recvmsg flags (recvmsg).
        lines = [ln for ln in run.lines if ln.split()[0] not in ("unbound-poll", "recvmsg")]
        for want, got in zip(expected, lines, strict=False):
            expect(got, want, "the datagram client's account", run)
        expect(len(lines), len(expected), "lines the datagram client printed", run)

    def test_udp_connected_refused(self, wassh_kit: Kit) -> None:
        """A connected UDP socket that sent to a closed port: recv reports the declared
        ``udp_refused`` errno (``None``: nothing, recv would block)."""
        kit = wassh_kit
        ep = kit.udp.refused()
        run = kit.run(ep, "udp-refused", ep.host, str(ep.port))
        expect(run.value("connect"), "OK", "connect() of a UDP socket", run)
        expect(run.value("send"), "OK", "send() to a closed port", run)
        refused = kit.expects.udp_refused
        if refused is None:
            expect(run.value("then"), "0 recv EAGAIN", "poll and recv (nothing reported)", run)
        else:
            then = run.value("then").split()
            expect(then[-1], _errname(refused), "recv after the port was found closed", run)

    def test_cancel_blocked_recvfrom(self, wassh_kit: Kit) -> None:
        """A guest blocked in recvfrom: cancelling ends it within 5 s and its port is
        free again (the host binds it)."""
        kit = wassh_kit
        ep = Endpoint("listen", "127.0.0.1", 0)
        port = 0

        async def ready(run: GuestRun) -> None:
            nonlocal port
            port = int(await run.wait_line("port"))
            await run.wait_line("blocking")

        run, _ = run_case(_cancel_when_blocked, kit, ep, ["udp-stall", ep.host], ready)
        expect(run.values("recvfrom"), [], "recvfrom returned before the cancellation", run)
        deadline = time.monotonic() + CLOSE_BOUND
        while True:
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                    probe.bind(("127.0.0.1", port))
                break
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise _fail(
                        f"the cancelled guest's UDP port is still bound: {exc}", run
                    ) from None
                time.sleep(0.05)


def _udp_serve(kit: Kit, host: str, family: int) -> None:
    ep = Endpoint("listen", host, 0)

    async def main() -> tuple[GuestRun, list[tuple[bytes, bytes, Any]], tuple[str, int], int]:
        run = kit.new_run("udp-serve", host, str(len(UDP_SIZES)))
        exchanged: list[tuple[bytes, bytes, Any]] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: kit.arun(ep, *run.argv, state=run))
            port = int(await run.wait_line("port"))
            sock = trio.socket.socket(family, socket.SOCK_DGRAM)
            with sock:
                await sock.bind((host, 0))
                local = sock.getsockname()
                for i, size in enumerate(UDP_SIZES):
                    payload = pattern(i * 1000, size)
                    await sock.sendto(payload, (host, port))
                    with trio.fail_after(5):
                        data, source = await sock.recvfrom(1 << 17)
                    exchanged.append((payload, data, source))
        return run, exchanged, (str(local[0]), int(local[1])), port

    run, exchanged, local, port = run_case(main)
    expect(run.code, 0, "the guest's exit status", run)
    for payload, data, source in exchanged:
        expect(len(data), len(payload), "the echoed datagram's length", run)
        expect(data == payload, True, f"the {len(payload)}-byte datagram is byte-exact", run)
        expect((source[0], source[1]), (host, port), "the reply's source address", run)
    expect(
        run.values("from"),
        [f"{local[0]} {local[1]} len {n}" for n in UDP_SIZES],
        "recvfrom's source and length for each datagram",
        run,
    )
