"""Command-line conventions: --version, logging flags and WASSH_LOG, --env forms,
guest arguments, closed pipes, transports --json, the compiled-module cache and
the line that says no transport serves a socket. Run as a user would: subprocesses
of .venv/bin/wassh."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from importlib.metadata import entry_points, version
from pathlib import Path

import pytest
import wasmtime
from guestbuild import build_guest
from wassh.cache import human

WASSH = str(Path(sys.executable).parent / "wassh")
PIPE_CLOSED = 141

GUEST_C = r"""
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* "sockets stream dgram bound ...": a socket of each kind ("bound": a stream socket
   bound to 127.0.0.1 first), connected to 127.0.0.1:9.
   Otherwise: its arguments, then the WASSH_T_* variables. */
int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "sockets")) {
    for (int i = 2; i < argc; i++) {
      int fd = socket(AF_INET, !strcmp(argv[i], "dgram") ? SOCK_DGRAM : SOCK_STREAM, 0);
      if (fd < 0) {
        printf("%s socket: %s\n", argv[i], strerror(errno));
        continue;
      }
      struct sockaddr_in sa = {0};
      sa.sin_family = AF_INET;
      sa.sin_addr.s_addr = htonl(0x7f000001);
      if (!strcmp(argv[i], "bound") && bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        printf("%s bind: %s\n", argv[i], strerror(errno));
        close(fd);
        continue;
      }
      sa.sin_port = htons(9);
      if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        printf("%s connect: %s\n", argv[i], strerror(errno));
      else
        printf("%s connected\n", argv[i]);
      close(fd);
    }
    return 0;
  }
  for (int i = 1; i < argc; i++) printf("arg %s\n", argv[i]);
  const char *names[] = {"WASSH_T_A", "WASSH_T_B", "WASSH_T_C"};
  for (int i = 0; i < 3; i++) {
    const char *v = getenv(names[i]);
    if (v) printf("env %s=%s\n", names[i], v);
    else printf("env %s unset\n", names[i]);
  }
  return 0;
}
"""

# A plugin distribution that adds the command "demo": it logs, then prints its argv.
DEMO_MODULE = """
import json, logging, sys
from wassh import PluginCommand

def _main(argv):
    logging.getLogger("demo").info("info from demo")
    logging.getLogger("demo").debug("debug from demo")
    sys.stdout.write(json.dumps(argv) + "\\n" + "x" * int(argv[0] if argv else 0))
    return 0

demo = PluginCommand(help="a demonstration command", main=_main)
"""


def wassh(
    *args: str, env: Mapping[str, str] | None = None, stdout: int = subprocess.PIPE
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [WASSH, *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        env=dict(os.environ if env is None else env),
    )


def one_line_error(r: subprocess.CompletedProcess[str]) -> str:
    lines = r.stderr.splitlines()
    assert (r.returncode, len(lines)) == (2, 1), (r.returncode, lines)
    assert lines[0].startswith("wassh: "), lines
    return lines[0]


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("guest") / "conventions.c"
    source.write_text(GUEST_C)
    return build_guest(source, sdk=True)


@pytest.fixture
def demo_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a wassh that has the demo command's distribution installed."""
    (tmp_path / "demo_command.py").write_text(DEMO_MODULE)
    dist = tmp_path / "demo_command-2.5.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-command\nVersion: 2.5\n")
    (dist / "entry_points.txt").write_text("[wassh.commands]\ndemo = demo_command:demo\n")
    return dict(os.environ, PYTHONPATH=str(tmp_path))


@pytest.fixture
def closed_pipe() -> Iterator[int]:
    """A pipe's write end whose read end is already closed: every write fails (EPIPE)."""
    read, write = os.pipe()
    os.close(read)
    yield write
    os.close(write)


# -- --version and --help --------------------------------------------------------------


def test_version_names_the_core_and_every_plugin_distribution(demo_env: dict[str, str]) -> None:
    r = wassh("--version", env=demo_env)
    assert (r.returncode, r.stderr) == (0, "")
    lines = r.stdout.splitlines()
    assert lines[0] == f"wassh {version('wassh')}"
    dists = {
        ep.dist.name: ep.dist.version
        for group in ("wassh", "wassh.commands")
        for ep in entry_points(group=group)
        if ep.dist is not None
    }
    assert "wassh-transport-tcp" in dists and "wassh-transport-websocket" in dists
    dists["demo-command"] = "2.5"
    assert lines[1:] == [f"{name} {dists[name]}" for name in sorted(dists)]


