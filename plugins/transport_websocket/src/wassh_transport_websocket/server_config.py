"""``wassh relay``'s command line and the access rules built from it (and rebuilt on SIGHUP)."""

from __future__ import annotations

import argparse
import math
import os
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from wassh import OneLineArgumentParser
from wassh.policy import IPAddress, PolicyError

from .server_auth import TOKENS_ENV, Tokens, check_token, env_tokens, read_token_file
from .server_destinations import (
    Destinations,
    parse_add_host,
    parse_patterns,
    read_pattern_file,
)
from .server_limits import default_max_sessions

# An instance id travels in every session id and is matched by load balancer
# rules (a prefix up to the first "."), so it is plain URL-safe text with no ".".
INSTANCE_ID = re.compile(r"[A-Za-z0-9-]{1,32}")


def new_instance_id() -> str:
    """A default for a relay nobody named: unique enough that two never take each other's
    sessions, though only a configured id can be written into a load balancer's rules."""
    return secrets.token_hex(4)


DESCRIPTION = """\
A WebSocket relay: a client opens a WebSocket, the relay opens the TCP
connection it asks for, if the allow-list permits it. One port serves both
kinds of client: /v4/connect and /v4/reconnect speak corp-relay-v4 (sessions
survive a dropped WebSocket), every other path is websockify-style (raw bytes
in binary messages, to --target or to ?host=H&port=P).
"""

EPILOG = f"""\
patterns (--allow, --deny, their files) are HOST[:PORTS], as in 'wassh run
--connect-allow': an address (192.0.2.7, [2001:db8::7]), a network
(10.0.0.0/8, [fd00::]/8), a name glob (db.example.com, *.example.com,
db-*.example.com; '*' never crosses a dot), or '*' for everything; PORTS is N,
N-M or '*' (the default). The name a client sends is checked, then every
address it resolves to; the relay connects only to an address that passed.
No --allow: every destination is refused. --deny wins over any allow.

environment:
  {TOKENS_ENV}   comma-separated bearer tokens (read at start)

Any token source turns authentication on: clients must send
'Authorization: Bearer TOKEN'. A corp-relay-v4 session resumes only with the
token that opened it.

signals:
  SIGHUP    reread --token-file, --allow-file, --deny-file; reopen --log;
            sessions carry on (a bad file is logged, the old rules stay)
  SIGTERM   stop accepting, close every session (close code 1001), exit 0

examples:
  wassh relay --listen 127.0.0.1:8022 --allow 'db.internal:5432'
  wassh relay --listen '*:443' --tls-cert cert.pem --tls-key key.pem \\
      --token-file /etc/wassh/relay.tokens --allow '*.corp.example:22' \\
      --allow 10.0.0.0/8:22 --deny 10.0.0.1 --max-sessions-per-client 32 \\
      --idle-timeout 3600
"""


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8022
    allow: list[str] = field(default_factory=list)
    deny: list[str] = field(default_factory=list)
    allow_files: list[str] = field(default_factory=list)
    deny_files: list[str] = field(default_factory=list)
    token: str | None = None
    token_files: list[str] = field(default_factory=list)
    env_tokens: str | None = None  # the value of $WASSH_RELAY_TOKENS when the relay started
    tls_cert: str | None = None
    tls_key: str | None = None
    target: tuple[str, int] | None = None
    hosts: dict[str, IPAddress] = field(default_factory=dict)
    replay_buffer: int = 4 << 20
    resume_timeout: float = 60.0
    connect_timeout: float = 10.0
    handshake_timeout: float = 10.0
    max_message: int = 1 << 20
    max_sessions: int = field(default_factory=default_max_sessions)
    max_sessions_per_client: int = 0
    idle_timeout: float = 0.0
    log: str | None = None
    instance_id: str = field(default_factory=new_instance_id)

    @property
    def auth_required(self) -> bool:
        return bool(self.token_files) or self.env_tokens is not None or self.token is not None


