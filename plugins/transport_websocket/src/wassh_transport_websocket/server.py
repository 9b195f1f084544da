"""``wassh relay``: a WebSocket relay server (trio + websockets Sans-I/O).

Endpoints on one port:

* ``/v4/connect?host=H&port=P[&dstUsername=U]`` and ``/v4/reconnect?sid=S&ack=A``:
  corp-relay-v4 (subprotocol ``ssh``, tagged commands, 64-bit acks). Sessions
  outlive their WebSocket: after an unclean drop the target connection stays
  up for ``--resume-timeout`` seconds, the bytes the client has not
  acknowledged stay in a bounded replay buffer (``--replay-buffer``), and a
  reconnect resumes both directions exactly where they were.
* any other path: websockify-style, raw bytes in binary messages, to the fixed
  ``--target`` or to ``?host=H&port=P``.

Destinations must match an ``--allow HOST:PORT`` glob (none given: nothing is
allowed); names are resolved here (``--add-host NAME=ADDRESS`` overrides), so
clients send names. With ``--token`` every request needs
``Authorization: Bearer TOKEN``. Logs are JSON lines on stderr (or ``--log``).
"""

from __future__ import annotations

import argparse
import fnmatch
import hmac
import json
import secrets
import ssl
import sys
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import trio
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol

from . import v4
from .wsconn import WebSocket, accept

SERVER_CHUNK = 65536
# Client bytes queued for the target. The relay acknowledges bytes only once they
# are written to the target, so a client's send window bounds this queue; the cap
# only stops clients that do not wait for acks.
TARGET_QUEUE_MAX = 8 << 20


# ---------------------------------------------------------------------------------------
# configuration and logs
# ---------------------------------------------------------------------------------------


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8022
    allow: list[str] = field(default_factory=list)
    token: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    target: tuple[str, int] | None = None
    hosts: dict[str, str] = field(default_factory=dict)
    replay_buffer: int = 4 << 20
    resume_timeout: float = 60.0
    connect_timeout: float = 10.0
    max_message: int = 1 << 20