def test_help_lists_every_command(demo_env: dict[str, str]) -> None:
    r = wassh("--help", env=demo_env)
    assert r.returncode == 0
    listed = re.search(r"\{([\w,]+)\}", r.stdout)
    assert listed is not None, r.stdout
    commands = {ep.name for ep in entry_points(group="wassh.commands")}
    assert "relay" in commands
    assert (
        set(listed.group(1).split(",")) == {"run", "cc", "transports", "cache", "demo"} | commands
    )
    assert re.search(r"^\s+demo\s+a demonstration command$", r.stdout, re.M), r.stdout
    assert "WASSH_LOG" in r.stdout


# -- logging -------------------------------------------------------------------------

RANKING = "wassh: wassh.plugins: transport ranking: "


@pytest.mark.parametrize(
    ("args", "log", "shown"),
    [
        (("transports",), None, False),
        (("-v", "transports"), None, True),
        (("transports", "-v"), None, True),
        (("transports",), "info", True),
        (("transports",), "INFO", True),
        (("transports",), "warning", False),
        (("-q", "transports"), "debug", False),  # flags win
        (("transports", "-v"), "error", True),
        (("-v", "transports", "-q"), None, False),  # they add up
    ],
)
def test_verbosity_flags_anywhere_and_wassh_log(
    args: tuple[str, ...], log: str | None, shown: bool
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "WASSH_LOG"}
    if log is not None:
        env["WASSH_LOG"] = log
    r = wassh(*args, env=env)
    assert r.returncode == 0, r.stderr
    assert any(line.startswith(RANKING) for line in r.stderr.splitlines()) is shown, r.stderr


def test_verbosity_before_and_after_run(guest: Path) -> None:
    for args in (("-v", "run", str(guest)), ("run", "-v", str(guest))):
        r = wassh(*args)
        assert r.returncode == 0 and RANKING in r.stderr, (args, r.stderr)
    r = wassh("run", str(guest))
    assert r.returncode == 0 and r.stderr == ""


def test_a_bad_wassh_log_is_one_line(guest: Path) -> None:
    env = dict(os.environ, WASSH_LOG="chatty")
    for args in (("transports",), ("-v", "run", str(guest)), ("cache",)):
        line = one_line_error(wassh(*args, env=env))
        assert "WASSH_LOG" in line and "'chatty'" in line and "debug" in line, line


def test_a_plugin_command_takes_global_flags_before_or_after_its_name(
    demo_env: dict[str, str],
) -> None:
    demo_env.pop("WASSH_LOG", None)
    quiet = wassh("demo", "0", "a", env=demo_env)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, '["0", "a"]\n', "")
    for args in (("-v", "demo", "0", "a"), ("demo", "0", "-v", "a"), ("demo", "0", "a", "-v")):
        r = wassh(*args, env=demo_env)
        assert r.returncode == 0 and r.stdout == '["0", "a"]\n', (args, r.stdout)
        assert r.stderr.splitlines() == ["wassh: demo: info from demo"], (args, r.stderr)
    r = wassh("demo", "-vv", "0", "--", "-v", env=demo_env)
    assert r.stdout == '["0", "--", "-v"]\n'  # after --: the command's own
    assert "wassh: demo: debug from demo" in r.stderr.splitlines()
    r = wassh("demo", "0", "-q", env=dict(demo_env, WASSH_LOG="info"))
    assert (r.stdout, r.stderr) == ('["0"]\n', "")


# -- no transport serves a socket ------------------------------------------------------


def sockets(guest: Path, *args: str, load: str = "listen,tcp") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WASSH_LOG", "WASSH_BLOCK_PLUGINS")}
    env["WASSH_LOAD_PLUGINS"] = load
    return wassh("run", *args, env=env)


def test_no_transport_installed_is_told_once_a_kind(guest: Path) -> None:
    r = sockets(guest, str(guest), "sockets", "stream", "dgram", "stream", "dgram", load="")
    assert r.returncode == 0
    assert (
        r.stdout.splitlines()
        == [
            "stream socket: Protocol not supported",
            "dgram socket: Protocol not supported",
        ]
        * 2
    )
    assert r.stderr.splitlines() == [
        "wassh: no transport serves stream sockets (none installed)",
        "wassh: no transport serves datagram sockets (none installed)",
    ]


def test_blocked_transports_are_named(guest: Path) -> None:
    blocked = ("--block-plugin", "tcp", "--block-plugin", "listen")
    r = sockets(guest, *blocked, str(guest), "sockets", "stream", "stream")
    assert r.stdout == "stream socket: Protocol not supported\n" * 2
    assert (
        r.stderr
        == "wassh: no transport serves stream sockets (none installed; blocked: listen, tcp)\n"
    )


