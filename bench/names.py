"""Name lookups: what a guest's getaddrinfo costs through each resolver path.

    .venv/bin/python bench/names.py [--count N] [--json]

Runs bench/guests/lookup_client.c (built with ``wassh cc``), which times each
getaddrinfo of N distinct names ("first") and then of the same names again
("again"), through:

* ``fake DNS``: no resolver plugin, the default (reserved addresses, nothing asked);
* ``table plugin``: a resolver plugin answering from memory: the core's own cost of
  a plugin lookup (the hop to the trio loop and back);
* ``dns:// UDP``: wassh-resolver-dns against Debian's dnsmasq on loopback;
* ``dns:// TCP``: the same behind a front that truncates every UDP answer, so each
  lookup falls back to TCP (as a large answer does);
* ``DoH HTTP/2`` and ``DoH HTTP/1.1``: RFC 8484 through Debian's dnsdist in front
  of that dnsmasq, TLS with a test CA.

Beside each network path, ``dnspython alone`` makes the same queries (AAAA then A,
as the plugin does for AF_UNSPEC) from this Python process without wassh, a new
connection per lookup as the plugin's: what the host adds is the difference. The
dnsmasq used caches nothing, so every "first" lookup reaches it; "again" is
answered from the plugin's TTL cache (or the core's one-second reuse). Needs
dnsmasq-base and dnsdist (scripts/system-deps). Figures are microseconds, median
and 90th percentile, with the CPU other processes took during the run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.rdatatype
import httpx2
import trio
import trustme
import wassh

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "plugins" / "resolver_dns" / "tests"))
from dnskit import Dnsmasq, DohServer, TruncatingDnsServer  # type: ignore[import-not-found]  # noqa: E402
from run import MachineShare  # noqa: E402  (bench/run.py)

BUILD = ROOT / "build" / "bench"
VENV = Path(sys.executable).parent
FORMAT = "n%d.bench.test"


def build() -> Path:
    BUILD.mkdir(parents=True, exist_ok=True)
    out = BUILD / "lookup_client.wasm"
    src = ROOT / "bench" / "guests" / "lookup_client.c"
    subprocess.run([str(VENV / "wassh"), "cc", "-O2", str(src), "-o", str(out)], check=True)
    return out


class TableResolver:
    """Answers every bench name at once: the core's share of a plugin lookup."""

    name = "table"

    @wassh.hookimpl
    def wassh_transport_offer(
        self, config: wassh.TransportConfig, settings: Mapping[str, object]
    ) -> wassh.Offer:
        return wassh.Offer(name="table", kinds=frozenset({wassh.NAMES}), rank=100)

    @wassh.hookimpl
    async def wassh_getaddrinfo(
        self, host: str, family: int, config: wassh.TransportConfig
    ) -> wassh.NameAnswer:
        await trio.lowlevel.checkpoint()
        return wassh.NameAnswer([(socket.AF_INET, socket.inet_aton("127.0.0.1"))])


def guest_run(
    guest: Path,
    count: int,
    *,
    config: wassh.TransportConfig | None = None,
    block: list[str] | None = None,
    plugins: Sequence[object] = (),
) -> dict[str, list[float]]:
    out, err = wassh.Capture(), wassh.Capture()
    code = wassh.run_sync(
        guest,
        ["lookup_client", str(count), FORMAT],
        stdout=out,
        stderr=err,
        config=config,
        block=block or [],
        plugins=plugins,
    )
    if code != 0:
        raise SystemExit(f"the guest failed ({code}): {out.text()}{err.text()}")
    phases: dict[str, list[float]] = {"first": [], "again": []}
    for line in out.text().splitlines():
        phase, micros = line.split()
        phases[phase].append(float(micros))
    return phases


def native_run(
    count: int,
    ask: Callable[[dns.message.Message, Any], object],
    session: Callable[[], Any] = contextlib.nullcontext,
) -> list[float]:
    """Each lookup's AAAA and A queries, sharing one ``session()`` (a DoH client)."""
    times = []
    for i in range(count):
        start = time.perf_counter()
        with session() as client:
            for rdtype in (dns.rdatatype.AAAA, dns.rdatatype.A):
                ask(dns.message.make_query(FORMAT % i, rdtype), client)
        times.append((time.perf_counter() - start) * 1e6)
    return times


def stats(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return f"{statistics.median(ordered):,.0f} / {p90:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--count", type=int, default=100, help="distinct names (default 100)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    ns = parser.parse_args()
    if not 1 <= ns.count <= 250:
        parser.error("--count must be 1 to 250")
    guest = build()
    hosts = {FORMAT % i: [f"127.0.1.{i + 1}"] for i in range(ns.count)}
    results: dict[str, dict[str, list[float]]] = {}
    share = MachineShare()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        ca = trustme.CA()
        ca_file = Path(tmp) / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        dnsmasq = stack.enter_context(Dnsmasq(Path(tmp) / "dnsmasq", hosts))
        front = stack.enter_context(TruncatingDnsServer(dnsmasq.address))
        doh = stack.enter_context(DohServer(Path(tmp) / "dnsdist", dnsmasq.address, ca))
        block = ["websocket", "proxy"]

        def through(settings: dict[str, object] | None) -> dict[str, list[float]]:
            config = wassh.TransportConfig(settings={"dns": settings} if settings else {})
            return guest_run(guest, ns.count, config=config, block=block)

        results["fake DNS"] = guest_run(guest, ns.count, block=[*block, "dns"])
        results["table plugin"] = guest_run(guest, ns.count, plugins=[TableResolver()])
        results["dns:// UDP"] = through({"resolver": dnsmasq.url})
        results["dns:// TCP"] = through({"resolver": front.url})
        results["DoH HTTP/2"] = through({"resolver": doh.url, "ca": str(ca_file), "http": "2"})
        results["DoH HTTP/1.1"] = through({"resolver": doh.url, "ca": str(ca_file), "http": "1.1"})
        host, port = dnsmasq.address
        fhost, fport = front.address
        results["dns:// UDP, dnspython alone"] = {
            "first": native_run(ns.count, lambda q, _: dns.query.udp(q, host, 2, port=port))
        }
        results["dns:// TCP, dnspython alone"] = {
            "first": native_run(ns.count, lambda q, _: dns.query.tcp(q, fhost, 2, port=fport))
        }
        # As the plugin: one TLS context for the run, one HTTP client per lookup.
        tls = ssl.create_default_context(cafile=str(ca_file))
        for label, http2 in (("HTTP/2", True), ("HTTP/1.1", False)):

            def client(h2: bool = http2) -> httpx2.Client:
                return httpx2.Client(verify=tls, http1=not h2, http2=h2)

            results[f"DoH {label}, dnspython alone"] = {
                "first": native_run(
                    ns.count,
                    lambda q, session: dns.query.https(q, doh.url, 2, session=session),
                    client,
                )
            }
    machine = share.report()
    if ns.json:
        print(json.dumps({"count": ns.count, "machine": machine, "results": results}))
        return
    print(f"getaddrinfo of {ns.count} names, microseconds: median / 90th percentile")
    print()
    print("| path | first lookup | again (cached) |")
    print("|---|---|---|")
    for name, phases in results.items():
        print(f"| {name} | {stats(phases['first'])} | {stats(phases.get('again', []))} |")
    print()
    print(machine)


if __name__ == "__main__":
    main()
