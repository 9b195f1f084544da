"""Real DNS servers for the tests, on loopback only, each a context manager.

``Dnsmasq`` runs Debian's dnsmasq on a free port of 127.0.0.1 (UDP and TCP),
serving names from a hosts file it is given, and nothing else: every other
name is NXDOMAIN (``--local=/#/``), it reads no resolv.conf and forwards
nowhere, except the SERVFAIL names to an ``RcodeServer`` of its own on
loopback. ``DohServer`` runs Debian's dnsdist in front of it: DNS-over-HTTPS
(HTTP/1.1 and HTTP/2) with a certificate from a ``trustme`` CA for 127.0.0.1,
a plain DNS listener, SERVFAIL rules, and its web API on loopback to read
per-frontend counters. ``SilentDnsServer`` reads queries and never answers.
``TruncatingDnsServer`` answers UDP truncated and relays TCP to another server, so
every lookup through it goes over TCP.

Nothing is skipped when a program is missing: the tests fail and say what to
install (``scripts/system-deps.sh``).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
import trustme

INSTALL_HINT = "install Debian's dnsmasq-base and dnsdist (scripts/system-deps.sh)"
LOOPBACK = "127.0.0.1"
# A name served with this many A records: more than a 512-byte UDP answer holds,
# so the answer comes truncated (TC) and a resolver must ask again over TCP.
MANY_NAME = "many.test"
MANY_ADDRESSES = tuple(f"127.0.1.{i}" for i in range(1, 41))
START_TIMEOUT = 15.0


def need(program: str) -> str:
    for found in (shutil.which(program), f"/usr/sbin/{program}", f"/usr/bin/{program}"):
        if found and os.access(found, os.X_OK):
            return found
    pytest.fail(f"{program} not found: {INSTALL_HINT}", pytrace=False)


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (DNS listens on both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((LOOPBACK, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((LOOPBACK, port))
                except OSError:
                    continue
                return port


def query(
    port: int,
    name: str,
    rdtype: str = "A",
    *,
    tcp: bool = False,
    timeout: float = 2.0,
    payload: int = 1232,
) -> dns.message.Message:
    """One plain query to 127.0.0.1:``port`` (raises ``dns.exception.Timeout``)."""
    request = dns.message.make_query(name, dns.rdatatype.from_text(rdtype), use_edns=0)
    request.use_edns(0, 0, payload)
    if tcp:
        return dns.query.tcp(request, LOOPBACK, timeout=timeout, port=port)
    # ignore_trailing: a truncated answer may end mid-record; the flags are what counts.
    return dns.query.udp(request, LOOPBACK, timeout=timeout, port=port, ignore_trailing=True)


def truncated(message: dns.message.Message) -> bool:
    return bool(message.flags & dns.flags.TC)


def _wait_answering(port: int, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    """Until the server at ``port`` answers a query (each try waits up to 0.2 s for it)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            query(port, "ready.invalid", timeout=0.2)
            return
        except (dns.exception.Timeout, OSError):
            continue
    text = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    pytest.fail(f"{what} did not start (exit {proc.poll()}):\n{text}", pytrace=False)


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


