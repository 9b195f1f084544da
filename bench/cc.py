"""What ``wassh cc`` costs over the zig call it makes: a configure test program,
compiled and linked, N times each way.

Every call compiles a source of its own (zig caches by content, and a
configure run never compiles the same test twice); the two ways alternate so
that the machine's load falls on both alike. The raw call is the very command
``wassh cc`` runs (zig, the flags, the guest SDK's objects, the arguments); the
difference is the driver: its start, the record check and the output it writes.

    .venv/bin/python bench/cc.py [--calls 500]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from wassh.cc import build_command

WASSH = Path(sys.executable).parent / "wassh"
# What AC_LINK_IFELSE / AC_RUN_IFELSE compile: a few headers and a tiny main.
SOURCE = """\
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
/* %(tag)s */
int main(void) { char buf[32]; snprintf(buf, sizeof buf, "%%d", %(n)d); return strlen(buf) > 20; }
"""


def timed(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500, help="calls each way (default 500)")
    ns = parser.parse_args()
    tag = secrets.token_hex(8)
    driver: list[float] = []
    raw: list[float] = []
    with tempfile.TemporaryDirectory(prefix="wassh-cc-bench-") as tmp:
        os.chdir(tmp)

        def source(kind: str, i: int) -> str:
            name = f"{kind}{i}.c"
            Path(name).write_text(SOURCE % {"tag": f"{tag} {kind} {i}", "n": i})
            return name

        # The first call may build the SDK and write the record: not what is measured.
        subprocess.run([str(WASSH), "cc", source("warm", 0), "-o", "warm"], check=True)
        for i in range(ns.calls):
            driver.append(timed([str(WASSH), "cc", "-O2", source("d", i), "-o", "conftest"]))
            raw.append(timed(build_command(["-O2", source("r", i), "-o", "conftest.wasm"])))
    d, r = statistics.median(driver), statistics.median(raw)
    print(f"calls: {ns.calls} each way (compile + link of a configure test program)")
    print(f"wassh cc -o conftest (runnable program): median {d * 1000:.1f} ms")
    print(f"zig cc, the same command:                median {r * 1000:.1f} ms")
    print(f"ratio: {d / r:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
