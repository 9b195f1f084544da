"""The command line, run as a user would: ``wassh transports`` and ``wassh run`` with --resolver."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import wasmtime
from dnskit import Dnsmasq

WASSH = str(Path(sys.executable).parent / "wassh")
# The smallest WASI command, which does nothing: the plugins make their offers before it runs.
EMPTY_MODULE = wasmtime.wat2wasm('(module (memory (export "memory") 1) (func (export "_start")))')


def wassh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([WASSH, *args], capture_output=True, text=True, timeout=60)


def dns_line(output: str) -> list[str]:
    return next(line.split() for line in output.splitlines() if line.startswith("dns "))


def test_transports_lists_the_resolver_unavailable_until_configured(dnsmasq: Dnsmasq) -> None:
    r = wassh("transports")
    assert r.returncode == 0, r.stderr
    line = " ".join(dns_line(r.stdout))
    assert line == "dns rank 100 names unavailable: no --resolver given"
    r = wassh("transports", "--resolver", dnsmasq.url)
    assert r.returncode == 0, r.stderr
    assert " ".join(dns_line(r.stdout)) == "dns rank 100 names available"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--resolver", "https://127.0.0.1:1/dns-query", "--resolver-ca", "MISSING"],
            "--resolver-ca",
        ),
        (["--resolver", "dns://127.0.0.1", "--resolver-timeout", "0"], "--resolver-timeout"),
        (["--resolver", "dns://resolver.example"], "dns:// takes an IP address"),
        (["--resolver", "https://u:p@127.0.0.1/"], "no user name or password"),
        (["--resolver", "dns://127.0.0.1", "--resolver-ca", "MISSING"], "applies to https://"),
        (["--resolver-search", "corp.test"], "given without --resolver URL"),
        (["--resolver", "dns://127.0.0.1", "--resolver-http", "3"], "invalid choice: '3'"),
    ],
)
def test_run_with_a_bad_resolver_setting_stops_with_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    module = tmp_path / "empty.wasm"
    module.write_bytes(EMPTY_MODULE)
    args = [str(tmp_path / "missing-ca.pem") if a == "MISSING" else a for a in args]
    r = wassh("run", *args, str(module))
    assert r.returncode == 2, r
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("wassh: ") and message in lines[0], lines
    assert r.stdout == ""


def test_run_with_a_missing_ca_file_names_it(tmp_path: Path) -> None:
    module = tmp_path / "empty.wasm"
    module.write_bytes(EMPTY_MODULE)
    missing = tmp_path / "missing-ca.pem"
    r = wassh(
        "run",
        "--resolver",
        "https://127.0.0.1:1/dns-query",
        "--resolver-ca",
        str(missing),
        str(module),
    )
    assert r.returncode == 2
    assert r.stderr == (
        f"wassh: plugin 'dns' cannot make its offer: ValueError: --resolver-ca '{missing}': "
        "No such file or directory (block it with --block-plugin dns to run without it)\n"
    )


def test_dnspython_is_imported_only_for_a_configured_resolver() -> None:
    """Its import costs more than the rest of start-up: a run without --resolver skips it."""
    probe = (
        "import sys, wassh\n"
        "from wassh_resolver_dns import DnsResolver\n"
        "plugin = DnsResolver()\n"
        "plugin.wassh_transport_offer(wassh.TransportConfig(), {})\n"
        "print(sorted(m for m in sys.modules if m == 'dns' or m.startswith('dns.')))\n"
        "plugin.wassh_transport_offer(wassh.TransportConfig(), {'resolver': 'dns://127.0.0.1'})\n"
        "print('dns.asyncresolver' in sys.modules)\n"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout) == (0, "[]\nTrue\n"), r.stderr
