"""The HTTP side of ``wassh relay``: reading the upgrade request and checking what it asks.

Everything a client controls before the WebSocket opens is checked here, so a
bad request gets a 4xx answer and one log line, never an exception further in:

* the query string: at most ``MAX_QUERY`` characters and ``MAX_PARAMS``
  parameters, UTF-8, no parameter given twice;
* ``host``: a DNS name (letters, digits, ``-`` and ``_`` in labels of at most
  63, 253 in all; the last label not all digits, since no top-level domain
  is), an IPv4 address in any form a resolver reads, or an IPv6 address, bare
  or in brackets;
* ``port``: ASCII digits, 1-65535; ``ack``: ASCII digits below 2**64;
  ``sid``: an instance id (1-32 of ``A-Za-z0-9-``) and ".", then URL-safe
  base64 of at most 64 characters (the instance part may be missing: such a
  sid is no session of this relay's, but well-formed); ``dstUsername``:
  printable, at most 256 characters.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from dataclasses import dataclass

import trio
from wassh.policy import parse_address
from websockets.http11 import Request
from websockets.server import ServerProtocol

from .server_auth import ANONYMOUS, Credential
from .server_limits import Slot
from .wsconn import RECV_SIZE, WebSocket

MAX_QUERY = 4096
MAX_PARAMS = 16
MAX_HOST = 253
MAX_USER = 256
MAX_LOGGED_PATH = 200

_LABEL = re.compile(r"[A-Za-z0-9_-]{1,63}")
_PORT = re.compile(r"[0-9]{1,5}")
_ACK = re.compile(r"[0-9]{1,20}")
_SID = re.compile(r"(?:[A-Za-z0-9-]{1,32}\.)?[A-Za-z0-9_-]{1,64}")
_QUERY_IN_TEXT = re.compile(r"\?[^\s'\"]*")

_BAD_REQUEST_TEXT = b"Failed to open a WebSocket connection: not a valid HTTP request.\n"
_BAD_REQUEST = (
    b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_BAD_REQUEST_TEXT), _BAD_REQUEST_TEXT)
)

V4_CONNECT = "/v4/connect"
HEALTH_PATH = "/healthz"
V4_RECONNECT = "/v4/reconnect"


class BadRequest(Exception):
    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class HandshakeFailed(Exception):
    """No request to answer: timeout, TLS failure, garbage, or the client left."""


@dataclass
class Route:
    """What an accepted request asks for."""

    kind: str  # "v4-connect", "v4-reconnect" or "websockify"
    path: str
    host: str = ""
    port: int = 0
    user: str = ""
    sid: str = ""
    ack: int = 0
    subprotocol: str | None = None
    eof_ext: bool = False  # the v4 half-close extension was offered
    data_ext: bool = False  # the v4 extension for DATA above 16 KiB was offered
    credential: Credential = ANONYMOUS
    slot: Slot | None = None  # the session it holds against the limits


def redact_queries(text: str) -> str:
    """``text`` with every query string cut out: a parser's message may quote the request line."""
    return _QUERY_IN_TEXT.sub("?...", text)[:MAX_LOGGED_PATH]


def logged_path(request_path: str) -> str:
    """The path without its query (which may carry a session id), cut to a sane length."""
    path = request_path.split("?", 1)[0].split("#", 1)[0]
    return path[:MAX_LOGGED_PATH]


def check_host(text: str) -> str:
    if not text:
        raise BadRequest("empty host")
    if len(text) > MAX_HOST + 2:
        raise BadRequest(f"host longer than {MAX_HOST} characters")
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
        if ":" not in text:
            raise BadRequest("brackets are for IPv6 addresses")
    if ":" in text:
        if "%" in text:
            raise BadRequest("bad host: no IPv6 zones")
        try:
            ipaddress.IPv6Address(text)
        except ValueError:
            raise BadRequest("bad host: not an IPv6 address") from None
        return text
    name = text[:-1] if text.endswith(".") else text
    if len(name) > MAX_HOST:
        raise BadRequest(f"host longer than {MAX_HOST} characters")
    labels = name.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        raise BadRequest("bad host: expected a DNS name or an IP address")
    if labels[-1].isdigit() and parse_address(text) is None:
        # "10.0.0.1." or "1.2.3.4.5": neither an address nor a name anyone owns
        raise BadRequest("bad host: a numeric name that is no address")
    return text


