#!/usr/bin/env python3
"""Relay soak: mixed guest traffic through every kind of relay, with cuts, for as long as asked.

Paths (each guest run takes the next in turn):

* ``lb-v4``: corp-relay-v4 through two ``wassh relay`` instances (``--instance-id a``
  and ``b``) behind a real HAProxy on the configuration in
  docs/relay-load-balancing.md, with a proxy in front that cuts the WebSocket each
  time ``--cut-every`` MiB more passed (the client resumes, by instance);
* ``wassh-websockify``: websockify-style through one ``wassh relay``;
* ``websockify``: the real websockify (``.venv/bin/websockify``), if installed.

Guests alternate between ``netclient bulk`` (send and receive at once) and
``pingpong`` (send 64 KiB, then one recv): both check every byte they get back
from an echo server. ``--sessions`` guests run at once; a new run starts as one
ends, until ``--seconds`` are up. Every 30 s and at the end it reports bytes
verified per path, guest runs, cuts made, reconnects in the relays' logs,
reconnects refused (misrouted), relay log problems (error-level lines, lines
that are no JSON, bad acks or client protocol errors), stalls (a guest that made
no progress for 30 s, or failed) and peak memory (VmHWM) of this process and
each relay. Exit status 1 if any guest stalled or failed, a reconnect was
refused or a relay logged a problem: all must be 0.

Every connection stays on loopback. Usage::

    .venv/bin/python scripts/relay_soak.py --seconds 600 --sessions 6
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from guestbuild import build_guest  # noqa: E402
from relayhelpers import (  # noqa: E402
    BIN,
    BalancerProcess,
    FaultProxy,
    RelayProcess,
    free_port,
    peak_rss,
    relay_config,
    run_guest_async,
    wait_listening,
)
from suitekit import GUESTS, EchoServer  # noqa: E402

MIB = 1 << 20
STALL = 30.0  # seconds without progress that make a guest stalled
REPORT_EVERY = 30.0
SIZES_MIB = (4, 8, 16, 32, 64)
BAD_EVENTS = {"non-json", "v4_bad_reconnect", "v4_client_error", "internal_error"}


@dataclass
class PathStats:
    verified: int = 0  # bytes echoed back and checked by guests that finished cleanly
    runs: Counter[str] = field(default_factory=Counter)  # "bulk ok", "pingpong failed"...


@dataclass
class Soak:
    sessions: int
    paths: list[str]
    netclient: Path
    pingpong: Path
    echoes: list[EchoServer]
    urls: dict[str, list[str]]  # path -> relay URL per slot
    relays: dict[str, RelayProcess]  # name in the report -> process
    others: dict[str, subprocess.Popen[bytes]]  # haproxy, websockify: memory only
    proxy: FaultProxy
    stats: dict[str, PathStats] = field(default_factory=dict)
    stalls: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    next_run: int = 0

    def __post_init__(self) -> None:
        self.stats = {path: PathStats() for path in self.paths}

    # -- one guest run ------------------------------------------------------------------
    def _pick(self) -> tuple[str, str, int]:
        k = self.next_run
        self.next_run += 1
        path = self.paths[k % len(self.paths)]
        kind = ("bulk", "pingpong")[(k // len(self.paths)) % 2]
        return path, kind, random.choice(SIZES_MIB) * MIB

    async def run_once(self, slot: int) -> None:
        path, kind, total = self._pick()
        echo = self.echoes[slot]
        host, port = f"s{slot}.test", str(echo.port)
        config = relay_config(
            self.urls[path][slot],
            "corp-relay-v4" if path == "lb-v4" else "websockify",
            reconnect_delay=0.05,
        )
        args: tuple[str, ...]
        if kind == "bulk":
            wasm, args = self.netclient, ("bulk", host, port, str(total))
            expected = f"sent {total} got {total} bad 0\n"
        else:
            wasm, args = self.pingpong, (host, port, str(total))
            expected = f"sent {total} got {total} bad 0 rounds "
        verdict = "stalled"
        output = ""
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch, echo, scope)
                # the watcher decides when a run is stuck; this only stops a runaway
                r = await run_guest_async(wasm, *args, config=config, timeout=3600)
                nursery.cancel_scope.cancel()
            output = r.stdout + r.stderr
            ok = r.code == 0 and r.stdout.startswith(expected)
            verdict = "ok" if ok else "failed"
        stats = self.stats[path]
        stats.runs[f"{kind} {verdict}"] += 1
        if verdict == "ok":
            stats.verified += total
        else:
            what = f"{path} {kind} {total >> 20} MiB slot {slot}: {verdict} {output.strip()!r}"
            self.stalls.append(what)
            print(f"!! {what}", flush=True)

    async def _watch(self, echo: EchoServer, scope: trio.CancelScope) -> None:
        """Cancel the run once the echo server has seen nothing new for STALL seconds."""
        last, since = -1, trio.current_time()
        while True:
            seen = sum(rec.received for rec in echo.records)
            if seen != last:
                last, since = seen, trio.current_time()
            elif trio.current_time() - since > STALL:
                scope.cancel()
                return
            await trio.sleep(0.5)

    async def slot_loop(self, slot: int, deadline: float) -> None:
        while trio.current_time() < deadline:
            await self.run_once(slot)

    # -- the report -----------------------------------------------------------------------
    def report(self, final: bool = False) -> None:
        elapsed = time.monotonic() - self.started
        head = "final" if final else "so far"
        lines = [f"== relay soak, {head}: {elapsed:.0f} s, {self.sessions} sessions at once"]
        for path, stats in self.stats.items():
            runs = ", ".join(f"{n} {what}" for what, n in sorted(stats.runs.items())) or "none"
            lines.append(
                f"   {path:17} verified {stats.verified / MIB:10.0f} MiB each way; runs: {runs}"
            )
        reconnects = {n: len(r.events("v4_reconnect")) for n, r in self.relays.items()}
        lines.append(
            f"   cuts {len(self.proxy.cut_at)}; reconnects {reconnects}; reconnects refused "
            f"{self.refused()}; relay log problems {len(self.problems())}; "
            f"stalls or failures {len(self.stalls)}"
        )
        memory = self.memory()
        lines.append("   peak RSS: " + ", ".join(f"{n} {v} MiB" for n, v in memory.items()))
        for problem in self.problems()[:5]:
            lines.append(f"   !! relay log: {problem}")
        print("\n".join(lines), flush=True)

    def memory(self) -> dict[str, int]:
        """Peak RSS in MiB: this process (guests and the relay client), then the servers."""
        memory = {"soak (guests, client)": peak_rss()}
        memory |= {f"relay {n}": peak_rss(r.proc.pid) for n, r in self.relays.items()}
        memory |= {n: peak_rss(p.pid) for n, p in self.others.items()}
        return {n: round(v / MIB) for n, v in memory.items()}

    def refused(self) -> int:
        return sum(len(r.events("v4_reconnect_refused")) for r in self.relays.values())

    def problems(self) -> list[dict[str, Any]]:
        """What no relay should log here: errors, tracebacks, protocol trouble."""
        found = []
        for relay in self.relays.values():
            with relay._lock:
                found += [
                    r
                    for r in relay.logs
                    if r.get("level") == "error" or r.get("event") in BAD_EVENTS
                ]
        return found

    def summary(self) -> dict[str, object]:
        return {
            "verified_mib": {p: s.verified // MIB for p, s in self.stats.items()},
            "runs": {p: dict(s.runs) for p, s in self.stats.items()},
            "cuts": len(self.proxy.cut_at),
            "reconnects": {n: len(r.events("v4_reconnect")) for n, r in self.relays.items()},
            "refused": self.refused(),
            "relay_problems": self.problems(),
            "stalls": self.stalls,
            "peak_rss_mib": self.memory(),
        }


async def reporter(soak: Soak) -> None:
    while True:
        await trio.sleep(REPORT_EVERY)
        soak.report()


def relay_args(instance: str) -> list[str]:
    hosts = [a for i in range(64) for a in ("--add-host", f"s{i}.test=127.0.0.1")]
    return ["--instance-id", instance, "--allow", "127.0.0.1", "--allow", "*.test", *hosts]


def start_websockify(
    directory: Path, echoes: list[EchoServer]
) -> tuple[subprocess.Popen[bytes], int]:
    """The real websockify, one port, a token per slot naming that slot's echo server."""
    tokens = directory / "websockify.tokens"
    tokens.write_text("".join(f"s{i}: 127.0.0.1:{e.port}\n" for i, e in enumerate(echoes)))
    port = free_port()
    proc = subprocess.Popen(
        [
            str(BIN / "websockify"),
            "--token-plugin",
            "TokenFile",
            "--token-source",
            str(tokens),
            f"127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_listening(port)
    return proc, port


async def soak_main(args: argparse.Namespace, directory: Path) -> int:
    netclient = build_guest(GUESTS / "net" / "netclient.c", sdk=True)
    pingpong = build_guest(GUESTS / "net" / "pingpong.c", sdk=True)
    # One echo server per slot: its byte count is that slot's guest's progress.
    echoes = [EchoServer() for _ in range(args.sessions)]
    relays: dict[str, RelayProcess] = {}
    others: dict[str, subprocess.Popen[bytes]] = {}
    balancer: BalancerProcess | None = None
    try:
        relays["a"] = RelayProcess(*relay_args("a"))
        relays["b"] = RelayProcess(*relay_args("b"))
        relays["single"] = RelayProcess(*relay_args("single"))
        balancer = BalancerProcess.haproxy(
            directory, {"a": relays["a"].port, "b": relays["b"].port}
        )
        others["haproxy"] = balancer.proc
        single = relays["single"].port
        urls = {
            "wassh-websockify": [f"ws://127.0.0.1:{single}/?host={{host}}&port={{port}}"]
            * args.sessions
        }
        paths = ["lb-v4", "wassh-websockify"]
        if (BIN / "websockify").exists():
            proc, port = start_websockify(directory, echoes)
            others["websockify"] = proc
            urls["websockify"] = [
                f"ws://127.0.0.1:{port}/?token=s{i}" for i in range(args.sessions)
            ]
            paths.append("websockify")
        else:
            print("(no .venv/bin/websockify: the real websockify path is left out)")
        proxy = FaultProxy(balancer.port, every=int(args.cut_every * MIB), cuts=1 << 62)
        async with trio.open_nursery() as nursery:
            port = await proxy.start(nursery)
            urls["lb-v4"] = [f"ws://127.0.0.1:{port}/"] * args.sessions
            soak = Soak(
                args.sessions, paths, netclient, pingpong, echoes, urls, relays, others, proxy
            )
            print(
                f"relay soak: {args.seconds:g} s, {args.sessions} sessions, paths {paths}, "
                f"a cut every {args.cut_every:g} MiB on lb-v4",
                flush=True,
            )
            nursery.start_soon(reporter, soak)
            deadline = trio.current_time() + args.seconds
            async with trio.open_nursery() as slots:
                for slot in range(args.sessions):
                    slots.start_soon(soak.slot_loop, slot, deadline)
            nursery.cancel_scope.cancel()
        soak.report(final=True)
        if args.json:
            Path(args.json).write_text(json.dumps(soak.summary(), indent=2) + "\n")
        return 1 if soak.stalls or soak.refused() or soak.problems() else 0
    finally:
        if balancer is not None:
            balancer.close()
        for proc in others.values():
            proc.kill()
        for relay in relays.values():
            relay.close()
        for echo in echoes:
            echo.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60.0, help="how long (default 60)")
    p.add_argument("--sessions", type=int, default=6, help="guests at once (default 6)")
    p.add_argument(
        "--cut-every", type=float, default=8.0, metavar="MIB", help="lb-v4 cut interval (8)"
    )
    p.add_argument("--json", metavar="FILE", help="also write the final figures here")
    args = p.parse_args()
    if args.sessions < 1 or args.sessions > 64 or args.seconds <= 0 or args.cut_every <= 0:
        p.error("--sessions 1..64, --seconds and --cut-every above 0")
    with TemporaryDirectory(prefix="relay-soak-") as tmp:
        return trio.run(soak_main, args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
