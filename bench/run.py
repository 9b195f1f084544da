"""wassh benchmarks: one command, every server side by side, ratios to native C.

    .venv/bin/python bench/run.py [--quick] [--rounds N] [--only NAME,...]
                                  [--shape event|blocking|both] [--json PATH] [--no-client]
                                  [--chart FILE.svg]
    .venv/bin/python bench/run.py --from FILE.json [--chart FILE.svg]

Two server shapes, each built from one C file natively (gcc), for wassh (``wassh cc``)
and for the wasmtime CLI (a preopened listener, ``-S tcplisten``):

* ``event``: bench/guests/server.c, one poll() over every socket (non-blocking);
* ``blocking``: bench/guests/blocking_server.c, accept then read/write until EOF,
  one connection at a time on blocking sockets, no poll.

Servers (columns): native C, plain Python (bench/pyserver.py in the same shape),
``wassh run`` of the guest, the same with ``WASSH_PURE_PYTHON=1`` (the core without
its optional compiled fast path), and the wasmtime CLI. Every round runs each phase
on every server in turn, so the ratios to native C compare figures taken seconds
apart; medians of 5 rounds by default.
Clients are plain Python sockets (no trio). Latency figures pin client and server
to the same CPU, as cross-CPU wake-ups on small VMs cost ~100 us and drown the
signal. Each figure with a goal says whether wassh meets it, and every figure
whether wassh is behind the wasmtime CLI.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
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

import chart  # bench/chart.py

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BUILD = ROOT / "build" / "bench"
VENV = Path(sys.executable).parent
WASSH = VENV / "wassh"
WASMTIME = VENV / "wasmtime"
PIN_CPU = 0
PURE_ENV = "WASSH_PURE_PYTHON"

# shape -> (C source, binary stem): server_native, server.wasm, server_pre.wasm, ...
SHAPES = {
    "event": ("server.c", "server"),
    "blocking": ("blocking_server.c", "blocking"),
}
SHAPE_LABELS = {"event": "event loop", "blocking": "blocking"}
SHAPE_TITLES = {
    "event": "event-loop shape (bench/guests/server.c: one poll() over every socket)",
    "blocking": (
        "blocking shape (bench/guests/blocking_server.c: accept, read/write until EOF, "
        "one connection at a time)"
    ),
}


def sh(*cmd: str | Path) -> None:
    subprocess.run([str(c) for c in cmd], check=True)


def build() -> None:
    BUILD.mkdir(parents=True, exist_ok=True)
    push = BENCH / "guests" / "push_client.c"
    # -msimd128 for the wasm builds, as gcc vectorises with SSE2 by default on x86-64:
    # both wasm runtimes run SIMD, so the sink's checksum is not what gets measured.
    wasm_flags = ["-O2", "-msimd128"]
    zig = [sys.executable, "-m", "ziglang", "cc", "-target", "wasm32-wasi", *wasm_flags]
    for source, stem in SHAPES.values():
        src = BENCH / "guests" / source
        sh("gcc", "-O2", "-o", BUILD / f"{stem}_native", src)
        sh(WASSH, "cc", *wasm_flags, src, "-o", BUILD / f"{stem}.wasm")
        sh(*zig, "-DPREOPENED_LISTENER", src, "-o", BUILD / f"{stem}_pre.wasm")
    sh("gcc", "-O2", "-o", BUILD / "push_native", push)
    sh(WASSH, "cc", *wasm_flags, push, "-o", BUILD / "push.wasm")


def describe_code() -> str:
    """Which wassh the run measures: where it imports from, and its commit if a checkout."""
    probe = (
        "import wassh\nprint(wassh.__file__)\n"
        "try:\n from wassh import fastpath\nexcept ImportError:\n print('absent')\n"
        "else:\n print('built' if fastpath.built() else 'not built')"
    )
    env = {k: v for k, v in os.environ.items() if k != PURE_ENV}
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    lines = found.stdout.split("\n")
    where = Path(lines[0]).parent.parent if found.returncode == 0 else "?"
    fast = f"compiled fast path {lines[1]}" if found.returncode == 0 else "?"
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        return f"wassh from {where} (not a git checkout), {fast}"
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", "core", "plugins"], capture_output=True, text=True
    ).stdout.strip()
    return (
        f"wassh from {where}, commit {head.stdout.strip()}"
        + (" + uncommitted changes in core/ or plugins/" if dirty else "")
        + f", {fast}"
    )


class MachineShare:
    """How much CPU the rest of the machine took while we ran (a shared machine moves
    the figures): busy time in /proc/stat less our own and our waited-for children's."""

    def __init__(self) -> None:
        self.start = self._busy()
        self.ours = self._ours()
        self.wall = time.monotonic()

    @staticmethod
    def _busy() -> tuple[float, float]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        hz = os.sysconf("SC_CLK_TCK")
        user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
        return (user + nice + system + irq + softirq) / hz, steal / hz

    @staticmethod
    def _ours() -> float:
        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    def report(self) -> str:
        busy, steal = self._busy()
        others = max(0.0, busy - self.start[0] - (self._ours() - self.ours))
        wall = time.monotonic() - self.wall
        cpus = os.cpu_count() or 1
        return (
            f"other processes used {others:.0f} CPU-s of {wall * cpus:.0f} "
            f"({others / (wall * cpus):.0%} of the machine) during the run; "
            f"hypervisor steal {steal - self.start[1]:.0f} s"
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    key: str  # short name for --only
    argv: Callable[[str, str, int], list[str]]  # (shape, mode, port) -> argv
    prints_port: bool = True
    env: dict[str, str] = field(default_factory=dict)  # added to a copy of ours

    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != PURE_ENV}
        env.update(self.env)
        return env