def test_a_failed_connect_is_told_when_only_listening_is_served(guest: Path) -> None:
    r = sockets(guest, "--block-plugin", "tcp", str(guest), "sockets", "stream", "dgram", "stream")
    assert r.stdout.splitlines() == [
        "stream connect: Network unreachable",
        "dgram connected",  # the listen plugin's udp transport
        "stream connect: Network unreachable",
    ]
    assert r.stderr == "wassh: no transport serves stream sockets (none installed; blocked: tcp)\n"


def test_a_bound_socket_connecting_through_its_own_transport_is_not_told(guest: Path) -> None:
    r = sockets(guest, "--block-plugin", "tcp", str(guest), "sockets", "bound")
    assert r.stdout == "bound connect: Connection refused\n"  # carried by the listen plugin
    assert r.stderr == ""


def test_unavailable_transports_say_why(guest: Path) -> None:
    r = sockets(
        guest, "--block-plugin", "tcp", str(guest), "sockets", "stream", load="listen,tcp,proxy"
    )
    assert r.stdout == "stream connect: Network unreachable\n"
    assert r.stderr == (
        "wassh: no transport serves stream sockets (unavailable: proxy (no proxy configured "
        "(--proxy URL)); blocked: tcp)\n"
    )


def test_quiet_keeps_the_guest_output_only(guest: Path) -> None:
    r = sockets(guest, "-q", str(guest), "sockets", "stream", load="")
    assert (r.stdout, r.stderr) == ("stream socket: Protocol not supported\n", "")
    r = sockets(guest, str(guest), "sockets", "stream", "dgram")
    assert r.stdout.splitlines()[1] == "dgram connected" and r.stderr == ""


# -- --env and the guest's arguments -----------------------------------------------------


def guest_view(r: subprocess.CompletedProcess[str]) -> tuple[list[str], dict[str, str | None]]:
    assert r.returncode == 0, r.stderr
    args = [line[4:] for line in r.stdout.splitlines() if line.startswith("arg ")]
    env: dict[str, str | None] = {}
    for line in r.stdout.splitlines():
        if line.startswith("env "):
            name, sep, value = line[4:].partition("=")
            env[name.removesuffix(" unset")] = value if sep else None
    return args, env


def test_env_forms(guest: Path) -> None:
    host = {k: v for k, v in os.environ.items() if not k.startswith("WASSH_T_")}
    host["WASSH_T_A"] = "from the host"
    r = wassh(
        "run",
        "--env",
        "WASSH_T_A",
        "--env",
        "WASSH_T_B=",
        "--env",
        "WASSH_T_C",
        str(guest),
        env=host,
    )
    assert guest_view(r) == ([], {"WASSH_T_A": "from the host", "WASSH_T_B": "", "WASSH_T_C": None})
    r = wassh(
        "run",
        "--env",
        "WASSH_T_A=x=y",
        "--env",
        "WASSH_T_C=1",
        "--env",
        "WASSH_T_C",
        str(guest),
        env=host,
    )
    assert guest_view(r)[1] == {"WASSH_T_A": "x=y", "WASSH_T_B": None, "WASSH_T_C": None}
    for bad in ("=x", "="):
        line = one_line_error(wassh("run", "--env", bad, str(guest)))
        assert line.startswith(f"wassh: bad --env {bad!r}"), line


@pytest.mark.parametrize(
    ("after", "seen"),
    [
        (("--", "--flag", "x"), ["--flag", "x"]),
        (("--", "a", "--", "--b"), ["a", "--", "--b"]),
        (
            ("a", "--env", "WASSH_T_A=1", "-v", "--help"),
            ["a", "--env", "WASSH_T_A=1", "-v", "--help"],
        ),
        (("--", "--"), ["--"]),
        (("--", "--", "x"), ["--", "x"]),
        (("x", "--"), ["x", "--"]),
    ],
)
def test_arguments_after_the_program_are_the_guests(
    guest: Path, after: tuple[str, ...], seen: list[str]
) -> None:
    r = wassh("run", str(guest), *after)
    assert guest_view(r) == (seen, {"WASSH_T_A": None, "WASSH_T_B": None, "WASSH_T_C": None})
    assert r.stderr == ""


