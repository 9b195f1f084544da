"""Scale: many connections in one guest, and many guests in one process.

    .venv/bin/python bench/scale.py

Prints how wall time and memory grow with each (the README's scale table).
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

import trio
import wassh

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "bench"
VENV = Path(sys.executable).parent


def build() -> None:
    BUILD.mkdir(parents=True, exist_ok=True)
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


def main() -> int:
    build()
    server = subprocess.Popen(
        [str(BUILD / "server_native"), "echo"], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    port = int(server.stdout.readline())
    try:
        print("\n".join(connections_in_one_guest(port)))
        print(
            "\n| guests in one process (10 connections each) | wall (s) | MB/s | "
            "process peak RSS (MiB) |\n|---|---|---|---|"
        )
        for count in (1, 10, 50):
            elapsed, rate = trio.run(guests_in_one_process, port, count)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"| {count} | {elapsed:.3f} | {rate:,.0f} | {rss:.0f} |")
    finally:
        server.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