@dataclass(frozen=True)
class Access:
    """Who may use the relay and where to: what SIGHUP rebuilds."""

    tokens: Tokens
    destinations: Destinations


class AccessError(ValueError):
    """A token or pattern source that cannot be used; one line."""


def hostport_pattern(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def load_access(config: ServerConfig) -> Access:
    """Read every token and pattern source; raises ``AccessError`` naming the bad one."""
    try:
        tokens: list[str] = []
        for path in config.token_files:
            tokens += read_token_file(path)
        if config.env_tokens is not None:
            tokens += env_tokens(config.env_tokens)
        if config.token is not None:
            tokens.append(check_token(config.token, "--token"))
        allow = [(p, "--allow") for p in config.allow]
        for path in config.allow_files:
            allow += read_pattern_file(path, "--allow-file")
        if config.target is not None:
            allow.append((hostport_pattern(*config.target), "--target"))
        deny = [(p, "--deny") for p in config.deny]
        for path in config.deny_files:
            deny += read_pattern_file(path, "--deny-file")
        destinations = Destinations(parse_patterns(allow), parse_patterns(deny), dict(config.hosts))
    except (PolicyError, ValueError) as exc:
        raise AccessError(str(exc)) from None
    return Access(Tokens.of(tokens, required=config.auth_required), destinations)


def parse_hostport(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isascii() or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{what} {text!r}: expected HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{what} {text!r}: write IPv6 addresses in brackets, [::1]:8022")
    return host, int(port)


def _count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be at least {minimum}")
        return value

    return parse


def _instance_id(text: str) -> str:
    if not INSTANCE_ID.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text[:40]!r}: 1 to 32 letters, digits or '-' (it goes into session ids)"
        )
    return text


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value < 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more seconds")
    return value


def build_parser() -> argparse.ArgumentParser:
    defaults = ServerConfig()
    p = OneLineArgumentParser(
        prog="wassh relay",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    net = p.add_argument_group("listening and TLS")
    net.add_argument(
        "--listen",
        default="127.0.0.1:8022",
        metavar="HOST:PORT",
        help="where to listen (default 127.0.0.1:8022; '*:443' for every IPv4 and IPv6 "
        "address, '[::]:443' for IPv6 only)",
    )
    net.add_argument("--tls-cert", metavar="FILE", help="serve wss:// with this PEM chain")
    net.add_argument("--tls-key", metavar="FILE", help="the certificate's PEM private key")
    net.add_argument(
        "--handshake-timeout",
        type=_seconds,
        default=defaults.handshake_timeout,
        metavar="S",
        help="time a client has for TLS and its HTTP request (default %(default)g)",
    )

    access = p.add_argument_group("access: tokens and destinations")
    access.add_argument(
        "--token-file",
        action="append",
        default=[],
        metavar="FILE",
        help="bearer tokens, one a line ('#' comments); repeatable; reread on SIGHUP",
    )
    access.add_argument(
        "--token",
        metavar="TOKEN",
        help=f"a bearer token (visible in ps: prefer --token-file or ${TOKENS_ENV})",
    )
    access.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="PATTERN",
        help="a destination clients may reach, HOST[:PORTS]; repeatable; "
        "none given: nothing is allowed",
    )
    access.add_argument(
        "--deny",
        action="append",
        default=[],
        metavar="PATTERN",
        help="never connect here, whatever allows it; repeatable",
    )
    access.add_argument(
        "--allow-file",
        action="append",
        default=[],
        metavar="FILE",
        help="--allow patterns, one a line; reread on SIGHUP",
    )
    access.add_argument(
        "--deny-file",
        action="append",
        default=[],
        metavar="FILE",
        help="--deny patterns, one a line; reread on SIGHUP",
    )
    access.add_argument(
        "--add-host",
        action="append",
        default=[],
        metavar="NAME=ADDRESS",
        help="resolve NAME to ADDRESS here (the rules still apply to both)",
    )
    access.add_argument(
        "--target",
        metavar="HOST:PORT",
        help="fixed destination of the websockify endpoint (allowed implicitly)",
    )

    limits = p.add_argument_group("limits")
    limits.add_argument(
        "--max-sessions",
        type=_count(1),
        metavar="N",
        help="sessions at once, attached or waiting to resume; more get HTTP 503 "
        f"(default: what the descriptor limit allows, now {defaults.max_sessions})",
    )
    limits.add_argument(
        "--max-sessions-per-client",
        type=_count(0),
        default=0,
        metavar="N",
        help="sessions at once per client address (IPv6: per /64); more get HTTP 429 "
        "(default 0: no limit)",
    )
    limits.add_argument(
        "--idle-timeout",
        type=_seconds,
        default=defaults.idle_timeout,
        metavar="S",
        help="close a session when no payload moved either way for S seconds (default 0: never)",
    )
    limits.add_argument(
        "--resume-timeout",
        type=_seconds,
        default=defaults.resume_timeout,
        metavar="S",
        help="how long a dropped corp-relay-v4 session waits for its client (default %(default)g)",
    )
    limits.add_argument(
        "--replay-buffer",
        type=_count(1),
        default=defaults.replay_buffer,
        metavar="BYTES",
        help="unacknowledged bytes kept per corp-relay-v4 session (default %(default)d)",
    )
    limits.add_argument(
        "--max-message",
        type=_count(1),
        default=defaults.max_message,
        metavar="BYTES",
        help="largest WebSocket message, fragments included; larger: close 1009 "
        "(default %(default)d)",
    )
    limits.add_argument(
        "--connect-timeout",
        type=_seconds,
        default=defaults.connect_timeout,
        metavar="S",
        help="resolving and connecting to a destination (default %(default)g)",
    )

    several = p.add_argument_group("several relays behind a load balancer")
    several.add_argument(
        "--instance-id",
        type=_instance_id,
        metavar="ID",
        help="this relay's name in its corp-relay-v4 session ids (ID.SECRET), so that a "
        "load balancer can send /v4/reconnect to the relay holding the session; 1 to 32 "
        "letters, digits or '-' (default: random, logged in 'listening')",
    )

    logging = p.add_argument_group("logging")
    logging.add_argument(
        "--log",
        metavar="FILE",
        help="append JSON lines here, reopened on SIGHUP (default: stderr)",
    )
    return p