def _stem(shape: str) -> str:
    return SHAPES[shape][1]


def _wassh_argv(shape: str, mode: str, port: int) -> list[str]:
    return [str(WASSH), "run", str(BUILD / f"{_stem(shape)}.wasm"), "--", mode]


SERVERS = [
    Server("native C", "native", lambda sh_, m, p: [str(BUILD / f"{_stem(sh_)}_native"), m]),
    Server(
        "Python",
        "python",
        lambda sh_, m, p: [sys.executable, str(BENCH / "pyserver.py"), m, "0", sh_],
    ),
    Server("wassh", "wassh", _wassh_argv),
    Server("wassh (pure Python)", "wassh-pure", _wassh_argv, env={PURE_ENV: "1"}),
    Server(
        "wasmtime CLI",
        "wasmtime",
        lambda sh_, m, p: [
            str(WASMTIME),
            "run",
            "-S",
            "preview2=n",
            "-S",
            f"tcplisten=127.0.0.1:{p}",
            str(BUILD / f"{_stem(sh_)}_pre.wasm"),
            m,
        ],
        prints_port=False,
    ),
]


class Running:
    def __init__(self, server: Server, shape: str, mode: str, pin: bool) -> None:
        port = free_port()
        argv = server.argv(shape, mode, port)
        if pin:
            argv = ["taskset", "-c", str(PIN_CPU), *argv]
        start = time.perf_counter()
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=server.environ(),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line:
            raise RuntimeError(f"{server.name} ({shape}, {mode}) exited before it was ready")
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
        return statistics.median(self.values[key]) if key in self.values else math.nan


def measure_sink(server: Server, shape: str, sizes: dict[str, int], fig: Figures) -> None:
    run = Running(server, shape, "sink", pin=False)
    try:
        fig.add("startup_ms", run.startup * 1000)
        fig.add("bulk_MBps", bulk(run.port, sizes["bulk"]) / 1e6)
        fig.add("rss_MiB", run.peak_rss_kib() / 1024)
    finally:
        run.stop()


def measure_echo(server: Server, shape: str, sizes: dict[str, int], fig: Figures) -> None:
    run = Running(server, shape, "echo", pin=False)
    try:
        fig.add("echo_MBps", echo(run.port, sizes["echo"]) / 1e6)
        fig.add("conn_per_s", connect_rate(run.port, sizes["connects"]))
    finally:
        run.stop()