def test_options_before_the_program_are_wasshs(guest: Path) -> None:
    host = {k: v for k, v in os.environ.items() if not k.startswith("WASSH_T_")}
    # The launcher wassh cc writes: wassh run --dir . -- "$0" -- "$@"
    for args in (
        ("--dir", ".", "--", str(guest), "--", "--x"),
        ("--env=WASSH_T_A=1", "--no-cache", str(guest), "--x"),
        ("--env", "WASSH_T_A=1", "--max-mem", "64M", "--", str(guest), "--x"),
    ):
        view = guest_view(wassh("run", *args, env=host))
        assert view[0] == ["--x"], (args, view)
        assert view[1]["WASSH_T_A"] == ("1" if "--dir" not in args else None), (args, view)


def test_a_guests_block_plugin_blocks_nothing(guest: Path) -> None:
    r = wassh("run", "--proxy", "http://127.0.0.1:9", str(guest), "--block-plugin", "proxy")
    assert guest_view(r)[0] == ["--block-plugin", "proxy"]


def test_a_memory_cap_below_the_guests_need_is_one_line(guest: Path) -> None:
    line = one_line_error(wassh("run", "--max-memory", "1M", str(guest)))
    assert line.startswith(f"wassh: {guest} cannot start: ") and "--max-memory" in line, line


# -- closed pipes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("transports",),
        ("transports", "--json"),
        ("--version",),
        ("--help",),
        ("run", "--help"),
        ("cache",),
        ("demo", "100000"),
    ],
)
def test_a_closed_stdout_ends_quietly_with_141(
    args: tuple[str, ...], closed_pipe: int, demo_env: dict[str, str]
) -> None:
    r = wassh(*args, env=demo_env, stdout=closed_pipe)
    assert (r.returncode, r.stderr) == (PIPE_CLOSED, "")


def test_transports_into_head() -> None:
    whole = wassh("transports")
    r = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {WASSH} transports | head -1; echo status $?"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.stderr == ""
    first, status = r.stdout.splitlines()
    assert first == whole.stdout.splitlines()[0]
    # The whole listing fits in the pipe: wassh usually ends before head closes it.
    assert status in ("status 0", f"status {PIPE_CLOSED}")


# -- transports --json ---------------------------------------------------------------------

ROW_KEYS = {"name", "plugin", "rank", "kinds", "available", "reason"}
POLICY_KEYS = {"connect_allow", "connect_deny", "listen_allow"}


