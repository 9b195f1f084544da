"""Relay test helpers: `wassh relay` and websockify processes, a fault-injecting proxy."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import trio
import wassh
from suitekit import EchoServer

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listening on port {port}")


class RelayProcess:
    """``wassh relay`` in a subprocess; its JSON log lines are collected."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [str(BIN / "wassh"), "relay", "--listen", "127.0.0.1:0", *args],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stderr is not None
        first = self.proc.stderr.readline()
        try:
            record = json.loads(first)
        except ValueError:
            self.proc.kill()
            raise RuntimeError(f"wassh relay did not start: {first!r}") from None
        assert record["event"] == "listening", record
        self.port: int = record["port"]
        self.logs: list[dict[str, Any]] = [record]
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            try:
                record = json.loads(line)
            except ValueError:
                record = {"event": "non-json", "line": line}
            with self._lock:
                self.logs.append(record)

    def events(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.logs if r.get("event") == name]

    def wait_event(self, name: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.events(name)
            if found:
                return found[-1]
            time.sleep(0.02)
        raise TimeoutError(f"no {name!r} in relay logs: {self.logs}")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class WebsockifyProcess:
    """The real websockify (PyPI package), proxying a fixed target."""

    def __init__(self, target_port: int, *extra: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                str(BIN / "websockify"),
                *extra,
                f"127.0.0.1:{self.port}",
                f"127.0.0.1:{target_port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_listening(self.port)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def SinkServer() -> EchoServer:
    """Accepts connections and reads everything, counting; never sends."""
    return EchoServer(echo=False)


def _abort(stream: trio.SocketStream) -> None:
    """Reset the TCP connection (RST, no FIN): the peer sees an unclean loss."""
    try:
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass


@dataclass
class FaultProxy:
    """A TCP proxy that cuts the current connection each time ``every`` more bytes passed.

    Every byte counts, in either direction, across connections; after ``cuts`` cuts
    it just forwards.
    """

    upstream_port: int
    every: int
    cuts: int
    port: int = 0
    forwarded: int = 0
    cut_at: list[int] = field(default_factory=list)
    connections: int = 0

    async def start(self, nursery: trio.Nursery) -> int:
        listeners = await nursery.start(partial(trio.serve_tcp, self._handle, 0, host="127.0.0.1"))
        self.port = listeners[0].socket.getsockname()[1]
        return self.port

    async def _handle(self, client: trio.SocketStream) -> None:
        self.connections += 1
        try:
            upstream = await trio.open_tcp_stream("127.0.0.1", self.upstream_port)
        except OSError:
            await trio.aclose_forcefully(client)
            return
        async with trio.open_nursery() as nursery:

            async def pump(src: trio.SocketStream, dst: trio.SocketStream) -> None:
                try:
                    while True:
                        data = await src.receive_some(1 << 16)
                        if not data:
                            break
                        before = self.forwarded
                        self.forwarded += len(data)
                        done = len(self.cut_at)
                        if done < self.cuts and self.forwarded >= (done + 1) * self.every:
                            # forward a part, then cut in the middle of the stream
                            self.cut_at.append(self.forwarded)
                            await dst.send_all(data[: (done + 1) * self.every - before])
                            _abort(client)
                            _abort(upstream)
                            nursery.cancel_scope.cancel()
                            return
                        await dst.send_all(data)
                    await dst.send_eof()
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    nursery.cancel_scope.cancel()

            nursery.start_soon(pump, client, upstream)
            nursery.start_soon(pump, upstream, client)
        await trio.aclose_forcefully(client)
        await trio.aclose_forcefully(upstream)


@dataclass
class GuestRun:
    code: int
    stdout: str
    stderr: str


async def run_guest_async(
    wasm: Path, *args: str, timeout: float = 60.0, **options: Any
) -> GuestRun:
    """Run a guest on this trio loop; a hang fails the test instead of blocking the suite."""
    out, err = wassh.Capture(), wassh.Capture()
    with trio.fail_after(timeout):
        code = await wassh.run(
            wasm, [wasm.stem, *args], stdin=b"", stdout=out, stderr=err, **options
        )
    return GuestRun(code, out.text(), err.text())


def relay_config(url: str, protocol: str, **extra: Any) -> wassh.TransportConfig:
    claim = extra.pop("claim", "first-connect")
    ca = extra.pop("ca", None)
    headers = extra.pop("headers", {})
    hosts = extra.pop("hosts", {})
    # The relay plugin's own settings; ``relay_keepalive=1`` style names as the
    # tests pass them lose their prefix (the plugin's keys are ``keepalive``...).
    settings: dict[str, object] = {
        "url": url,
        "protocol": protocol,
        "claim": claim,
        "headers": headers,
        **{k.removeprefix("relay_"): v for k, v in extra.items()},
    }
    if ca is not None:
        settings["ca_file"] = ca
    return wassh.TransportConfig(hosts=hosts, settings={"websocket": settings})


__all__ = [
    "ROOT",
    "FaultProxy",
    "GuestRun",
    "RelayProcess",
    "SinkServer",
    "WebsockifyProcess",
    "free_port",
    "relay_config",
    "run_guest_async",
    "wait_listening",
]


class IndependentRelay(RelayProcess):
    """``tests/independent_relay.py`` (no wassh code) in a subprocess; JSON logs as above."""

    def __init__(self, *args: str) -> None:  # not RelayProcess.__init__: another command
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).parent / "independent_relay.py"), *args],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stderr is not None
        first = self.proc.stderr.readline()
        try:
            record = json.loads(first)
        except ValueError:
            self.proc.kill()
            raise RuntimeError(f"independent relay did not start: {first!r}") from None
        assert record["event"] == "listening", record
        self.port = record["port"]
        self.logs = [record]
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()


