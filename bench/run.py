"""wassh benchmarks: one command, every server side by side, ratios to native C.

    .venv/bin/python bench/run.py [--quick] [--rounds N] [--only NAME,...]

Servers: native C (gcc), plain Python, ``wassh run`` of the guest, and the
wasmtime CLI running the same program with a preopened listener. Clients are
plain Python sockets (no trio). Latency figures pin client and server to the
same CPU, as cross-CPU wake-ups on small VMs cost ~100 us and drown the signal.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BUILD = ROOT / "build" / "bench"
VENV = Path(sys.executable).parent
WASSH = VENV / "wassh"
WASMTIME = VENV / "wasmtime"
PIN_CPU = 0


def sh(*cmd: str | Path) -> None:
    subprocess.run([str(c) for c in cmd], check=True)


def build() -> None:
    BUILD.mkdir(parents=True, exist_ok=True)
    src = BENCH / "guests" / "server.c"
    push = BENCH / "guests" / "push_client.c"
    sh("gcc", "-O2", "-o", BUILD / "server_native", src)
    sh("gcc", "-O2", "-o", BUILD / "push_native", push)
    # -msimd128 for the wasm builds, as gcc vectorises with SSE2 by default on x86-64:
    # both wasm runtimes run SIMD, so the sink's checksum is not what gets measured.
    wasm_flags = ["-O2", "-msimd128"]
    sh(WASSH, "cc", *wasm_flags, src, "-o", BUILD / "server.wasm")
    sh(WASSH, "cc", *wasm_flags, push, "-o", BUILD / "push.wasm")
    zig = [sys.executable, "-m", "ziglang", "cc", "-target", "wasm32-wasi", *wasm_flags]
    sh(*zig, "-DPREOPENED_LISTENER", src, "-o", BUILD / "server_pre.wasm")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    argv: Callable[[str, int], list[str]]  # (mode, port) -> argv
    prints_port: bool = True


SERVERS = [
    Server("native C", lambda m, p: [str(BUILD / "server_native"), m]),
    Server("Python", lambda m, p: [sys.executable, str(BENCH / "pyserver.py"), m]),
    Server("wassh", lambda m, p: [str(WASSH), "run", str(BUILD / "server.wasm"), "--", m]),
    Server(
        "wasmtime CLI",
        lambda m, p: [
            str(WASMTIME),
            "run",
            "-S",
            "preview2=n",
            "-S",
            f"tcplisten=127.0.0.1:{p}",
            str(BUILD / "server_pre.wasm"),
            m,
        ],
        prints_port=False,
    ),
]


class Running:
    def __init__(self, server: Server, mode: str, pin: bool) -> None:
        port = free_port()
        argv = server.argv(mode, port)
        if pin:
            argv = ["taskset", "-c", str(PIN_CPU), *argv]
        start = time.perf_counter()
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        self.port = int(line) if server.prints_port else port
        while True:  # ready = accepts a connection
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.perf_counter() - start > 30:
                    raise RuntimeError(f"{server.name} did not start") from None
                time.sleep(0.002)
        self.startup = time.perf_counter() - start

    def cpu_ns(self) -> int:
        total = 0
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except OSError:
                pass
        return total

    def peak_rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return 0

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def bulk(port: int, total: int) -> float:
    chunk = bytes(range(256)) * 256
    s = connect(port)
    start = time.perf_counter()
    s.sendall(struct.pack("<Q", total))  # the sink's length header
    sent = 0
    while sent < total:
        sent += s.send(chunk[: min(len(chunk), total - sent)])
    reply = b""
    while len(reply) < 16:
        part = s.recv(16 - len(reply))
        if not part:
            break
        reply += part
    elapsed = time.perf_counter() - start
    count, checksum = struct.unpack("<QQ", reply)
    assert count == total, (count, total)
    assert checksum == sum(range(256)) * (total // 256), "sink checksum mismatch"
    s.close()
    return total / elapsed


def echo(port: int, total: int) -> float:
    chunk = os.urandom(65536)
    s = connect(port)
    got = 0

    def reader() -> None:
        nonlocal got
        buf = bytearray(1 << 20)
        while got < total:
            n = s.recv_into(buf)
            if not n:
                break
            got += n

    start = time.perf_counter()
    t = threading.Thread(target=reader)
    t.start()
    sent = 0
    while sent < total:
        sent += s.send(chunk[: min(len(chunk), total - sent)])
    t.join()
    elapsed = time.perf_counter() - start
    assert got == total
    s.close()
    return total / elapsed


def pingpong(port: int, count: int) -> list[float]:
    s = connect(port)
    times = []
    for _ in range(200):  # warm-up
        s.send(b"x")
        s.recv(1)
    for _ in range(count):
        t0 = time.perf_counter_ns()
        s.send(b"x")
        s.recv(1)
        times.append((time.perf_counter_ns() - t0) / 1000)
    s.close()
    return times


def connect_rate(port: int, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        s = connect(port)
        s.send(b"x")
        assert s.recv(1) == b"x"
        s.close()
    return count / (time.perf_counter() - start)


@dataclass
class Figures:
    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, key: str, value: float) -> None:
        self.values.setdefault(key, []).append(value)

    def median(self, key: str) -> float:
        return statistics.median(self.values[key]) if key in self.values else float("nan")


def measure(server: Server, sizes: dict[str, int], rounds: int) -> Figures:
    fig = Figures()
    for _ in range(rounds):
        run = Running(server, "sink", pin=False)
        fig.add("startup_ms", run.startup * 1000)
        fig.add("bulk_MBps", bulk(run.port, sizes["bulk"]) / 1e6)
        fig.add("rss_MiB", run.peak_rss_kib() / 1024)
        run.stop()
        run = Running(server, "echo", pin=False)
        fig.add("echo_MBps", echo(run.port, sizes["echo"]) / 1e6)
        fig.add("conn_per_s", connect_rate(run.port, sizes["connects"]))
        run.stop()
        run = Running(server, "echo", pin=True)
        os.sched_setaffinity(0, {PIN_CPU})
        try:
            cpu0 = run.cpu_ns()
            times = pingpong(run.port, sizes["pings"])
            cpu = run.cpu_ns() - cpu0
        finally:
            os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
        times.sort()
        fig.add("rtt_median_us", times[len(times) // 2])
        fig.add("rtt_p99_us", times[int(len(times) * 0.99)])
        fig.add("cpu_per_ping_us", cpu / sizes["pings"] / 1000)
        fig.add("rss_MiB", run.peak_rss_kib() / 1024)
        run.stop()
    return fig


def _start_relay(sink_port: int) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [str(WASSH), "relay", "--listen", "127.0.0.1:0", "--allow", f"127.0.0.1:{sink_port}"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    port = int(json.loads(proc.stderr.readline())["port"])
    threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep its log pipe drained
    return proc, port


def _start_websockify(sink_port: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [str(VENV / "websockify"), f"127.0.0.1:{port}", f"127.0.0.1:{sink_port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.02)
    return proc, port


def client_side(sizes: dict[str, int], rounds: int) -> dict[str, float]:
    """A guest client pushing to a native sink: direct, through websockify, through
    ``wassh relay`` (v4); the same program built natively is the reference."""
    out: dict[str, list[float]] = {}
    push = [str(WASSH), "run"]
    for _ in range(rounds):
        sink = Running(SERVERS[0], "sink", pin=False)
        relay, relay_port = _start_relay(sink.port)
        wsfy, wsfy_port = _start_websockify(sink.port)
        cases = [
            ("native C", [str(BUILD / "push_native")]),
            ("wassh, transport_tcp", [*push, str(BUILD / "push.wasm"), "--"]),
            (
                "wassh, websockify",
                [
                    *push,
                    "--relay",
                    f"ws://127.0.0.1:{wsfy_port}/",
                    "--relay-protocol",
                    "websockify",
                    str(BUILD / "push.wasm"),
                    "--",
                ],
            ),
            (
                "wassh, wassh relay v4",
                [
                    *push,
                    "--relay",
                    f"ws://127.0.0.1:{relay_port}/",
                    "--relay-protocol",
                    "corp-relay-v4",
                    str(BUILD / "push.wasm"),
                    "--",
                ],
            ),
        ]
        try:
            for name, argv in cases:
                size = (
                    sizes["bulk"]
                    if "relay" not in name and "websockify" not in name
                    else sizes["relay"]
                )
                done = subprocess.run(
                    [*argv, "127.0.0.1", str(sink.port), str(size)],
                    check=True,
                    capture_output=True,
                    text=True,
                    timeout=600,
                )
                count, seconds = done.stdout.split()
                assert int(count) == size
                out.setdefault(name, []).append(size / float(seconds) / 1e6)
        finally:
            for proc in (relay, wsfy):
                proc.terminate()
                proc.wait()
            sink.stop()
    return {k: statistics.median(v) for k, v in out.items()}


ROWS = [
    ("bulk throughput, guest server (MB/s)", "bulk_MBps", True),
    ("echo throughput, guest server (MB/s)", "echo_MBps", True),
    ("1-byte round trip, median (us)", "rtt_median_us", False),
    ("1-byte round trip, p99 (us)", "rtt_p99_us", False),
    ("connect + echo + close (/s)", "conn_per_s", True),
    ("server CPU per ping-pong (us)", "cpu_per_ping_us", False),
    ("start-up to ready (ms)", "startup_ms", False),
    ("peak RSS (MiB)", "rss_MiB", False),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes, one round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default="", help="comma-separated server names")
    ns = ap.parse_args()
    sizes = {
        "bulk": 512 << 20,
        "echo": 256 << 20,
        "pings": 20000,
        "connects": 2000,
        "relay": 256 << 20,
    }
    rounds = ns.rounds
    if ns.quick:
        sizes = {
            "bulk": 64 << 20,
            "echo": 32 << 20,
            "pings": 2000,
            "connects": 300,
            "relay": 32 << 20,
        }
        rounds = 1
    build()
    servers = [s for s in SERVERS if not ns.only or s.name in ns.only.split(",")]
    results = {s.name: measure(s, sizes, rounds) for s in servers}
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}, "
        f"Python {platform.python_version()}; medians of {rounds} round(s)\n"
    )
    names = [s.name for s in servers]
    head = f"| figure | {' | '.join(names)} |"
    print(head)
    print("|" + "---|" * (len(names) + 1))
    native = results.get("native C")
    for label, key, _higher_is_better in ROWS:
        cells = []
        for name in names:
            v = results[name].median(key)
            cell = f"{v:,.1f}"
            if native is not None and name != "native C" and key not in ("rss_MiB",):
                base = native.median(key)
                cell += f" ({v / base:.2f}x)"
            cells.append(cell)
        print(f"| {label} | {' | '.join(cells)} |")
    client = client_side(sizes, rounds)
    base = client["native C"]
    print("\n| guest client pushing to a native sink | MB/s | ratio to native C |")
    print("|---|---|---|")
    for name, rate in client.items():
        print(f"| {name} | {rate:,.0f} | {rate / base:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