def check_port(text: str) -> int:
    if not _PORT.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise BadRequest("port must be a number from 1 to 65535")
    return int(text)


def parse_query(query: str) -> dict[str, str]:
    if len(query) > MAX_QUERY:
        raise BadRequest(f"query string longer than {MAX_QUERY} characters", 414)
    try:
        pairs = urllib.parse.parse_qsl(
            query, keep_blank_values=True, errors="strict", max_num_fields=MAX_PARAMS
        )
    except UnicodeDecodeError:
        raise BadRequest("query string is not UTF-8") from None
    except ValueError:
        raise BadRequest(f"more than {MAX_PARAMS} query parameters") from None
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            raise BadRequest(f"repeated query parameter {key[:32]!r}")
        params[key] = value
    return params


def offered(request: Request, header: str) -> list[str]:
    return [
        item.strip()
        for value in request.headers.get_all(header)
        for item in value.split(",")
        if item.strip()
    ]


def parse_route(request: Request, target: tuple[str, int] | None) -> Route:
    """The route a request asks for; raises ``BadRequest`` with what is wrong."""
    raw_path, _, query = request.path.partition("?")
    query = query.split("#", 1)[0]
    path = raw_path.rstrip("/") or "/"
    params = parse_query(query)
    protocols = offered(request, "Sec-WebSocket-Protocol")
    if path in (V4_CONNECT, V4_RECONNECT):
        if "ssh" not in protocols:
            raise BadRequest("subprotocol 'ssh' required")
        route = Route("", path, subprotocol="ssh")
        extensions = offered(request, "X-Wassh-Relay-Ext")
        route.eof_ext = "eof" in extensions
        route.data_ext = "data" in extensions
        if path == V4_CONNECT:
            route.kind = "v4-connect"
            route.host = check_host(params.get("host", ""))
            route.port = check_port(params.get("port", ""))
            user = params.get("dstUsername", "")
            if len(user) > MAX_USER or not user.isprintable():
                raise BadRequest(f"dstUsername must be printable, at most {MAX_USER} characters")
            route.user = user
        else:
            route.kind = "v4-reconnect"
            sid, ack = params.get("sid", ""), params.get("ack", "")
            if not _SID.fullmatch(sid):
                raise BadRequest("bad or missing sid")
            if not _ACK.fullmatch(ack) or int(ack) >= 1 << 64:
                raise BadRequest("ack must be a number below 2**64")
            route.sid, route.ack = sid, int(ack)
        return route
    # websockify-style, like websockify 0.13: "binary" or no subprotocol at all
    if protocols and "binary" not in protocols:
        raise BadRequest("Invalid protocol selected")
    route = Route("websockify", path, subprotocol="binary" if protocols else None)
    if target is not None:
        route.host, route.port = target
    elif "host" not in params and "port" not in params:
        raise BadRequest("no target: this relay needs ?host=H&port=P")
    else:
        route.host = check_host(params.get("host", ""))
        route.port = check_port(params.get("port", ""))
    return route


async def read_request(ws: WebSocket, timeout: float) -> Request:
    """Read the upgrade request into ``ws``; raises ``HandshakeFailed`` saying why not.

    The request is read through the WebSocket that carries on after the
    handshake, so frames a client sends right behind its request stay queued.
    """
    proto = ws.protocol
    assert isinstance(proto, ServerProtocol)
    with trio.move_on_after(timeout):
        while True:
            try:
                data = await ws.stream.receive_some(RECV_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                cause = exc.__cause__ or exc
                raise HandshakeFailed(f"connection lost: {cause}") from None
            try:
                ws._feed_handshake(data)
            except EOFError:
                raise HandshakeFailed("closed before sending a whole request") from None
            for i, event in enumerate(ws._events):
                if isinstance(event, Request):
                    del ws._events[i]
                    return event
            failure = proto.handshake_exc
            if failure is None and data:
                continue
            try:
                if data and not any(proto.writes):  # no 414 or 431 from the protocol: say 400
                    await ws.stream.send_all(_BAD_REQUEST)
                await ws._flush()
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass
            if not data:
                raise HandshakeFailed("closed before sending a whole request")
            assert failure is not None
            detail = redact_queries(str(failure.__cause__ or failure))
            raise HandshakeFailed(f"bad HTTP request: {detail}")
    raise HandshakeFailed(f"no request within {timeout:g} s")