# -- several relays behind a load balancer ------------------------------------------------

LOAD_BALANCING_DOC = ROOT / "docs" / "relay-load-balancing.md"
# The documented configs name two relays; tests put their own instances there.
DOC_RELAYS = {"relay-1": "10.0.0.11:8022", "relay-2": "10.0.0.12:8022"}


def doc_blocks(language: str) -> list[str]:
    """The fenced ``language`` blocks of docs/relay-load-balancing.md, in order."""
    import re

    text = LOAD_BALANCING_DOC.read_text()
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def _on_loopback(config: str, relays: dict[str, int]) -> str:
    """The documented config with ``relays`` (instance id -> port) for the doc's two."""
    import re

    pairs = zip(DOC_RELAYS.items(), relays.items(), strict=True)
    for (doc_name, doc_address), (name, port) in pairs:
        config = config.replace(doc_address, f"127.0.0.1:{port}")
        config = re.sub(rf"\b{re.escape(doc_name)}\b", name, config)
    return config


def haproxy_config(port: int, relays: dict[str, int], routing: str = "rules") -> str:
    """The documented haproxy.cfg on loopback (plain ws on ``port``).

    ``routing``: "rules" as documented (a use-server line per relay), "one-rule" (the
    documented single-rule alternative), "none" (no use-server at all: a control,
    where reconnects go round the relays like new sessions).
    """
    assert routing in ("rules", "one-rule", "none"), routing
    full, one_rule = doc_blocks("haproxy")
    lines: list[str] = []
    for line in _on_loopback(full, relays).splitlines():
        stripped = line.strip()
        if stripped.startswith("bind "):
            line = f"    bind 127.0.0.1:{port}"
        elif stripped.startswith("use-server ") and routing != "rules":
            if routing == "one-rule" and one_rule.rstrip() not in lines:
                lines.append(one_rule.rstrip())
            continue
        lines.append(line)
    return "\n".join(lines) + "\n"


def nginx_config(port: int, relays: dict[str, int], directory: Path) -> str:
    """The documented nginx fragment in a whole nginx.conf: loopback, plain, one process."""
    (fragment,) = doc_blocks("nginx")
    fragment = _on_loopback(fragment, relays)
    fragment = fragment.replace("listen 443 ssl;", f"listen 127.0.0.1:{port};")
    fragment = "\n".join(
        line for line in fragment.splitlines() if not line.strip().startswith("ssl_certificate")
    )
    temp = "\n".join(
        f"    {kind}_temp_path {directory / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"daemon off;\nmaster_process off;\npid {directory / 'nginx.pid'};\n"
        f"error_log {directory / 'error.log'} notice;\n"
        f"events {{ worker_connections 1024; }}\n"
        f"http {{\n    access_log off;\n{temp}\n{fragment}\n}}\n"
    )


def haproxy_binary() -> str:
    import shutil

    found = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(found).exists():
        raise RuntimeError("haproxy is not installed: run scripts/system-deps.sh")
    return found


class BalancerProcess:
    """haproxy or nginx in the foreground on a config written to ``directory``."""

    def __init__(self, argv: list[str], config: str, path: Path, port: int) -> None:
        path.write_text(config)
        self.port = port
        self.output = path.with_suffix(".out")
        with self.output.open("w") as out:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        try:
            wait_listening(port)
        except TimeoutError:
            self.close()
            raise RuntimeError(f"{argv[0]} did not start: {self.output.read_text()}") from None

    @classmethod
    def haproxy(
        cls, directory: Path, relays: dict[str, int], routing: str = "rules"
    ) -> BalancerProcess:
        port = free_port()
        path = directory / "haproxy.cfg"
        config = haproxy_config(port, relays, routing)
        return cls([haproxy_binary(), "-f", str(path), "-db"], config, path, port)

    @classmethod
    def nginx(cls, binary: str, directory: Path, relays: dict[str, int]) -> BalancerProcess:
        port = free_port()
        path = directory / "nginx.conf"
        config = nginx_config(port, relays, directory)
        # -e: the error log nginx opens before it reads the config (the default may be
        # unwritable for this user)
        argv = [binary, "-p", str(directory), "-e", str(directory / "error.log"), "-c", str(path)]
        return cls(argv, config, path, port)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(5)


def peak_rss(pid: int | str = "self") -> int:
    """A process's peak resident memory in bytes (VmHWM), 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


__all__ += [
    "BalancerProcess",
    "doc_blocks",
    "haproxy_config",
    "nginx_config",
    "peak_rss",
]