class _Server:
    """Start on ``__enter__`` (or ``start()``), stop on ``__exit__`` (or ``stop()``)."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class RcodeServer(_Server):
    """A UDP and TCP DNS server on 127.0.0.1 answering every query with one rcode
    (``rcode=None``: it never answers). ``received`` counts the UDP queries and the TCP
    queries (with ``rcode=None``: the TCP connections, whose bytes are never read)."""

    def __init__(self, rcode: dns.rcode.Rcode | None) -> None:
        self.rcode = rcode
        self.port = 0
        self.received = 0
        self._udp: socket.socket | None = None
        self._tcp: socket.socket | None = None
        self._held: list[socket.socket] = []
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    @property
    def address(self) -> tuple[str, int]:
        return (LOOPBACK, self.port)

    @property
    def url(self) -> str:
        return f"dns://{LOOPBACK}:{self.port}"

    def start(self) -> Self:
        while True:
            port = free_port()
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                udp.bind((LOOPBACK, port))
                tcp.bind((LOOPBACK, port))
            except OSError:
                udp.close()
                tcp.close()
                continue
            break
        tcp.listen(16)
        for s in (udp, tcp):
            s.settimeout(0.1)  # how soon the threads notice stop()
        self._udp, self._tcp, self.port = udp, tcp, port
        for target in (self._serve_udp, self._serve_tcp):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=5)
        for s in (self._udp, self._tcp, *self._held):
            if s is not None:
                s.close()
        self._held.clear()

    def _answer(self, wire: bytes) -> bytes | None:
        with self._lock:
            self.received += 1
        if self.rcode is None:
            return None
        try:
            request = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        response = dns.message.make_response(request)
        response.set_rcode(self.rcode)
        return response.to_wire()

    def _serve_udp(self) -> None:
        assert self._udp is not None
        while not self._stopping.is_set():
            try:
                wire, peer = self._udp.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            answer = self._answer(wire)
            if answer is not None:
                with contextlib.suppress(OSError):
                    self._udp.sendto(answer, peer)

    def _serve_tcp(self) -> None:
        assert self._tcp is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._tcp.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(conn)  # open until stop()
            if self.rcode is None:
                with self._lock:
                    self.received += 1  # a connection: what it sends is never read
                continue
            threading.Thread(target=self._answer_tcp, args=(conn,), daemon=True).start()

    def _answer_tcp(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            size = int.from_bytes(_read(conn, 2), "big")
            answer = self._answer(_read(conn, size))
            if answer is not None:
                conn.sendall(len(answer).to_bytes(2, "big") + answer)
        except OSError:
            pass


def _read(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionResetError("closed")
        data += chunk
    return data


class SilentDnsServer(RcodeServer):
    """UDP and TCP on 127.0.0.1: reads queries, never answers (a resolver times out)."""

    def __init__(self) -> None:
        super().__init__(None)


class TruncatingDnsServer(RcodeServer):
    """A front on 127.0.0.1 that sends every lookup to ``upstream`` (a DNS server's
    ``(host, port)``) over TCP: each UDP query is answered empty and truncated (TC), as a
    server whose answers do not fit a datagram would, and each query over TCP is relayed
    to the upstream over TCP, its answer passed back unchanged. ``received`` counts the
    UDP queries, ``relayed`` the TCP ones."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        super().__init__(dns.rcode.NOERROR)
        self.upstream = upstream
        self.relayed = 0

    def _answer(self, wire: bytes) -> bytes | None:
        with self._lock:
            self.received += 1
        try:
            request = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        response = dns.message.make_response(request)
        response.flags |= dns.flags.TC
        return response.to_wire()

    def _answer_tcp(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            with socket.create_connection(self.upstream, timeout=5) as upstream:
                while True:  # until the client closes: it may ask several queries
                    size = _read(conn, 2)
                    request = _read(conn, int.from_bytes(size, "big"))
                    with self._lock:
                        self.relayed += 1
                    upstream.sendall(size + request)
                    size = _read(upstream, 2)
                    conn.sendall(size + _read(upstream, int.from_bytes(size, "big")))
        except OSError:
            pass


class Dnsmasq(_Server):
    """Debian's dnsmasq on 127.0.0.1 (UDP and TCP), serving ``hosts`` and nothing else.

    ``hosts``: ``{name: [address, ...]}`` (IPv4 and IPv6 literals); ``MANY_NAME``
    with ``MANY_ADDRESSES`` is always served too. ``ttl``: the TTL of those
    answers (``--local-ttl``). ``edns_packet_max``: the largest UDP answer.
    ``servfail_names``: names (and their subdomains) answered SERVFAIL.
    ``silent_names``: names (and their subdomains) never answered (dnsmasq
    forwards them to a server that does not reply).
    ``cnames``: ``{alias: target}``, each answered as a CNAME to a served target.
    Every other name is NXDOMAIN; a served name without an address of the
    family asked is NODATA.
    """

    def __init__(
        self,
        tmp_dir: Path,
        hosts: Mapping[str, Sequence[str]] | None = None,
        *,
        ttl: int = 300,
        edns_packet_max: int = 512,
        servfail_names: Iterable[str] = (),
        silent_names: Iterable[str] = (),
        cnames: Mapping[str, str] | None = None,
    ) -> None:
        self.dir = Path(tmp_dir)
        self.hosts = {MANY_NAME: list(MANY_ADDRESSES), **(hosts or {})}
        self.cnames = dict(cnames or {})
        self.ttl = ttl
        self.edns_packet_max = edns_packet_max
        self.servfail_names = tuple(servfail_names)
        self.silent_names = tuple(silent_names)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._forwards: list[RcodeServer] = []

    @property
    def address(self) -> tuple[str, int]:
        return (LOOPBACK, self.port)

    @property
    def url(self) -> str:
        return f"dns://{LOOPBACK}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.dir / "dnsmasq.log"

    def start(self) -> Self:
        binary = need("dnsmasq")
        self.dir.mkdir(parents=True, exist_ok=True)
        hosts_file = self.dir / "hosts"
        hosts_file.write_text(
            "".join(f"{a} {name}\n" for name, addrs in self.hosts.items() for a in addrs)
        )
        forwards = []
        for names, rcode in ((self.servfail_names, dns.rcode.SERVFAIL), (self.silent_names, None)):
            if names:
                server = RcodeServer(rcode).start()
                self._forwards.append(server)
                forwards += [f"--server=/{name}/{LOOPBACK}#{server.port}" for name in names]
        for _attempt in range(5):
            self.port = free_port()
            command = [
                binary,
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",  # no upstream from the host: nothing leaves loopback
                "--no-hosts",
                "--no-poll",
                f"--addn-hosts={hosts_file}",
                "--local=/#/",  # every name not served here is NXDOMAIN
                *forwards,
                *(f"--cname={alias},{target}" for alias, target in self.cnames.items()),
                f"--listen-address={LOOPBACK}",
                "--bind-interfaces",
                f"--port={self.port}",
                f"--local-ttl={self.ttl}",
                f"--edns-packet-max={self.edns_packet_max}",
                "--cache-size=0",  # every query is answered (and logged) afresh
                "--log-queries",
                f"--log-facility={self.log_path}",
                "--pid-file=",
                # As root it would drop to nobody, who cannot write the log here.
                *(["--user=root"] if os.geteuid() == 0 else []),
            ]
            with open(self.dir / "dnsmasq.stderr", "ab") as err:
                self.proc = subprocess.Popen(
                    command, stdout=err, stderr=err, start_new_session=True
                )
            try:
                _wait_answering(self.port, self.proc, "dnsmasq", self.log_path)
                return self
            except BaseException:
                if self.proc.poll() is None or _attempt == 4:
                    self.stop()
                    raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        _stop(self.proc)
        for server in self._forwards:
            server.stop()

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def queries(self, name: str | None = None, rdtype: str | None = None) -> int:
        """How many queries dnsmasq received (for ``name``, of ``rdtype``), from its log:
        dnsmasq writes the line when the query arrives, before it answers."""
        count = 0
        for line in self.log().splitlines():
            _, found, rest = line.partition(": query[")
            if not found:
                continue
            kind, _, after = rest.partition("] ")
            qname = after.split(" ", 1)[0]
            if (name is None or qname == name.rstrip(".")) and (rdtype in (None, kind)):
                count += 1
        return count


class DohServer(_Server):
    """Debian's dnsdist on 127.0.0.1 in front of ``upstream`` (a ``(host, port)`` DNS
    server): DNS-over-HTTPS at ``url`` (HTTP/1.1 and HTTP/2 by ALPN) with a certificate
    ``ca`` issues for ``names`` (127.0.0.1 and localhost), plain DNS at ``do53_url``,
    SERVFAIL (``RCodeAction``) for ``servfail_names`` and their subdomains and for
    ``servfail_types`` (``{name: "AAAA"}``: that type only), and ``counters()`` from
    its web API."""

    def __init__(
        self,
        tmp_dir: Path,
        upstream: tuple[str, int],
        ca: trustme.CA,
        *,
        servfail_names: Iterable[str] = (),
        path: str = "/dns-query",
        names: Sequence[str] = (LOOPBACK, "localhost"),
        servfail_types: Mapping[str, str] | None = None,
    ) -> None:
        self.dir = Path(tmp_dir)
        self.upstream = upstream
        self.names = tuple(names)
        self.servfail_types = dict(servfail_types or {})
        self.ca = ca
        self.servfail_names = tuple(servfail_names)
        self.path = path
        self.port = 0
        self.do53_port = 0
        self.web_port = 0
        self.api_key = secrets.token_hex(16)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> tuple[str, int]:
        return (LOOPBACK, self.port)

    @property
    def url(self) -> str:
        return f"https://{LOOPBACK}:{self.port}{self.path}"

    @property
    def do53_url(self) -> str:
        return f"dns://{LOOPBACK}:{self.do53_port}"

    @property
    def log_path(self) -> Path:
        return self.dir / "dnsdist.out"

    def _config(self) -> str:
        cert = self.dir / "cert.pem"
        key = self.dir / "key.pem"
        issued = self.ca.issue_cert(*self.names)
        issued.cert_chain_pems[0].write_to_path(str(cert))
        issued.private_key_pem.write_to_path(str(key))
        host, port = self.upstream
        rules = ""
        if self.servfail_names:
            rules = "local servfail = newSuffixMatchNode()\n"
            rules += "".join(f'servfail:add("{n.rstrip(".")}.")\n' for n in self.servfail_names)
            rules += "addAction(SuffixMatchNodeRule(servfail), RCodeAction(DNSRCode.SERVFAIL))\n"
        for name, qtype in self.servfail_types.items():
            rules += (
                f'addAction(AndRule({{QNameRule("{name.rstrip(".")}."), '
                f"QTypeRule(DNSQType.{qtype.upper()})}}), RCodeAction(DNSRCode.SERVFAIL))\n"
            )
        return (
            # No security polling: dnsdist would look up its own version's status.
            'setSecurityPollSuffix("")\n'
            f'newServer({{address="{host}:{port}"}}):setUp()\n'
            f'setLocal("{LOOPBACK}:{self.do53_port}")\n'
            f'addDOHLocal("{LOOPBACK}:{self.port}", "{cert}", "{key}", "{self.path}")\n'
            f"{rules}"
            f'webserver("{LOOPBACK}:{self.web_port}")\n'
            f'setWebserverConfig({{apiKey=hashPassword("{self.api_key}"), '
            f'password=hashPassword("{secrets.token_hex(16)}"), acl="127.0.0.1/32"}})\n'
        )

    def start(self) -> Self:
        binary = need("dnsdist")
        self.dir.mkdir(parents=True, exist_ok=True)
        for _attempt in range(5):
            self.port, self.do53_port, self.web_port = free_port(), free_port(), free_port()
            if len({self.port, self.do53_port, self.web_port}) < 3:
                continue
            conf = self.dir / "dnsdist.conf"
            conf.write_text(self._config())
            with open(self.log_path, "ab") as out:
                self.proc = subprocess.Popen(
                    [binary, "--supervised", "--disable-syslog", "-C", str(conf)],
                    stdout=out,
                    stderr=out,
                    start_new_session=True,
                )
            try:
                _wait_answering(self.do53_port, self.proc, "dnsdist", self.log_path)
                self._wait_listening(self.port)
                self._wait_listening(self.web_port)
                return self
            except BaseException:
                if self.proc.poll() is None or _attempt == 4:
                    self.stop()
                    raise
        raise AssertionError("unreachable")

    def _wait_listening(self, port: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self.proc is not None and self.proc.poll() is None:
            try:
                socket.create_connection((LOOPBACK, port), timeout=1).close()
                return
            except OSError:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=0.05)  # a pause that ends if dnsdist exits
        pytest.fail(f"dnsdist is not listening on {port}:\n{self.log()[-3000:]}", pytrace=False)

    def stop(self) -> None:
        _stop(self.proc)

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def stats(self) -> dict[str, Any]:
        """dnsdist's statistics from its web API (``/api/v1/servers/localhost``)."""
        request = urllib.request.Request(
            f"http://{LOOPBACK}:{self.web_port}/api/v1/servers/localhost",
            headers={"X-API-Key": self.api_key},
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=5) as response:
            data: dict[str, Any] = json.load(response)
        return data

    def counters(self) -> dict[str, int]:
        """The DoH frontend's counters: ``http1-queries``, ``http2-queries``, ..."""
        frontends = self.stats()["dohFrontends"]
        return {k: int(v) for k, v in frontends[0].items() if isinstance(v, int)}
