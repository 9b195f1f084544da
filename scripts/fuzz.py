#!/usr/bin/env python3
"""Fuzz every host import through a hostile guest for longer than the test suite does.

The machinery is the suite's own (``tests/fuzzguest.py``): a generated guest
that imports every function the runtime defines, a fresh process per example
with a descriptor of every kind, network traffic held to loopback, and a
failure for any host traceback, escaped exception, printed output or hang.
This script runs the fixed sweep once, then hypothesis examples in batches of
new seeds until the budget is spent, and reports::

    calls made, tracebacks found (must be 0), peak RSS

Usage: ``.venv/bin/python scripts/fuzz.py --seconds 600`` or ``--calls 100000``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fuzzguest import Example, Fuzzer, peak_rss_mib  # noqa: E402
from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from suitekit import EchoServer  # noqa: E402


def _has_terminal() -> bool:
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError:
        return False
    return True


def _rerun_without_terminal() -> int:
    """Run this script again in a session of its own: a guest opening /dev/tty must
    not reach the terminal the fuzz was started from."""
    env = dict(os.environ, WASSH_FUZZ_DETACHED="1")
    child = subprocess.Popen(
        [sys.executable, *sys.argv], env=env, stdin=subprocess.DEVNULL, start_new_session=True
    )
    try:
        return child.wait()
    except KeyboardInterrupt:
        child.terminate()
        return child.wait()


class Budget:
    def __init__(self, calls: int | None, seconds: float | None) -> None:
        self.calls, self.seconds = calls, seconds
        self.start = time.monotonic()

    def spent(self, fuzzer: Fuzzer) -> bool:
        if self.calls is not None and fuzzer.calls_made >= self.calls:
            return True
        return self.seconds is not None and time.monotonic() - self.start >= self.seconds


def _batch(fuzzer: Fuzzer, n: int, max_calls: int, salt: int) -> str | None:
    """One batch of ``n`` examples from seed ``salt``; the shrunk failure, if any.

    The budget is checked between batches only: an example replayed while
    shrinking must run as it did the first time.
    """

    @seed(salt)
    @settings(
        max_examples=n,
        deadline=None,
        database=None,
        print_blob=False,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def run(data: st.DataObject) -> None:
        example: Example = data.draw(fuzzer.strategy(max_calls))
        fuzzer.run_example(example)

    try:
        run()
    except Exception as exc:  # the shrunk failure, or hypothesis saying it would not repeat
        return f"{type(exc).__name__}: {exc}"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    budget_group = parser.add_mutually_exclusive_group()
    budget_group.add_argument("--calls", type=int, help="stop after this many host calls")
    budget_group.add_argument("--seconds", type=float, help="stop after this long")
    parser.add_argument("--seed", type=int, default=int(time.time()), help="first batch's seed")
    parser.add_argument("--batch", type=int, default=25, help="examples per seed")
    parser.add_argument("--max-calls", type=int, default=8, help="calls per example, at most")
    parser.add_argument("--no-sweep", action="store_true", help="skip the fixed sweep")
    args = parser.parse_args()
    if args.calls is None and args.seconds is None:
        args.seconds = 60.0
    if _has_terminal() and not os.environ.get("WASSH_FUZZ_DETACHED"):
        return _rerun_without_terminal()

    logging.getLogger("wassh").propagate = False  # failures are collected, not printed twice
    server = EchoServer()
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="wassh-fuzz-") as root:
        fuzzer = Fuzzer(Path(root), server.port)
        budget = Budget(args.calls, args.seconds)
        print(f"fuzzing {len(fuzzer.imports)} imports, seed {args.seed}", flush=True)
        if not args.no_sweep:
            failures += [f"sweep: {failure}" for failure in fuzzer.sweep()]
        salt = args.seed
        while not budget.spent(fuzzer):
            failure = _batch(fuzzer, args.batch, args.max_calls, salt)
            if failure is not None:
                failures.append(f"seed {salt}: {failure}")
            salt += 1
        elapsed = time.monotonic() - budget.start
    server.close()

    for failure in failures:
        print(f"\n--- failure ---\n{failure}")
    print(
        f"\ncalls made: {fuzzer.calls_made} in {elapsed:.0f} s "
        f"({fuzzer.worlds} processes, {len(fuzzer.per_import)} imports called)\n"
        f"tracebacks found: {len(failures)}\n"
        f"peak RSS: {peak_rss_mib():.0f} MiB",
        flush=True,
    )
    return 1 if failures else 0


if __name__ == "__main__":
    code = main()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    # Skip interpreter teardown: wasmtime objects finalised after their library is
    # unloaded print noise that is not the fuzz's finding.
    os._exit(code)
