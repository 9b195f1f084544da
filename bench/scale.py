"""Scale: many connections in one guest, and many guests in one process.

    .venv/bin/python bench/scale.py [--quick] [--rounds N] [--only conns,guests,busy]

Prints how wall time and memory grow with each (the README's scale tables):

* ``conns``: connections in one guest (bench/guests/fan_client.c against a native echo
  server), native C and wassh;
* ``guests``: guests in one process, each a fan client with 10 connections;
* ``busy``: busy guests in one process, each pushing bytes to a native sink
  (bench/guests/push_client.c, the sink of bench/guests/server.c): total MB/s for
  1, 2, 4 and 10 guests, for wassh and for wassh with ``WASSH_PURE_PYTHON=1`` (the
  core without its optional compiled fast path), each variant in a fresh process
  as the variable is read at import; native C runs as many push processes. The goal
  (issue 13): 10 busy guests move at least 1.5x the bytes of one guest.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import trio
import wassh
from run import MachineShare, describe_code  # bench/run.py

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "bench"
VENV = Path(sys.executable).parent
PURE_ENV = "WASSH_PURE_PYTHON"
BUSY_GOAL = 1.5  # 10 busy guests / 1 busy guest, total bytes per second


def build() -> None:
    BUILD.mkdir(parents=True, exist_ok=True)
    push = ROOT / "bench" / "guests" / "push_client.c"
    subprocess.run(["gcc", "-O2", "-o", str(BUILD / "push_native"), str(push)], check=True)
    # -msimd128 as bench/run.py builds it (gcc vectorises with SSE2 on x86-64)
    subprocess.run(
        [str(VENV / "wassh"), "cc", "-O2", "-msimd128", str(push), "-o", str(BUILD / "push.wasm")],
        check=True,
    )
    src = ROOT / "bench" / "guests" / "fan_client.c"
    subprocess.run(["gcc", "-O2", "-o", str(BUILD / "fan_native"), str(src)], check=True)
    subprocess.run(
        [str(VENV / "wassh"), "cc", "-O2", str(src), "-o", str(BUILD / "fan.wasm")], check=True
    )
    subprocess.run(
        [
            "gcc",
            "-O2",
            "-o",
            str(BUILD / "server_native"),
            str(ROOT / "bench" / "guests" / "server.c"),
        ],
        check=True,
    )


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def connections_in_one_guest(port: int) -> list[str]:
    rows = [
        "| connections in one guest | native C (s) | wassh (s) | ratio | wassh peak RSS (MiB) |",
        "|---|---|---|---|---|",
    ]
    for conns in (10, 100, 1000):
        args = ["127.0.0.1", str(port), str(conns), "20"]
        native = float(
            subprocess.run(
                [str(BUILD / "fan_native"), *args], check=True, capture_output=True, text=True
            ).stdout.split()[0]
        )
        proc = subprocess.Popen(
            [
                "/usr/bin/time",
                "-f",
                "%M",
                str(VENV / "wassh"),
                "run",
                str(BUILD / "fan.wasm"),
                "--",
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        out, err = proc.communicate()
        guest = float(out.split()[0])
        rss = int(err.strip().splitlines()[-1]) / 1024
        rows.append(
            f"| {conns} (4 KiB x 20 rounds each) | {native:.3f} | {guest:.3f} | "
            f"{guest / native:.2f}x | {rss:.0f} |"
        )
    return rows


async def guests_in_one_process(port: int, count: int) -> tuple[float, float]:
    module = wassh.prepare(BUILD / "fan.wasm").module  # compile once, share
    start = time.perf_counter()
    outs = [wassh.Capture() for _ in range(count)]
    async with trio.open_nursery() as nursery:
        for out in outs:
            nursery.start_soon(
                lambda o=out: wassh.run(
                    module, ["fan", "127.0.0.1", str(port), "10", "50"], stdout=o
                )
            )
    elapsed = time.perf_counter() - start
    moved = sum(int(o.text().split()[1]) for o in outs)
    assert moved == count * 10 * 50 * 4096
    return elapsed, moved / elapsed / 1e6


async def busy_guests(port: int, count: int, size: int, chunk: int) -> dict[str, float]:
    """``count`` push guests in this process, each pushing ``size`` bytes to the sink
    in ``chunk``-byte writes."""
    module = wassh.prepare(BUILD / "push.wasm").module  # compile once, share
    outs = [wassh.Capture() for _ in range(count)]
    codes: list[int] = []

    async def one(out: wassh.Capture) -> None:
        argv = ["push", "127.0.0.1", str(port), str(size), str(chunk)]
        codes.append(await wassh.run(module, argv, stdout=out))

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for out in outs:
            nursery.start_soon(partial(one, out))
    elapsed = time.perf_counter() - start
    assert codes == [0] * count, codes
    moved = sum(int(o.text().split()[0]) for o in outs)
    assert moved == count * size, (moved, count * size)
    return {
        "wall": elapsed,
        "MBps": moved / elapsed / 1e6,
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec from our parent
        "rss_MiB": rss_mib(os.getpid()),
    }


def busy_native(port: int, count: int, size: int, chunk: int) -> dict[str, float]:
    """The reference: ``count`` native push processes at once."""
    argv = [str(BUILD / "push_native"), "127.0.0.1", str(port), str(size), str(chunk)]
    start = time.perf_counter()
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(count)]
    outs = [p.communicate()[0] for p in procs]
    elapsed = time.perf_counter() - start
    assert all(p.returncode == 0 for p in procs)
    moved = sum(int(o.split()[0]) for o in outs)
    return {"wall": elapsed, "MBps": moved / elapsed / 1e6, "rss_MiB": math.nan}


BUSY_VARIANTS = {"wassh": {}, "wassh (pure Python)": {PURE_ENV: "1"}}


def busy_in_subprocess(
    variant: str, port: int, count: int, size: int, chunk: int
) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k != PURE_ENV}
    env.update(BUSY_VARIANTS[variant])
    done = subprocess.run(
        [sys.executable, __file__, "--busy-worker", *map(str, (port, count, size, chunk))],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return dict(json.loads(done.stdout.splitlines()[-1]))


def busy_table(port: int, counts: list[int], total: int, chunk: int, rounds: int) -> list[str]:
    """Total MB/s of N busy guests; each round runs every (N, variant) in turn."""
    columns = ["native C (N processes)", *BUSY_VARIANTS]
    got: dict[tuple[str, int], list[dict[str, float]]] = {}
    for variant in BUSY_VARIANTS:  # warm-up: the module cache, the page cache
        busy_in_subprocess(variant, port, 1, 1 << 20, chunk)
    for r in range(rounds):
        for count in counts:
            size = max(total // count, 1 << 20)  # every case moves about `total` bytes
            for col in columns:
                if col.startswith("native C"):
                    fig = busy_native(port, count, size, chunk)
                else:
                    fig = busy_in_subprocess(col, port, count, size, chunk)
                got.setdefault((col, count), []).append(fig)
                print(
                    f"  busy round {r + 1}/{rounds}, {chunk} B writes: {count} x {col}: "
                    f"{fig['MBps']:,.0f} MB/s in {fig['wall']:.2f} s",
                    file=sys.stderr,
                    flush=True,
                )

    def med(col: str, count: int, key: str) -> float:
        return statistics.median(f[key] for f in got[(col, count)])

    rows = [
        f"| busy guests in one process, pushing to a native sink in {chunk >> 10} KiB "
        "writes (MB/s in all) "
        f"| {' | '.join(columns)} | wassh peak RSS (MiB) |",
        "|" + "---|" * (len(columns) + 2),
    ]
    first = counts[0]
    for count in counts:
        cells = []
        for col in columns:
            rate = med(col, count, "MBps")
            cell = f"{rate:,.0f}"
            if count != first:
                cell += f" ({rate / med(col, first, 'MBps'):.2f}x)"
            cells.append(cell)
        rows.append(f"| {count} | {' | '.join(cells)} | {med('wassh', count, 'rss_MiB'):.0f} |")
    if first == 1 and 10 in counts:
        marks = []
        for col in columns:
            ratio = med(col, 10, "MBps") / med(col, 1, "MBps")
            ok = (
                ""
                if col.startswith("native C")
                else (" ✓" if round(ratio, 2) >= BUSY_GOAL else " ✗")
            )
            marks.append(f"{ratio:.2f}x{ok}")
        rows.append(f"| 10 guests / 1 guest (goal ≥ {BUSY_GOAL}x) | {' | '.join(marks)} | |")
        # What the machine allows: N native processes share the same 2 cores and sink.
        native10 = med(columns[0], 10, "MBps")
        vs = [f"{med(col, 10, 'MBps') / native10:.2f}x" for col in columns[1:]]
        rows.append(f"| 10 guests / 10 native processes | 1.00x | {' | '.join(vs)} | |")
    rows.append(
        f"\n(each case moves {total >> 20} MiB in all, split evenly between its guests; "
        f"medians of {rounds} round(s); ratios in brackets to 1 guest)"
    )
    return rows


def start_server(mode: str) -> tuple[subprocess.Popen[str], int]:
    server = subprocess.Popen(
        [str(BUILD / "server_native"), mode], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    return server, int(server.stdout.readline())


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="small sizes, one round")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the busy figure")
    ap.add_argument("--only", default="conns,guests,busy", help="tables: conns,guests,busy")
    ap.add_argument("--busy", default="1,2,4,10", help="guest counts of the busy figure")
    ap.add_argument(
        "--chunks", default="65536,4096", help="write sizes of the busy figure (a table each)"
    )
    ap.add_argument("--busy-worker", nargs=4, type=int, help=argparse.SUPPRESS)
    ns = ap.parse_args()
    if ns.busy_worker:  # one busy case in this process: PORT COUNT SIZE CHUNK
        print(json.dumps(trio.run(busy_guests, *ns.busy_worker)))
        return 0
    parts = set(ns.only.split(","))
    total, rounds = (1 << 30, ns.rounds) if not ns.quick else (128 << 20, 1)
    started = time.perf_counter()
    load0 = os.getloadavg()[0]  # before our own build
    share = MachineShare()
    build()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}, "
        f"Python {platform.python_version()}\n{describe_code()}"
    )
    timings = []
    server, port = start_server("echo")
    try:
        if "conns" in parts:
            t0 = time.perf_counter()
            print("\n" + "\n".join(connections_in_one_guest(port)))
            timings.append(f"conns {time.perf_counter() - t0:.0f} s")
        if "guests" in parts:
            t0 = time.perf_counter()
            print(
                "\n| guests in one process (10 connections each) | wall (s) | MB/s | "
                "process peak RSS (MiB) |\n|---|---|---|---|"
            )
            for count in (1, 10, 50):
                elapsed, rate = trio.run(guests_in_one_process, port, count)
                rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                print(f"| {count} | {elapsed:.3f} | {rate:,.0f} | {rss:.0f} |")
            timings.append(f"guests {time.perf_counter() - t0:.0f} s")
    finally:
        server.kill()
        server.wait()
    if "busy" in parts:
        t0 = time.perf_counter()
        sink, sink_port = start_server("sink")
        try:
            counts = [int(c) for c in ns.busy.split(",")]
            for chunk in (int(c) for c in ns.chunks.split(",")):
                rows = busy_table(sink_port, counts, total, chunk, rounds)
                print("\n" + "\n".join(rows), flush=True)
        finally:
            sink.kill()
            sink.wait()
        timings.append(f"busy {time.perf_counter() - t0:.0f} s")
    timings.append(f"total {time.perf_counter() - started:.0f} s")
    print(
        f"\n1-minute load average at start {load0:.2f}, at end {os.getloadavg()[0]:.2f}; "
        f"{share.report()}"
    )
    print(f"\nrun time: {', '.join(timings)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
