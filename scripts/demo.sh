#!/usr/bin/env bash
# The main job on a fresh machine: set up, build (or reuse) OpenSSH's ssh as a
# WebAssembly guest from Debian's source, start a local sshd and a `wassh relay`,
# and show ssh.wasm running a remote command through the relay.
# `--client` runs the small C client demo instead (no OpenSSH build needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "${1:-}" = "--client" ]; then
  mkdir -p build
  echo "== compiling examples/hello_client.c for wasm32-wasi"
  .venv/bin/wassh cc -O2 examples/hello_client.c -o build/hello_client.wasm
  coproc SERVER { exec .venv/bin/python examples/demo_server.py --once; }
  server_pid=$SERVER_PID
  trap 'kill "$server_pid" 2>/dev/null || true' EXIT
  read -r PORT <&"${SERVER[0]}"
  echo "== wassh run build/hello_client.wasm -- demo.server $PORT"
  echo "   (demo.server is mapped with --add-host; the guest resolves it through fake DNS)"
  exec .venv/bin/wassh run --add-host demo.server=127.0.0.1 build/hello_client.wasm -- \
    demo.server "$PORT"
fi
exec bash guests/openssh/demo.sh "$@"