def measure_ping(server: Server, shape: str, sizes: dict[str, int], fig: Figures) -> None:
    """Latency and server CPU, client and server pinned to one CPU."""
    run = Running(server, shape, "echo", pin=True)
    os.sched_setaffinity(0, {PIN_CPU})
    try:
        cpu0 = run.cpu_ns()
        times = pingpong(run.port, sizes["pings"])
        cpu = run.cpu_ns() - cpu0
        fig.add("rss_MiB", run.peak_rss_kib() / 1024)
    finally:
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
        run.stop()
    times.sort()
    fig.add("rtt_median_us", times[len(times) // 2])
    fig.add("rtt_p99_us", times[int(len(times) * 0.99)])
    fig.add("cpu_per_ping_us", cpu / sizes["pings"] / 1000)


PHASES = [("sink", measure_sink), ("echo", measure_echo), ("ping", measure_ping)]


def measure(
    servers: list[Server], shape: str, sizes: dict[str, int], rounds: int
) -> dict[str, Figures]:
    """Every round runs each phase (bulk, echo + connects, ping-pong) on every server
    in turn, so a figure's servers are measured seconds apart: a slow minute on a
    shared machine hits them all."""
    results = {s.name: Figures() for s in servers}
    for r in range(rounds):
        t0 = time.perf_counter()
        for phase, fn in PHASES:
            for server in servers:
                try:
                    fn(server, shape, sizes, results[server.name])
                except Exception as e:  # one server failing leaves its cells empty
                    print(
                        f"  {shape} round {r + 1}, {phase}: {server.name} failed: {e!r}",
                        file=sys.stderr,
                    )
        print(
            f"  {shape} round {r + 1}/{rounds} ({time.perf_counter() - t0:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    return results


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
        sink = Running(SERVERS[0], "event", "sink", pin=False)
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


@dataclass
class Row:
    label: str
    key: str
    higher_is_better: bool
    goal: float | None = None  # ratio to native C (a time ratio for `as_time`)
    fmt: str = ",.1f"
    ratio: bool = True  # print the ratio to native C
    as_time: bool = False  # a rate whose goal is on the time per operation

    def ratio_to(self, value: float, native: float) -> float:
        """The ratio the goal is on: value/native, or native/value for `as_time`."""
        return native / value if self.as_time else value / native

    def goal_text(self) -> str:
        if self.goal is None:
            return ""
        if self.as_time:
            return f"time ≤ {self.goal:g}x"
        return f"{'≥' if self.higher_is_better else '≤'} {self.goal:g}x"

    def meets(self, value: float, native: float) -> bool | None:
        if self.goal is None or math.isnan(value) or math.isnan(native):
            return None
        r = round(self.ratio_to(value, native), 2)  # as printed: "0.95x" meets "≥ 0.95x"
        if self.as_time or not self.higher_is_better:
            return r <= self.goal
        return r >= self.goal

    def not_behind(self, value: float, other: float) -> bool | None:
        if math.isnan(value) or math.isnan(other):
            return None
        return value >= other if self.higher_is_better else value <= other


# The goals per shape, from issue 13.
ROWS = [
    Row("bulk to a sink (MB/s)", "bulk_MBps", True, 0.95, ",.0f"),
    Row("echo (MB/s)", "echo_MBps", True, 0.95, ",.0f"),
    Row("1-byte round trip, median (µs)", "rtt_median_us", False, 1.2),
    Row("1-byte round trip, p99 (µs)", "rtt_p99_us", False),
    Row("connect + echo + close (/s)", "conn_per_s", True, 1.3, ",.0f", as_time=True),
    Row("server CPU per ping-pong (µs)", "cpu_per_ping_us", False, 1.3),
    Row("start-up to ready (ms)", "startup_ms", False),
    Row("peak RSS (MiB)", "rss_MiB", False, ratio=False),
]

MARK = {True: "✓", False: "✗", None: "?"}


def table(shape: str, results: dict[str, Figures]) -> tuple[list[str], str]:
    """The markdown table of one shape, and its one-line verdict."""
    names = list(results)
    native = results.get("native C")
    has_pure = "wassh (pure Python)" in results
    has_cli = "wasmtime CLI" in results and "wassh" in results
    goal_head = "goal met: wassh / pure" if has_pure else "goal met: wassh"
    lines = [
        f"| figure ({SHAPE_LABELS[shape]}) | {' | '.join(names)} | goal | {goal_head} "
        "| wassh vs wasmtime CLI |",
        "|" + "---|" * (len(names) + 4),
    ]
    met: dict[str, list[bool]] = {"wassh": [], "wassh (pure Python)": []}
    behind: list[str] = []
    for row in ROWS:
        cells = []
        base = native.median(row.key) if native is not None else math.nan
        for name in names:
            v = results[name].median(row.key)
            if math.isnan(v):
                cells.append("n/a")
                continue
            cell = format(v, row.fmt)
            if name != "native C" and row.ratio and not math.isnan(base):
                if row.as_time:
                    cell += f" ({v / base:.2f}x: {row.ratio_to(v, base):.2f}x the time)"
                else:
                    cell += f" ({v / base:.2f}x)"
            cells.append(cell)
        marks = []
        for name in ("wassh", "wassh (pure Python)") if has_pure else ("wassh",):
            ok = row.meets(results[name].median(row.key), base) if name in results else None
            if ok is not None:
                met[name].append(ok)
            marks.append(MARK[ok])
        goal_cell = " / ".join(marks) if row.goal is not None else ""
        vs_cell = ""
        if has_cli:
            ahead = row.not_behind(
                results["wassh"].median(row.key), results["wasmtime CLI"].median(row.key)
            )
            if ahead is not None:
                vs_cell = "✓ not behind" if ahead else "✗ behind"
                if not ahead:
                    behind.append(row.label.split(" (")[0])
        lines.append(
            f"| {row.label} | {' | '.join(cells)} | {row.goal_text()} | {goal_cell} | {vs_cell} |"
        )
    verdict = []
    for name, oks in met.items():
        if oks:
            verdict.append(f"{name} meets {sum(oks)} of {len(oks)} goals")
    if has_cli:
        verdict.append(
            "wassh is behind the wasmtime CLI in "
            + (f"{len(behind)} figure(s): {'; '.join(behind)}" if behind else "no figure")
        )
    return lines, f"{SHAPE_LABELS[shape]} shape: " + "; ".join(verdict) + "."


class SavedError(ValueError):
    """A results file that is not what ``--json`` writes; the message is one line."""


@dataclass
class Saved:
    """One run's figures, as ``--json`` writes them and ``--from`` reads them back."""

    machine: str
    rounds: int
    sizes: dict[str, int]
    shapes: dict[str, dict[str, Figures]]  # shape -> server -> figures
    client: dict[str, float] = field(default_factory=dict)  # pushing client -> MB/s
    conditions: str = ""  # how busy the machine was
    date: str = ""
    run_time: str = ""

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"machine": self.machine, "rounds": self.rounds}
        out["sizes"] = self.sizes
        for shape, results in self.shapes.items():
            out[shape] = {name: fig.values for name, fig in results.items()}
        if self.client:
            out["client"] = self.client
        out.update(conditions=self.conditions, date=self.date, run_time=self.run_time)
        return out


def _numbers(value: object, where: str) -> list[float]:
    if not isinstance(value, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value
    ):
        raise SavedError(f"{where}: expected a list of finite numbers")
    return [float(v) for v in value]


def _mapping(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise SavedError(f"{where}: expected an object")
    return {str(k): v for k, v in value.items()}


def _string(data: dict[str, object], key: str) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise SavedError(f"{key}: expected a string")
    return value


def read_saved(path: Path) -> Saved:
    """The results ``--json`` saved at ``path``; SavedError (or OSError) if they are not."""
    try:
        data = _mapping(json.loads(path.read_text(encoding="utf-8")), "the file")
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SavedError(f"not JSON ({e})") from None
    rounds = data.get("rounds")
    if not isinstance(rounds, int) or isinstance(rounds, bool):
        raise SavedError("rounds: expected an integer")
    sizes = {
        k: int(v) for k, v in _mapping(data.get("sizes", {}), "sizes").items() if isinstance(v, int)
    }
    shapes: dict[str, dict[str, Figures]] = {}
    for shape in SHAPES:
        if shape not in data:
            continue
        shapes[shape] = {}
        for server, values in _mapping(data[shape], shape).items():
            keys = _mapping(values, f"{shape}.{server}")
            shapes[shape][server] = Figures(
                {k: _numbers(v, f"{shape}.{server}.{k}") for k, v in keys.items()}
            )
    if not shapes:
        raise SavedError(f"no figures: none of {', '.join(SHAPES)}")
    client = {}
    for name, rate in _mapping(data.get("client", {}), "client").items():
        if not isinstance(rate, int | float) or isinstance(rate, bool) or not math.isfinite(rate):
            raise SavedError(f"client.{name}: expected a number")
        client[name] = float(rate)
    return Saved(
        machine=_string(data, "machine"),
        rounds=rounds,
        sizes=sizes,
        shapes=shapes,
        client=client,
        conditions=_string(data, "conditions"),
        date=_string(data, "date"),
        run_time=_string(data, "run_time"),
    )


def report(saved: Saved) -> list[str]:
    """The printed report: the machine, how busy it was, then every table."""
    lines = ["", saved.machine]
    if saved.conditions:
        lines.append(saved.conditions)
    for shape, results in saved.shapes.items():
        rows, verdict = table(shape, results)
        lines += ["", SHAPE_TITLES[shape], "", *rows, "", verdict]
    if saved.client:
        base = saved.client.get("native C", math.nan)
        lines += [
            "",
            "| guest client pushing to a native sink | MB/s | ratio to native C |",
            "|---|---|---|",
        ]
        for name, rate in saved.client.items():
            lines.append(f"| {name} | {rate:,.0f} | {rate / base:.2f}x |")
    return lines


def _split_unit(label: str) -> tuple[str, str]:
    """ "echo (MB/s)" -> ("echo", "MB/s")."""
    title, _, unit = label.rpartition(" (")
    return (title, unit.rstrip(")")) if title else (label, "")


def _bar_text(value: float, fmt: str, unit: str, native: float | None) -> str:
    if math.isnan(value):
        return "n/a"
    text = f"{format(value, fmt)} {unit}".replace(" /s", "/s")
    if native is not None and not math.isnan(native) and native > 0:
        text += f" ({value / native:.2f}x native)"
    return text


def _size_text(what: str, size: int) -> str:
    """Bytes in MiB; pings and connects are counts."""
    if what in ("pings", "connects") or size % (1 << 20):
        return f"{size:,}"
    return f"{size >> 20:,} MiB"


def chart_svg(saved: Saved) -> str:
    """The chart of a run: one group per figure, a panel per shape, a bar per server."""
    groups = []
    for row in ROWS:
        title, unit = _split_unit(row.label)
        panels = []
        for shape, results in saved.shapes.items():
            native = results.get("native C")
            base = native.median(row.key) if native is not None and row.ratio else None
            bars = [
                chart.Bar(
                    name,
                    fig.median(row.key),
                    _bar_text(
                        fig.median(row.key), row.fmt, unit, None if name == "native C" else base
                    ),
                )
                for name, fig in results.items()
            ]
            panels.append(chart.Panel(f"{SHAPE_LABELS[shape]} shape", bars))
        better = "higher is better" if row.higher_is_better else "lower is better"
        groups.append(chart.Group(f"{title} ({unit})", better, panels))
    if saved.client:
        base_rate = saved.client.get("native C")
        bars = [
            chart.Bar(
                name,
                rate,
                _bar_text(rate, ",.0f", "MB/s", None if name == "native C" else base_rate),
            )
            for name, rate in saved.client.items()
        ]
        groups.append(
            chart.Group(
                "guest client pushing to a native sink (MB/s)",
                "higher is better",
                [chart.Panel("direct and through relays", bars)],
            )
        )
    sizes = ", ".join(f"{k} {_size_text(k, v)}" for k, v in saved.sizes.items())
    notes = [
        *saved.machine.split("\n"),
        *([saved.conditions] if saved.conditions else []),
        f"sizes: {sizes}" if sizes else "",
        " ".join(
            x for x in (saved.date, f"run time: {saved.run_time}" if saved.run_time else "") if x
        ),
    ]
    return chart.render(
        "wassh benchmarks (bench/run.py): medians, ratios to native C from the same run",
        [n for n in notes if n],
        groups,
    )


def write_chart(saved: Saved, path: Path) -> int:
    """Draws the chart at ``path``: the exit status (2, with one line, if it cannot be written)."""
    try:
        path.write_text(chart_svg(saved), encoding="utf-8")
    except OSError as e:
        print(f"run.py: --chart {path}: {e}", file=sys.stderr)
        return 2
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="small sizes, one round")
    ap.add_argument("--rounds", type=int, default=5, help="rounds (medians of; default 5)")
    ap.add_argument(
        "--only",
        default="",
        help="comma-separated servers, by name or key: "
        + ", ".join(f"{s.key} ({s.name})" for s in SERVERS),
    )
    ap.add_argument("--shape", choices=("event", "blocking", "both"), default="both")
    ap.add_argument("--json", type=Path, help="also write every round's figures here")
    ap.add_argument("--no-client", action="store_true", help="skip the client-side (push) table")
    ap.add_argument("--chart", type=Path, metavar="FILE.svg", help="also draw the results here")
    ap.add_argument(
        "--from",
        dest="saved",
        type=Path,
        metavar="FILE.json",
        help="report (and --chart) the results --json saved there; runs no benchmark",
    )
    ns = ap.parse_args()
    if ns.saved is not None:
        try:
            saved = read_saved(ns.saved)
        except (OSError, SavedError) as e:
            print(f"run.py: --from {ns.saved}: {e}", file=sys.stderr)
            return 2
        print("\n".join(report(saved)))
        return write_chart(saved, ns.chart) if ns.chart else 0
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
    wanted = {w.strip() for w in ns.only.split(",") if w.strip()}
    servers = [s for s in SERVERS if not wanted or s.name in wanted or s.key in wanted]
    unknown = wanted - {s.name for s in SERVERS} - {s.key for s in SERVERS}
    if unknown or not servers:
        ap.error(f"--only: unknown server(s) {sorted(unknown)}")
    shapes = ["event", "blocking"] if ns.shape == "both" else [ns.shape]
    started = time.perf_counter()
    load0 = os.getloadavg()[0]  # before our own build
    share = MachineShare()
    build()
    machine = (
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}, "
        f"Python {platform.python_version()}; medians of {rounds} round(s)\n{describe_code()}"
    )
    saved = Saved(machine, rounds, sizes, {})
    timings: list[str] = []
    for shape in shapes:
        t0 = time.perf_counter()
        results = measure(servers, shape, sizes, rounds)
        timings.append(f"{shape} shape {time.perf_counter() - t0:.0f} s")
        saved.shapes[shape] = results
        lines, verdict = table(shape, results)
        print("\n".join(["", *lines, "", verdict]), file=sys.stderr, flush=True)
    if not ns.no_client:
        t0 = time.perf_counter()
        saved.client = client_side(sizes, rounds)
        timings.append(f"client side {time.perf_counter() - t0:.0f} s")
    timings.append(f"total {time.perf_counter() - started:.0f} s")
    # Anything else running on the machine moves the figures: say how busy it was.
    saved.conditions = (
        f"1-minute load average at start {load0:.2f}, at end "
        f"{os.getloadavg()[0]:.2f}; {share.report()}"
    )
    saved.date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    saved.run_time = ", ".join(timings)
    print("\n".join(report(saved)))
    print(f"\nrun time: {saved.run_time}")
    if ns.json:
        ns.json.write_text(json.dumps(saved.to_json(), indent=1))
    return write_chart(saved, ns.chart) if ns.chart else 0


if __name__ == "__main__":
    sys.exit(main())
