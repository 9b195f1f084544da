"""The wassh showcase in one command: OpenSSH's ssh, compiled to WebAssembly from
Debian's source, logs in to a local SSH server through a WebSocket relay.

    python guests/openssh/demo.py            # run a remote command
    python guests/openssh/demo.py --shell    # an interactive shell instead

Steps: build (or reuse) ssh.wasm with guests/debbuild.py; start Debian's sshd
on a free loopback port with fresh ed25519 keys; start ``wassh relay`` (corp-relay-v4)
when the wassh-transport-websocket plugin is installed; run ssh.wasm under
``wassh run`` through the relay (directly over TCP when there is no relay).
Everything lives in a temporary directory and is stopped at the end.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import debbuild  # noqa: E402

WASSH = [sys.executable, "-m", "wassh"]


def say(msg: str) -> None:
    print(f"\033[1m==> {msg}\033[0m" if sys.stdout.isatty() else f"==> {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} is not listening on port {port}")


def keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "wassh-demo", "-f", str(path)],
        check=True,
    )


def start_sshd(work: Path, user: str) -> tuple[subprocess.Popen[bytes], int, str]:
    sshd = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
    port = free_port()
    if sshd and shutil.which("ssh-keygen"):
        keygen(work / "host_key")
        (work / "authorized_keys").write_text((work / "home" / "id_ed25519.pub").read_text())
        cfg = work / "sshd_config"
        cfg.write_text(
            f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {work}/host_key\n"
            f"PidFile {work}/sshd.pid\nAuthorizedKeysFile {work}/authorized_keys\n"
            "UsePAM no\nStrictModes no\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPrintMotd no\n"
        )
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        log = open(work / "sshd.log", "wb")  # noqa: SIM115 - closed with the demo
        proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(cfg)], stderr=log)
        wait_port(port, proc, "sshd")
        return proc, port, "Debian's OpenSSH sshd"
    raise SystemExit(
        "no SSH server: install Debian's openssh-server and openssh-client "
        "(scripts/system-deps.sh does)"
    )


def start_relay(ssh_port: int) -> tuple[subprocess.Popen[str] | None, int]:
    cmd = [*WASSH, "relay", "--listen", "127.0.0.1:0", "--allow", f"*:{ssh_port}"]
    try:
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    except OSError:
        return None, 0
    assert proc.stderr is not None
    line = proc.stderr.readline()
    try:
        record = json.loads(line)
    except ValueError:
        proc.kill()
        return None, 0
    return proc, int(record["port"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shell", action="store_true", help="open an interactive shell")
    parser.add_argument("--no-relay", action="store_true", help="connect over plain TCP")
    parser.add_argument(
        "command",
        nargs="*",
        default=['echo "hello from $(hostname), $(id -un) says: it works"; uname -sm'],
    )
    ns = parser.parse_args(argv)

    say("ssh.wasm: built from Debian's openssh source (the first time takes a few minutes)")
    t0 = time.monotonic()
    wasm = debbuild.build("openssh")["ssh"]
    print(f"    {wasm} ({wasm.stat().st_size // 1024} KiB, {time.monotonic() - t0:.1f} s)")

    user = getpass.getuser()
    procs: list[subprocess.Popen[bytes] | subprocess.Popen[str]] = []
    with tempfile.TemporaryDirectory(prefix="wassh-demo-") as tmp:
        work = Path(tmp)
        home = work / "home"
        home.mkdir()
        keygen(home / "id_ed25519")
        try:
            server, port, kind = start_sshd(work, user)
            procs.append(server)
            say(f"SSH server: {kind} on 127.0.0.1:{port}")
            relay_opts: list[str] = []
            if not ns.no_relay:
                relay, relay_port = start_relay(port)
                if relay is not None:
                    procs.append(relay)
                    url = f"ws://127.0.0.1:{relay_port}/"
                    relay_opts = ["--relay", url, "--relay-protocol", "corp-relay-v4"]
                    say(f"relay: wassh relay (corp-relay-v4) at {url}")
                else:
                    say("relay: not available (install wassh-transport-websocket); plain TCP")
            cmd = [
                *WASSH,
                "run",
                "--dir",
                str(home),
                "--env",
                f"HOME={home}",
                "--env",
                f"USER={user}",
                "--env",
                f"TERM={os.environ.get('TERM', 'xterm')}",
                *relay_opts,
                str(wasm),
                "-F",
                "none",
                "-i",
                str(home / "id_ed25519"),
                "-o",
                f"UserKnownHostsFile={home}/known_hosts",
                "-o",
                "StrictHostKeyChecking=accept-new",
                "-o",
                "AddressFamily=inet",  # the server listens on 127.0.0.1 only
                "-p",
                str(port),
                f"{user}@localhost",
            ]
            if not ns.shell:
                cmd.append(" ".join(ns.command))
            say("wassh run ssh.wasm " + " ".join(cmd[cmd.index(str(wasm)) + 1 :]))
            start = time.monotonic()
            code = subprocess.run(cmd, check=False).returncode
            say(f"ssh.wasm exited with {code} after {time.monotonic() - start:.2f} s")
            return code
        finally:
            for p in reversed(procs):
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()


if __name__ == "__main__":
    sys.exit(main())