def test_transports_json_keys_are_stable_and_documented() -> None:
    r = wassh(
        "transports",
        "--json",
        "--connect-allow",
        "127.0.0.1:80",
        "--connect-deny",
        "[::1]",
        "--block-plugin",
        "proxy",
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert set(doc) == {"format", "transports", "policy"} and doc["format"] == 1
    assert all(set(row) == ROW_KEYS for row in doc["transports"])
    assert doc["policy"] == {
        "connect_allow": ["127.0.0.1:80"],
        "connect_deny": ["[::1]"],
        "listen_allow": [],
    }
    names = [row["name"] for row in doc["transports"]]
    assert "tcp" in names and "proxy" not in names
    ranks = [row["rank"] for row in doc["transports"]]
    assert ranks == sorted(ranks, reverse=True)
    tcp = next(row for row in doc["transports"] if row["name"] == "tcp")
    assert (tcp["plugin"], tcp["kinds"], tcp["available"], tcp["reason"]) == (
        "tcp",
        ["stream"],
        True,
        "",
    )
    text = " ".join(wassh("transports", "--help").stdout.split())
    for key in ROW_KEYS | POLICY_KEYS | {"format"}:
        assert f'"{key}"' in text, key


# -- the compiled-module cache ---------------------------------------------------------------


def module(tmp_path: Path, number: int) -> Path:
    """A small WASI command of its own (each number compiles to a different entry)."""
    path = tmp_path / f"m{number}.wasm"
    funcs = "".join(f"(func (result i32) i32.const {i})" for i in range(number + 1))
    wat = f'(module (memory (export "memory") 1) (func (export "_start")) {funcs})'
    path.write_bytes(wasmtime.wat2wasm(wat))
    return path


def cache_env(root: Path, bound: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WASSH_LOG", "WASSH_CACHE_MAX")}
    env["XDG_CACHE_HOME"] = str(root)
    if bound is not None:
        env["WASSH_CACHE_MAX"] = bound
    return env


def entries(root: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in (root / "wassh" / "modules").glob("*.cwasm")}


def run_module(root: Path, wasm: Path, bound: str | None = None) -> set[str]:
    """Run ``wasm`` with the cache under ``root``; the entries that run added."""
    before = set(entries(root))
    r = wassh("run", str(wasm), env=cache_env(root, bound))
    assert (r.returncode, r.stderr) == (0, "")
    return set(entries(root)) - before


def test_cache_info_and_clear(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    where = root / "wassh" / "modules"
    r = wassh("cache", env=cache_env(root))
    assert r.returncode == 0
    assert r.stdout.splitlines() == [
        f"directory: {where}",
        "entries:   0",
        "size:      0 bytes (at most 512.0 MiB: WASSH_CACHE_MAX)",
    ]
    (added_1,) = run_module(root, module(tmp_path, 1))
    (added_2,) = run_module(root, module(tmp_path, 2))
    assert added_1 != added_2
    assert run_module(root, module(tmp_path, 1)) == set()  # a hit: nothing new
    total = human(sum(entries(root).values()))
    r = wassh("cache", "info", env=cache_env(root, "2G"))
    assert r.stdout.splitlines()[1:] == [
        "entries:   2",
        f"size:      {total} (at most 2.0 GiB: WASSH_CACHE_MAX)",
    ]
    in_flight = where / "another-writer.tmp"  # a concurrent compile's file stays
    in_flight.write_bytes(b"partial")
    r = wassh("cache", "clear", env=cache_env(root))
    assert (r.returncode, r.stdout) == (0, f"removed 2 entries ({total}) from {where}\n")
    assert entries(root) == {} and in_flight.exists()
    assert wassh("cache", env=cache_env(root)).stdout.splitlines()[1] == "entries:   0"


def test_eviction_is_least_recently_used(tmp_path: Path) -> None:
    m1, m2, m3 = (module(tmp_path, n) for n in (1, 2, 3))
    sizes: dict[Path, int] = {}
    for wasm in (m1, m2, m3):  # each one's compiled size, in a cache of its own
        root = tmp_path / f"size-of-{wasm.stem}"
        (name,) = run_module(root, wasm)
        sizes[wasm] = entries(root)[name]
    root = tmp_path / "cache"
    (first,) = run_module(root, m1)
    (second,) = run_module(root, m2)
    assert run_module(root, m1) == set()  # a hit: the first is the most recently used now
    (third,) = run_module(root, m3, bound=str(sizes[m1] + sizes[m3]))
    assert set(entries(root)) == {first, third}
    # Least recently used first, the newest too when the bound is below it.
    assert run_module(root, m2, bound=str(sizes[m2] + sizes[m3])) == {second}
    assert set(entries(root)) == {second, third}
    assert run_module(root, m1, bound=str(sizes[m1] - 1)) == set()
    assert entries(root) == {}


def test_a_tiny_bound_keeps_nothing_and_runs(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    assert run_module(root, module(tmp_path, 1), bound="0") == set()
    assert not (root / "wassh" / "modules").exists()  # 0: nothing written at all
    assert run_module(root, module(tmp_path, 1), bound="1K") == set()
    assert len(run_module(root, module(tmp_path, 1), bound="1M")) == 1
    assert run_module(root, module(tmp_path, 2), bound="1") == set()
    assert entries(root) == {}  # the older entry is over the bound too


def test_a_bad_cache_bound_is_one_line(tmp_path: Path) -> None:
    wasm = str(module(tmp_path, 1))
    for bad in ("12X", "-1", "1.5G", "M"):
        env = cache_env(tmp_path, bad)
        for args in (("run", wasm), ("cache",), ("cache", "clear")):
            line = one_line_error(wassh(*args, env=env))
            assert line.startswith(f"wassh: WASSH_CACHE_MAX: bad size {bad!r}"), line
    r = wassh("run", "--no-cache", wasm, env=cache_env(tmp_path, "12X"))
    assert (r.returncode, r.stderr) == (0, "")
    assert one_line_error(wassh("cache", "bogus")).startswith("wassh: argument action")


def test_concurrent_compiles_and_evictions(tmp_path: Path) -> None:
    """Processes compiling, writing and evicting at once all run, and the bound holds."""
    root = tmp_path / "cache"
    (one,) = run_module(root, module(tmp_path, 1))
    bound = entries(root)[one] * 3
    env = cache_env(root, str(bound))
    modules = [module(tmp_path, n) for n in range(2, 8)]
    procs = [
        subprocess.Popen([WASSH, "run", str(m)], stderr=subprocess.PIPE, text=True, env=env)
        for m in modules * 2
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert (proc.returncode, err) == (0, "")
    kept = entries(root)
    # Every write came before the last process's eviction, which kept the bound.
    assert kept and sum(kept.values()) <= bound, kept
    assert not list((root / "wassh" / "modules").glob("*.tmp"))