def config_from_args(
    argv: Sequence[str], environ: dict[str, str] | None = None
) -> tuple[ServerConfig, Access]:
    """The configuration and the access rules; bad input exits 2 with one line."""
    parser = build_parser()
    ns = parser.parse_args(list(argv))
    env = os.environ if environ is None else environ
    try:
        host, port = parse_hostport(ns.listen, "--listen")
        target = parse_hostport(ns.target, "--target") if ns.target else None
        hosts = dict(parse_add_host(item) for item in ns.add_host)
    except ValueError as exc:
        parser.error(str(exc))
    if bool(ns.tls_cert) != bool(ns.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    config = ServerConfig(
        host=host,
        port=port,
        allow=list(ns.allow),
        deny=list(ns.deny),
        allow_files=list(ns.allow_file),
        deny_files=list(ns.deny_file),
        token=ns.token,
        token_files=list(ns.token_file),
        env_tokens=env.get(TOKENS_ENV),
        tls_cert=ns.tls_cert,
        tls_key=ns.tls_key,
        target=target,
        hosts=hosts,
        replay_buffer=ns.replay_buffer,
        resume_timeout=ns.resume_timeout,
        connect_timeout=ns.connect_timeout,
        handshake_timeout=ns.handshake_timeout,
        max_message=ns.max_message,
        max_sessions_per_client=ns.max_sessions_per_client,
        idle_timeout=ns.idle_timeout,
        log=ns.log,
    )
    if ns.max_sessions is not None:
        config.max_sessions = ns.max_sessions
    if ns.instance_id is not None:
        config.instance_id = ns.instance_id
    try:
        access = load_access(config)
    except AccessError as exc:
        parser.error(str(exc))
    return config, access