class JsonLog:
    """One JSON object per line: ``{"ts": ..., "event": ..., ...}``."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def __call__(self, event: str, **fields: Any) -> None:
        record = {"ts": round(time.time(), 3), "event": event, **fields}
        try:
            self.out.write(json.dumps(record, default=str) + "\n")
            self.out.flush()
        except (OSError, ValueError):
            pass


def parse_hostport(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{what} {text!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def allowed(patterns: Sequence[str], host: str, port: int) -> bool:
    """``HOST:PORT`` globs; the host part is matched case-insensitively."""
    host = host.lower()
    for pattern in patterns:
        phost, sep, pport = pattern.rpartition(":")
        if not sep:
            phost, pport = pattern, "*"
        phost = phost.strip("[]").lower()
        if fnmatch.fnmatchcase(host, phost) and fnmatch.fnmatchcase(str(port), pport):
            return True
    return False


# ---------------------------------------------------------------------------------------
# corp-relay-v4 sessions
# ---------------------------------------------------------------------------------------


class Session:
    """One v4 session: the target connection and the state that survives reconnects."""

    def __init__(self, server: RelayServer, sid: str, target: trio.abc.Stream, dest: str) -> None:
        self.server = server
        self.sid = sid
        self.target = target
        self.dest = dest
        self.in_count = 0  # client bytes accepted (what RECONNECT_SUCCESS reports)
        self.written = 0  # client bytes written to the target (what ACK reports)
        self.to_target = bytearray()
        self.out_buf = bytearray()  # server->client bytes the client has not acknowledged
        self.out_base = 0  # absolute position of out_buf[0]
        self.target_eof = False
        self.target_error = ""
        self.client_done = False  # the client closed the session cleanly
        self.client_eof_at: int | None = None  # wassh extension: the client shut down writing
        self.target_shut = False
        self.ended = trio.Event()
        self._changed = trio.Event()  # wakes writers: data, acks, end
        self._attach_scope: trio.CancelScope | None = None
        self._attach_done: trio.Event | None = None
        self.detached_at: float | None = trio.current_time()
        self.reconnects = 0

    def _poke(self) -> None:
        ev, self._changed = self._changed, trio.Event()
        ev.set()

    async def _wait(self) -> None:
        await self._changed.wait()

    # -- session lifetime tasks -----------------------------------------------------------
    async def run(self) -> None:
        log = self.server.log
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._target_reader)
                nursery.start_soon(self._target_writer)
                nursery.start_soon(self._expiry)
                await self.ended.wait()
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(self.target)
            self.server.sessions.pop(self.sid, None)
            log(
                "v4_session_end",
                sid=self.sid,
                dest=self.dest,
                to_target=self.in_count,
                to_client=self.out_base + len(self.out_buf),
                reconnects=self.reconnects,
                reason=self.target_error
                or ("client closed" if self.client_done else "")
                or ("target closed" if self.target_eof else "ended"),
            )

    async def _target_reader(self) -> None:
        limit = self.server.config.replay_buffer
        while True:
            while len(self.out_buf) >= limit:
                await self._wait()
            try:
                data = await self.target.receive_some(SERVER_CHUNK)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                self.target_error = f"target error: {exc}"
                data = b""
            if not data:
                self.target_eof = True
                self._poke()
                return
            self.out_buf += data
            self._poke()

    async def _target_writer(self) -> None:
        while True:
            while not self.to_target:
                eof_due = self.client_eof_at is not None and self.written >= self.client_eof_at
                if eof_due and not self.target_shut:
                    self.target_shut = True
                    if isinstance(self.target, trio.abc.HalfCloseableStream):
                        try:
                            await self.target.send_eof()
                        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                            pass
                if self.client_done:
                    if not self.target_shut and isinstance(
                        self.target, trio.abc.HalfCloseableStream
                    ):
                        try:
                            await self.target.send_eof()
                        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                            pass
                    self.ended.set()
                    return
                await self._wait()
            chunk = bytes(self.to_target)
            self.to_target.clear()
            self._poke()
            try:
                await self.target.send_all(chunk)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                self.target_error = f"target error: {exc}"
                self.target_eof = True
                self.ended.set()
                return
            self.written += len(chunk)
            self._poke()

    async def _expiry(self) -> None:
        timeout = self.server.config.resume_timeout
        while True:
            if self.detached_at is not None:
                left = self.detached_at + timeout - trio.current_time()
                if left <= 0:
                    self.target_error = self.target_error or "resume timeout"
                    self.ended.set()
                    return
                with trio.move_on_after(left):
                    await self._wait()
            else:
                await self._wait()

    # -- one WebSocket at a time ----------------------------------------------------------
    async def attach(self, ws: WebSocket, resume_ack: int | None) -> None:
        """Serve this session over ``ws`` until the WebSocket ends."""
        if self._attach_scope is not None and self._attach_done is not None:
            self._attach_scope.cancel()  # a reconnect replaces a half-dead socket
            await self._attach_done.wait()
        scope = trio.CancelScope()
        done = trio.Event()
        self._attach_scope, self._attach_done = scope, done
        self.detached_at = None
        self._poke()
        try:
            with scope:
                out_sent = self.out_base
                if resume_ack is not None:
                    end = self.out_base + len(self.out_buf)
                    if not self.out_base <= resume_ack <= end:
                        await ws.send_close(1002, "bad ack")
                        self.server.log(
                            "v4_bad_reconnect", sid=self.sid, ack=resume_ack, base=self.out_base
                        )
                        return
                    del self.out_buf[: resume_ack - self.out_base]
                    self.out_base = out_sent = resume_ack
                    self.reconnects += 1
                    await ws.send_binary(v4.reconnect_success(self.in_count))
                await self._serve(ws, out_sent)
        except trio.BrokenResourceError:
            pass
        finally:
            if self._attach_scope is scope:
                self._attach_scope = self._attach_done = None
                if not self.ended.is_set():
                    self.detached_at = trio.current_time()
                    self._poke()
            done.set()

    async def _serve(self, ws: WebSocket, out_sent: int) -> None:
        sent = [out_sent]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ws.flusher)
            nursery.start_soon(self._ws_writer, ws, sent)
            reason = await self._ws_reader(ws, sent)
            nursery.cancel_scope.cancel()
        log = self.server.log
        if reason == "clean":
            self.client_done = True
            self._poke()
        elif reason:
            log("v4_ws_end", sid=self.sid, reason=reason)

    async def _ws_reader(self, ws: WebSocket, sent: list[int]) -> str:
        while True:
            while len(self.to_target) >= TARGET_QUEUE_MAX:
                await self._wait()
            msg = await ws.recv_message()
            if msg is None:
                break
            is_text, raw = msg
            try:
                if is_text:
                    raise v4.CommandError("text message")
                tag, value = v4.parse(raw)
            except v4.CommandError as exc:
                await ws.send_close(1002, "malformed command")
                self.client_done = True
                self.target_error = f"client protocol error: {exc}"
                self._poke()
                return f"malformed: {exc}"
            if tag == v4.DATA:
                assert isinstance(value, bytes)
                self.to_target += value
                self.in_count += len(value)
                self._poke()
            elif tag == v4.EOF_EXT:
                assert isinstance(value, int)
                self.client_eof_at = value
                self._poke()
            elif tag == v4.ACK:
                assert isinstance(value, int)
                if not self.out_base <= value <= sent[0]:
                    await ws.send_close(1002, "bad ack")
                    self.client_done = True
                    self.target_error = f"client ack {value} outside [{self.out_base}, {sent[0]}]"
                    self._poke()
                    return "bad ack"
                del self.out_buf[: value - self.out_base]
                self.out_base = value
                self._poke()
        if ws.end == "close":
            return "clean" if ws.close_code in (1000, 1005) else f"closed {ws.close_code}"
        return ws.end_detail or "lost"

    async def _ws_writer(self, ws: WebSocket, sent: list[int]) -> None:
        try:
            await self._ws_write_loop(ws, sent)
        except trio.BrokenResourceError:
            return  # the reader sees the loss and ends the attachment

    async def _ws_write_loop(self, ws: WebSocket, sent: list[int]) -> None:
        acked_sent = -1
        while True:
            frames: list[bytes] = []
            if self.written != acked_sent:
                acked_sent = self.written
                frames.append(v4.ack(acked_sent))
            end = self.out_base + len(self.out_buf)
            budget = 4 * SERVER_CHUNK
            while sent[0] < end and budget > 0:
                start = sent[0] - self.out_base
                chunk = bytes(self.out_buf[start : start + min(SERVER_CHUNK, budget)])
                frames.append(v4.data(chunk))
                sent[0] += len(chunk)
                budget -= len(chunk)
            if frames:
                await ws.send_binaries(frames)
                continue
            if self.target_eof and not self.out_buf:
                # Everything the target sent is acknowledged: end the session cleanly.
                code = 1011 if self.target_error else 1000
                await ws.send_close(code, self.target_error or "target closed")
                self.ended.set()
                return
            if self.ended.is_set():
                await ws.send_close(1011, self.target_error or "session ended")
                return
            await self._wait()


# ---------------------------------------------------------------------------------------
# the server
# ---------------------------------------------------------------------------------------


@dataclass
class Route:
    kind: str = ""  # "v4-connect", "v4-reconnect", "websockify"
    host: str = ""
    port: int = 0
    user: str = ""
    sid: str = ""
    ack: int = 0
    peer: str = ""


class RelayServer:
    def __init__(self, config: ServerConfig, log: JsonLog) -> None:
        self.config = config
        self.log = log
        self.sessions: dict[str, Session] = {}
        self.nursery: trio.Nursery | None = None
        self.port = 0

    def resolve(self, host: str) -> str:
        return self.config.hosts.get(host.lower(), host)

    def _decide(self, route: Route) -> Callable[[ServerProtocol, Request], Response]:
        cfg = self.config

        def decide(proto: ServerProtocol, request: Request) -> Response:
            parts = urllib.parse.urlsplit(request.path)
            query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
            path = parts.path.rstrip("/") or "/"
            if cfg.token is not None:
                auth = request.headers.get("Authorization", "")
                scheme, _, given = auth.partition(" ")
                if scheme.lower() != "bearer" or not hmac.compare_digest(
                    given.strip().encode(), cfg.token.encode()
                ):
                    self.log("auth_failed", peer=route.peer, path=path)
                    return proto.reject(401, "missing or wrong bearer token\n")
            offered = [
                p.strip()
                for value in request.headers.get_all("Sec-WebSocket-Protocol")
                for p in value.split(",")
            ]
            if path in ("/v4/connect", "/v4/reconnect"):
                if "ssh" not in offered:
                    return proto.reject(400, "subprotocol 'ssh' required\n")
                if path == "/v4/connect":
                    host, port = query.get("host", ""), query.get("port", "")
                    if not host or not port.isdigit():
                        return proto.reject(400, "host and port required\n")
                    route.kind, route.host, route.port = "v4-connect", host, int(port)
                    route.user = query.get("dstUsername", "")
                else:
                    sid, ack = query.get("sid", ""), query.get("ack", "")
                    if sid not in self.sessions:
                        self.log("v4_reconnect_unknown", peer=route.peer, sid=sid)
                        return proto.reject(410, "no such session\n")
                    if not ack.isdigit():
                        return proto.reject(400, "ack required\n")
                    route.kind, route.sid, route.ack = "v4-reconnect", sid, int(ack)
                response = proto.accept(request)
                response.headers["Sec-WebSocket-Protocol"] = "ssh"
                if request.headers.get(v4.EXT_HEADER, "") == "eof":
                    response.headers[v4.EXT_HEADER] = "eof"
                proto.subprotocol = "ssh"  # type: ignore[assignment]
                return response
            # websockify style: [PY] like websockify 0.13, "binary" or nothing
            if offered and "binary" not in offered:
                return proto.reject(400, "Invalid protocol selected\n")
            if cfg.target is not None:
                route.host, route.port = cfg.target
            else:
                host, port = query.get("host", ""), query.get("port", "")
                if not host or not port.isdigit():
                    return proto.reject(400, "no target: start with --target or pass host/port\n")
                route.host, route.port = host, int(port)
            route.kind = "websockify"
            response = proto.accept(request)
            if "binary" in offered:
                response.headers["Sec-WebSocket-Protocol"] = "binary"
                proto.subprotocol = "binary"  # type: ignore[assignment]
            return response

        return decide

    async def _open_target(self, host: str, port: int) -> trio.SocketStream:
        with trio.fail_after(self.config.connect_timeout):
            stream = await trio.open_tcp_stream(self.resolve(host), port)
        try:
            stream.setsockopt(6, 1, 1)  # TCP_NODELAY
        except OSError:
            pass
        return stream

    async def handle(self, stream: trio.abc.Stream) -> None:
        route = Route()
        try:
            sock_stream = stream.transport_stream if isinstance(stream, trio.SSLStream) else stream
            if isinstance(sock_stream, trio.SocketStream):
                peer = sock_stream.socket.getpeername()
                route.peer = f"{peer[0]}:{peer[1]}"
                try:
                    sock_stream.setsockopt(6, 1, 1)
                except OSError:
                    pass
        except OSError:
            pass
        try:
            ws, request = await accept(
                stream, self._decide(route), max_size=self.config.max_message
            )
            if ws is None:
                if request is not None:
                    self.log("rejected", peer=route.peer, path=request.path)
                return
            if route.kind == "v4-connect":
                await self._v4_connect(ws, route)
            elif route.kind == "v4-reconnect":
                await self._v4_reconnect(ws, route)
            else:
                await self._websockify(ws, route)
        except trio.BrokenResourceError as exc:
            self.log("connection_error", peer=route.peer, error=str(exc.__cause__ or exc))
        except Exception as exc:  # one bad client must not stop the server
            self.log("internal_error", peer=route.peer, error=repr(exc))
        finally:
            await trio.aclose_forcefully(stream)

    async def _refuse(self, ws: WebSocket, route: Route, reason: str) -> None:
        self.log("refused", peer=route.peer, host=route.host, port=route.port, reason=reason)
        await ws.send_close(1011, reason)
        await ws.wait_closed(2.0)

    async def _connect_target(self, ws: WebSocket, route: Route) -> trio.SocketStream | None:
        if not allowed(self.config.allow, route.host, route.port):
            await self._refuse(ws, route, "destination not allowed")
            return None
        try:
            return await self._open_target(route.host, route.port)
        except (OSError, trio.TooSlowError) as exc:
            self.log("target_failed", host=route.host, port=route.port, error=str(exc))
            await self._refuse(ws, route, "Failed to connect to downstream server")
            return None

    async def _v4_connect(self, ws: WebSocket, route: Route) -> None:
        target = await self._connect_target(ws, route)
        if target is None:
            return
        sid = secrets.token_urlsafe(18)
        dest = f"{route.host}:{route.port}"
        session = Session(self, sid, target, dest)
        self.sessions[sid] = session
        assert self.nursery is not None
        self.nursery.start_soon(session.run)
        self.log(
            "v4_connect",
            peer=route.peer,
            sid=sid,
            host=route.host,
            port=route.port,
            user=route.user,
        )
        await ws.send_binary(v4.connect_success(sid))
        await session.attach(ws, None)

    async def _v4_reconnect(self, ws: WebSocket, route: Route) -> None:
        session = self.sessions.get(route.sid)
        if session is None or session.ended.is_set():
            await ws.send_close(1011, "session ended")
            return
        self.log("v4_reconnect", peer=route.peer, sid=route.sid, ack=route.ack)
        await session.attach(ws, route.ack)

    async def _websockify(self, ws: WebSocket, route: Route) -> None:
        target = await self._connect_target(ws, route)
        if target is None:
            return
        self.log("websockify_connect", peer=route.peer, host=route.host, port=route.port)
        counts = [0, 0]

        async def ws_to_target() -> None:
            while True:
                msg = await ws.recv_message()
                if msg is None:
                    break
                is_text, data = msg
                if is_text:
                    await ws.send_close(1003, "Unsupported: Text frames are not supported")
                    break
                counts[0] += len(data)
                try:
                    await target.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    break
            await trio.aclose_forcefully(target)

        async def target_to_ws() -> None:
            while True:
                try:
                    data = await target.receive_some(SERVER_CHUNK)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    data = b""
                if not data:
                    await ws.send_close(1000, "Target closed")
                    return
                counts[1] += len(data)
                await ws.send_binary(data)

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ws.flusher)
                nursery.start_soon(target_to_ws)
                await ws_to_target()
                nursery.cancel_scope.cancel()
        finally:
            await trio.aclose_forcefully(target)
            self.log(
                "websockify_end",
                peer=route.peer,
                host=route.host,
                port=route.port,
                to_target=counts[0],
                to_client=counts[1],
            )

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        cfg = self.config
        listeners: list[Any] = list(await trio.open_tcp_listeners(cfg.port, host=cfg.host))
        if cfg.tls_cert:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(cfg.tls_cert, cfg.tls_key)
            listeners = [trio.SSLListener(lst, ctx, https_compatible=True) for lst in listeners]
        first = listeners[0]
        sock = first.transport_listener.socket if cfg.tls_cert else first.socket
        self.port = sock.getsockname()[1]
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            self.log(
                "listening",
                host=cfg.host,
                port=self.port,
                tls=bool(cfg.tls_cert),
                allow=cfg.allow,
                token=cfg.token is not None,
            )
            task_status.started(self.port)
            await trio.serve_listeners(self.handle, listeners, handler_nursery=nursery)


# ---------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    from wassh.cli import OneLineArgumentParser

    p = OneLineArgumentParser(
        prog="wassh relay",
        description="WebSocket relay: websockify-style and corp-relay-v4 endpoints.",
    )
    p.add_argument("--listen", default="127.0.0.1:8022", metavar="HOST:PORT")
    p.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="allowed destination (globs: '*.internal:22', '10.0.0.*:*'); repeatable",
    )
    p.add_argument("--token", help="require 'Authorization: Bearer TOKEN'")
    p.add_argument("--tls-cert", metavar="FILE", help="serve wss:// with this certificate chain")
    p.add_argument("--tls-key", metavar="FILE", help="the certificate's private key")
    p.add_argument(
        "--target", metavar="HOST:PORT", help="fixed destination of the websockify endpoint"
    )
    p.add_argument(
        "--add-host",
        action="append",
        default=[],
        metavar="NAME=ADDRESS",
        help="resolve NAME to ADDRESS for destinations",
    )
    p.add_argument("--replay-buffer", type=int, default=4 << 20, metavar="BYTES")
    p.add_argument("--resume-timeout", type=float, default=60.0, metavar="SECONDS")
    p.add_argument("--max-message", type=int, default=1 << 20, metavar="BYTES")
    p.add_argument("--log", metavar="FILE", help="append JSON log lines here (default: stderr)")
    return p


def config_from_args(argv: Sequence[str]) -> tuple[ServerConfig, argparse.Namespace]:
    parser = _parser()
    ns = parser.parse_args(list(argv))
    try:
        host, port = parse_hostport(ns.listen, "--listen")
        target = parse_hostport(ns.target, "--target") if ns.target else None
    except ValueError as exc:
        parser.error(str(exc))
    if bool(ns.tls_cert) != bool(ns.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    hosts: dict[str, str] = {}
    for item in ns.add_host:
        name, sep, addr = item.partition("=")
        if not sep or not name or not addr:
            parser.error(f"bad --add-host {item!r}: expected NAME=ADDRESS")
        hosts[name.lower()] = addr
    allow = list(ns.allow)
    if target is not None:
        allow.append(f"{target[0]}:{target[1]}")
    config = ServerConfig(
        host=host,
        port=port,
        allow=allow,
        token=ns.token,
        tls_cert=ns.tls_cert,
        tls_key=ns.tls_key,
        target=target,
        hosts=hosts,
        replay_buffer=ns.replay_buffer,
        resume_timeout=ns.resume_timeout,
        max_message=ns.max_message,
    )
    return config, ns


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``wassh relay``."""
    config, ns = config_from_args(sys.argv[1:] if argv is None else argv)
    out: TextIO = open(ns.log, "a", encoding="utf-8") if ns.log else sys.stderr  # noqa: SIM115
    log = JsonLog(out)
    server = RelayServer(config, log)

    async def run() -> None:
        import signal

        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server.serve)
                async for signum in signals:
                    log("stopped", signal=signal.Signals(signum).name)
                    nursery.cancel_scope.cancel()
                    return

    failures: list[BaseException] = []
    try:
        trio.run(run)
    except* (OSError, ssl.SSLError) as group:  # port in use, bad address, TLS files...
        failures.extend(group.exceptions)
    for exc in failures:
        log("error", error=str(exc))
        if ns.log:
            sys.stderr.write(f"wassh relay: {exc}\n")
    return 1 if failures else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
