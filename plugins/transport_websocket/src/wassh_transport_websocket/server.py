"""``wassh relay``: a WebSocket relay server (trio + websockets Sans-I/O).

Endpoints on one port:

* ``/v4/connect?host=H&port=P[&dstUsername=U]`` and ``/v4/reconnect?sid=S&ack=A``:
  corp-relay-v4 (subprotocol ``ssh``, tagged commands, 64-bit acks, sessions
  that survive a dropped WebSocket; ``server_v4``).
* any other path: websockify-style, raw bytes in binary messages, to the fixed
  ``--target`` or to ``?host=H&port=P`` (``server_websockify``).
* ``GET /healthz`` without an upgrade: 200, for a load balancer's health
  checks (no token needed, nothing logged).

Several relays can share one address behind a load balancer: each has an
``--instance-id`` that starts its session ids, the balancer sends
``/v4/reconnect`` by that prefix, and a relay refuses another instance's
session (410).

The parts: ``server_config`` (command line, access rules), ``server_auth``
(bearer tokens), ``server_destinations`` (allow/deny rules in the core's
policy grammar, resolving, connecting to checked addresses), ``server_http``
(reading and validating the upgrade request), ``server_limits`` (sessions,
handshakes, idle time), ``server_log`` (JSON lines). This module accepts
connections, routes them, and handles SIGHUP (reload) and SIGTERM (stop).
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import logging
import os
import signal
import socket
import ssl
import sys
import time
from pathlib import Path
from typing import Any

import trio
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol

from . import v4
from .server_auth import AuthError, authenticate
from .server_config import Access, AccessError, ServerConfig, config_from_args, load_access
from .server_destinations import Refused, Unreachable
from .server_http import (
    HEALTH_PATH,
    BadRequest,
    HandshakeFailed,
    Route,
    logged_path,
    parse_route,
    read_request,
    redact_queries,
)
from .server_limits import LimitReached, Limits, client_key, fd_limit, fds_needed
from .server_log import JsonLog, fingerprint, route_library_logs
from .server_v4 import (
    CLOSE_WAIT,
    NET_ERRORS,
    Session,
    SessionSettings,
    new_sid,
    sid_instance,
    sid_key,
)
from .server_websockify import WebsockifyLink
from .wsconn import WebSocket

# accept(2) errors that mean "out of resources for now", not "broken listener"
_ACCEPT_CAPACITY_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
_ACCEPT_RETRY = 0.1
SHUTDOWN_GRACE = CLOSE_WAIT + 1.0
_WS_LOGGER = "wassh.relay.server"


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _where(exc: BaseException) -> str:
    """The innermost frame of an unexpected exception: enough to find the bug."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return ""
    return f"{Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def sd_notify(message: str) -> None:
    """Tell systemd (``Type=notify``) where the relay is; nothing without ``NOTIFY_SOCKET``."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]  # an abstract socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(path)
            sock.sendall(message.encode())
    except OSError:
        pass


class RelayServer:
    def __init__(
        self,
        config: ServerConfig,
        access: Access,
        log: JsonLog,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config
        self.access = access
        self.log = log
        self.tls = tls
        self.limits = Limits(config.max_sessions, config.max_sessions_per_client)
        self.sessions: dict[bytes, Session] = {}
        self.links: set[WebsockifyLink] = set()
        self.nursery: trio.Nursery | None = None
        self.port = 0
        self.stopping = False
        self.drained = trio.Event()
        self._accepting = trio.CancelScope()
        self._handshaking: set[trio.CancelScope] = set()
        self.session_settings = SessionSettings(
            config.replay_buffer, config.resume_timeout, config.idle_timeout
        )

    # -- accepting ------------------------------------------------------------------------
    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        cfg = self.config
        every = cfg.host in ("", "*")  # IPv4 and IPv6, a socket each
        listeners: list[Any] = list(
            await trio.open_tcp_listeners(cfg.port, host=None if every else cfg.host)
        )
        self.port = listeners[0].socket.getsockname()[1]
        if self.tls is not None:
            listeners = [
                trio.SSLListener(lst, self.tls, https_compatible=True) for lst in listeners
            ]
        try:
            async with trio.open_nursery() as handlers:
                self.nursery = handlers
                with self._accepting:
                    async with trio.open_nursery() as acceptors:
                        for listener in listeners:
                            acceptors.start_soon(self._accept_loop, listener, handlers)
                        self._log_listening()
                        task_status.started(self.port)
                # Not accepting any more: close the sockets so clients are refused, not queued.
                for listener in listeners:
                    await trio.aclose_forcefully(listener)
        finally:
            for listener in listeners:
                await trio.aclose_forcefully(listener)
            self.drained.set()

    async def _accept_loop(self, listener: Any, handlers: trio.Nursery) -> None:
        paused_since: float | None = None
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno not in _ACCEPT_CAPACITY_ERRNOS:
                    raise
                # Out of descriptors: wait for sessions to end, then accept again.
                if paused_since is None:
                    paused_since = trio.current_time()
                    self.log.error(
                        "accept_paused", error=os.strerror(exc.errno), **self.limits.describe()
                    )
                await trio.sleep(_ACCEPT_RETRY)
                continue
            if paused_since is not None:
                self.log.warning(
                    "accept_resumed", paused=round(trio.current_time() - paused_since, 3)
                )
                paused_since = None
            handlers.start_soon(self.handle, stream)

    def _log_listening(self) -> None:
        cfg, access = self.config, self.access
        limit = fd_limit()
        self.log.info(
            "listening",
            instance=cfg.instance_id,
            host=cfg.host,
            port=self.port,
            tls=self.tls is not None,
            auth=access.tokens.required,
            tokens=len(access.tokens),
            allow=[str(r) for r in access.destinations.allow],
            deny=[str(r) for r in access.destinations.deny],
            max_sessions=cfg.max_sessions,
            max_sessions_per_client=cfg.max_sessions_per_client,
            idle_timeout=cfg.idle_timeout,
            resume_timeout=cfg.resume_timeout,
            fd_limit=limit,
        )
        if not access.destinations.allow:
            self.log.warning(
                "config_warning", message="no --allow rule: every destination is refused"
            )
        if not access.tokens.required and not _is_loopback(cfg.host):
            self.log.warning(
                "config_warning",
                message=f"no tokens: anyone who reaches {_hostport(cfg.host, self.port)} "
                "can use the relay",
            )
        if cfg.token is not None:
            self.log.warning(
                "config_warning",
                message="--token is visible in ps: prefer --token-file or $WASSH_RELAY_TOKENS",
            )
        if limit is not None and fds_needed(cfg.max_sessions) > limit:
            self.log.warning(
                "config_warning",
                message=f"--max-sessions {cfg.max_sessions} may need "
                f"{fds_needed(cfg.max_sessions)} descriptors, the limit is {limit}: "
                "accepting pauses when they run out",
            )

    # -- one connection -------------------------------------------------------------------
    def _peer(self, stream: trio.abc.Stream) -> tuple[str, str]:
        sock_stream = stream.transport_stream if isinstance(stream, trio.SSLStream) else stream
        if not isinstance(sock_stream, trio.SocketStream):
            return "?", "?"
        try:
            address = sock_stream.socket.getpeername()
            sock_stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            return "?", "?"
        host, port = str(address[0]), int(address[1])
        return _hostport(host, port), client_key(host)

    def _internal_error(self, peer: str, exc: BaseException) -> None:
        # one line, the error and where it happened; a query (a session id) never
        error = redact_queries(f"{type(exc).__name__}: {exc}")
        self.log.error("internal_error", peer=peer, error=error, where=_where(exc))

    async def handle(self, stream: trio.abc.Stream) -> None:
        peer, client = self._peer(stream)
        route: Route | None = None
        ws: WebSocket | None = None
        try:
            try:
                slot = self.limits.handshakes.take(client)
            except LimitReached as exc:
                self.log.throttled(
                    f"refused:{client}",
                    "warning",
                    "connection_refused",
                    peer=peer,
                    reason=exc.reason,
                )
                return
            scope = trio.CancelScope()
            self._handshaking.add(scope)
            opened = None
            try:
                with scope:
                    opened = await self._handshake(stream, peer, client)
            finally:
                self._handshaking.discard(scope)
                slot.release()
            if opened is None:
                return
            ws, route = opened
            if self.stopping:
                await ws.send_close(1001, "relay shutting down")
            elif route.kind == "v4-connect":
                await self._v4_connect(ws, route, peer)
            elif route.kind == "v4-reconnect":
                await self._v4_reconnect(ws, route, peer)
            else:
                await self._websockify(ws, route, peer)
        except Exception as exc:  # one bad client must not stop the server
            self._internal_error(peer, exc)
        finally:
            if route is not None and route.slot is not None:
                route.slot.release()
            try:
                if ws is not None:
                    await ws.aclose()  # what is queued goes first: the answer to a close frame
            finally:
                await trio.aclose_forcefully(stream)

    async def _handshake(
        self, stream: trio.abc.Stream, peer: str, client: str
    ) -> tuple[WebSocket, Route] | None:
        proto = ServerProtocol(
            max_size=self.config.max_message, logger=logging.getLogger(_WS_LOGGER)
        )
        ws = WebSocket(stream, proto, max_size=self.config.max_message)
        try:
            request = await read_request(ws, self.config.handshake_timeout)
        except HandshakeFailed as exc:
            self.log.throttled(
                f"handshake:{client}", "info", "handshake_failed", peer=peer, reason=str(exc)
            )
            return None
        response, route = self._decide(proto, request, peer, client)
        proto.send_response(response)
        answered = False
        try:
            await ws._flush()
            answered = True
        except NET_ERRORS:
            pass
        finally:  # cancelled (shutdown) or the client left: the session slot goes back
            if not answered and route is not None and route.slot is not None:
                route.slot.release()
        if not answered or route is None:
            return None
        ws.subprotocol = proto.subprotocol
        return ws, route

    def _reject(self, proto: ServerProtocol, status: int, reason: str) -> Response:
        response = proto.reject(status, reason + "\n")
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="wassh relay"'
        elif status in (429, 503):
            response.headers["Retry-After"] = "5"
        return response

    def _log_rejected(self, client: str, peer: str, path: str, status: int, reason: str) -> None:
        self.log.throttled(
            f"rejected:{client}",
            "warning",
            "rejected",
            peer=peer,
            path=path,
            status=status,
            reason=reason,
        )

    def _decide(
        self, proto: ServerProtocol, request: Request, peer: str, client: str
    ) -> tuple[Response, Route | None]:
        """The answer to an upgrade request and, when it is a 101, what it opens."""
        path = logged_path(request.path)
        if path == HEALTH_PATH and "Upgrade" not in request.headers:
            # Balancers ask every few seconds and carry no token: a log line each
            # time would drown the rest, and "alive" is no secret. A stopping relay
            # has closed its listeners, which is answer enough.
            return self._reject(proto, 200, "ok"), None
        try:
            credential = authenticate(self.access.tokens, request.headers)
        except AuthError as exc:
            if exc.status == 401:
                self.log.throttled(
                    f"auth:{client}",
                    "warning",
                    "auth_failed",
                    peer=peer,
                    path=path,
                    reason=exc.reason,
                )
            else:
                self._log_rejected(client, peer, path, exc.status, exc.reason)
            return self._reject(proto, exc.status, exc.reason), None
        try:
            route = parse_route(request, self.config.target)
        except BadRequest as exc:
            self._log_rejected(client, peer, path, exc.status, exc.reason)
            return self._reject(proto, exc.status, exc.reason), None
        except Exception as exc:  # a bug, but the client still gets an answer
            self._internal_error(peer, exc)
            return self._reject(proto, 400, "bad request"), None
        route.credential = credential
        if route.kind == "v4-reconnect":
            instance = sid_instance(route.sid)
            why = ""
            if instance != self.config.instance_id:
                # A balancer sent another relay's session here (a routing rule is
                # missing, or that relay is down): it cannot be resumed here.
                why = "the session belongs to another instance"
            else:
                session = self.sessions.get(sid_key(route.sid))
                if session is None or session.ended.is_set():
                    why = "unknown session"
                elif not session.owner.same_as(credential):
                    why = "the session belongs to another token"
            if why:
                # One answer for all, so a token holder learns nothing about other sessions.
                # The instance part is routing information, public; the rest is the secret.
                self.log.warning(
                    "v4_reconnect_refused",
                    peer=peer,
                    session=fingerprint(route.sid),
                    instance=instance,
                    reason=why,
                )
                return self._reject(proto, 410, "no such session"), None
        else:
            try:
                route.slot = self.limits.sessions.take(client)
            except LimitReached as exc:
                self.log.throttled(
                    f"limit:{client}",
                    "warning",
                    "limit",
                    peer=peer,
                    status=exc.status,
                    reason=exc.reason,
                    **self.limits.describe(),
                )
                return self._reject(proto, exc.status, exc.reason), None
        response = proto.accept(request)
        if response.status_code != 101:
            if route.slot is not None:
                route.slot.release()
            reason = (response.body or b"").decode(errors="replace").strip()[:200]
            self.log.throttled(
                f"rejected:{client}",
                "info",
                "rejected",
                peer=peer,
                path=path,
                status=response.status_code,
                reason=reason,
            )
            return response, None
        if route.subprotocol is not None:
            response.headers["Sec-WebSocket-Protocol"] = route.subprotocol
            proto.subprotocol = route.subprotocol  # type: ignore[assignment]
        extensions = ["eof"] if route.eof_ext else []
        data = self.config.max_message - 6  # any DATA the WebSocket's message limit lets through
        if route.data_ext and data > v4.MAX_CLIENT_DATA:
            extensions.append(f"data={data}")
        if extensions:
            response.headers[v4.EXT_HEADER] = ", ".join(extensions)
        return response, route

    # -- destinations ---------------------------------------------------------------------
    async def _open_target(
        self, ws: WebSocket, route: Route, peer: str
    ) -> tuple[trio.SocketStream, str] | None:
        destinations = self.access.destinations
        try:
            target, address = await destinations.open(
                route.host, route.port, self.config.connect_timeout
            )
            return target, str(address)
        except Refused as exc:
            self.log.warning(
                "refused",
                peer=peer,
                host=route.host,
                port=route.port,
                reason="destination not allowed",
                rule=exc.rule,
                **({"address": str(exc.address)} if exc.address is not None else {}),
            )
            await self._close_refused(ws, "destination not allowed")
        except Unreachable as exc:
            self.log.warning(
                "target_failed", peer=peer, host=route.host, port=route.port, error=str(exc)
            )
            await self._close_refused(ws, "Failed to connect to downstream server")
        return None

    async def _close_refused(self, ws: WebSocket, reason: str) -> None:
        # websockify's way: the handshake succeeded, then close 1011 with the reason
        await ws.send_close(1011, reason)
        await ws.wait_closed(CLOSE_WAIT)

    # -- the endpoints --------------------------------------------------------------------
    async def _v4_connect(self, ws: WebSocket, route: Route, peer: str) -> None:
        opened = await self._open_target(ws, route, peer)
        if opened is None:
            return
        target, address = opened
        assert route.slot is not None and self.nursery is not None
        sid = new_sid(self.config.instance_id)
        session = Session(
            sid,
            target,
            _hostport(route.host, route.port),
            owner=route.credential,
            slot=route.slot,
            settings=self.session_settings,
            log=self.log,
            registry=self.sessions,
        )
        route.slot = None  # the session gives it back when it ends
        self.nursery.start_soon(session.run)
        self.log.info(
            "v4_connect",
            peer=peer,
            session=session.tag,
            host=route.host,
            port=route.port,
            address=address,
            user=route.user,
            **({"token": route.credential.name} if route.credential.name else {}),
        )
        try:
            await ws.send_binary(v4.connect_success(sid))
        except trio.BrokenResourceError:
            return  # detached from the start: the client may still resume
        await session.attach(ws, None)

    async def _v4_reconnect(self, ws: WebSocket, route: Route, peer: str) -> None:
        session = self.sessions.get(sid_key(route.sid))
        if session is None or session.ended.is_set():
            await ws.send_close(1011, "session ended")
            return
        self.log.info("v4_reconnect", peer=peer, session=session.tag, ack=route.ack)
        await session.attach(ws, route.ack)

    async def _websockify(self, ws: WebSocket, route: Route, peer: str) -> None:
        opened = await self._open_target(ws, route, peer)
        if opened is None:
            return
        target, address = opened
        link = WebsockifyLink(ws, target, self.config.idle_timeout)
        self.links.add(link)
        started = trio.current_time()
        self.log.info(
            "websockify_connect",
            peer=peer,
            host=route.host,
            port=route.port,
            address=address,
            **({"token": route.credential.name} if route.credential.name else {}),
        )
        try:
            await link.run()
        finally:
            self.links.discard(link)
            self.log.write(
                "warning" if ws.end == "malformed" else "info",
                "websockify_end",
                {
                    "peer": peer,
                    "host": route.host,
                    "port": route.port,
                    "to_target": link.to_target,
                    "to_client": link.to_client,
                    "seconds": round(trio.current_time() - started, 3),
                    "reason": link.reason or "ended",
                },
            )

    # -- reload and stop ------------------------------------------------------------------
    def reload(self) -> None:
        """SIGHUP: reread token and pattern files, reopen the log; sessions carry on."""
        try:
            access = load_access(self.config)
        except AccessError as exc:
            self.log.error("reload_failed", error=str(exc))
            return
        try:
            self.log.reopen()
        except OSError as exc:
            self.log.error("reload_failed", error=f"cannot reopen --log: {exc.strerror or exc}")
            return
        self.access = access
        self.log.info(
            "reloaded",
            tokens=len(access.tokens),
            allow=[str(r) for r in access.destinations.allow],
            deny=[str(r) for r in access.destinations.deny],
            **self.limits.describe(),
        )

    def shutdown(self, why: str) -> None:
        """Stop accepting; close every session and connection with 1001."""
        self.stopping = True
        self.log.info("stopping", signal=why, **self.limits.describe())
        self._accepting.cancel()
        for scope in list(self._handshaking):
            scope.cancel()
        for link in list(self.links):
            link.stop(1001, "relay shutting down")
        for session in list(self.sessions.values()):
            session.end("relay shutting down", 1001)

    async def run(self) -> None:
        """Serve until SIGTERM or SIGINT; SIGHUP reloads."""
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.serve)
                sd_notify("READY=1")
                async for signum in signals:
                    name = signal.Signals(signum).name
                    if signum == signal.SIGHUP:
                        sd_notify(f"RELOADING=1\nMONOTONIC_USEC={time.monotonic_ns() // 1000}")
                        self.reload()
                        sd_notify("READY=1")
                        continue
                    sd_notify("STOPPING=1")
                    self.shutdown(name)
                    with trio.move_on_after(SHUTDOWN_GRACE):
                        await self.drained.wait()
                    nursery.cancel_scope.cancel()
                    self.log.info("stopped", signal=name)
                    return


def tls_context(config: ServerConfig) -> ssl.SSLContext | None:
    if not config.tls_cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(config.tls_cert, config.tls_key)
    return ctx


# glibc's mallopt parameters
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory() -> None:
    """Have glibc keep freed memory (up to 64 MiB) for the next allocation.

    A relay moving bytes allocates and frees a block the size of a WebSocket
    message or more for every message. By default glibc maps such blocks fresh
    (above its mmap threshold) or hands freed memory back to the kernel (above its
    trim threshold), so every message costs page faults on memory just freed: a
    fifth of the relay's CPU time at 256 KiB messages. Elsewhere (no glibc) nothing
    changes.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, 8 << 20)
    mallopt(_M_TRIM_THRESHOLD, 64 << 20)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``wassh relay``."""
    config, access = config_from_args(sys.argv[1:] if argv is None else argv)
    try:
        tls = tls_context(config)
    except (OSError, ssl.SSLError) as exc:
        sys.stderr.write(f"wassh: --tls-cert/--tls-key: {getattr(exc, 'strerror', None) or exc}\n")
        return 2
    try:
        log = JsonLog(config.log)
    except OSError as exc:
        sys.stderr.write(f"wassh: cannot open --log {config.log}: {exc.strerror or exc}\n")
        return 2
    route_library_logs(log, _WS_LOGGER, "trio")
    keep_freed_memory()
    server = RelayServer(config, access, log, tls)
    failures: list[BaseException] = []
    try:
        trio.run(server.run)
    except* OSError as group:  # the port is taken, the address is not ours...
        failures.extend(group.exceptions)
    for failure in failures:
        log.error("error", error=str(failure))
        if config.log:
            sys.stderr.write(f"wassh relay: {failure}\n")
    log.close()
    return 1 if failures else 0


__all__ = ["RelayServer", "ServerConfig", "main", "tls_context"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
