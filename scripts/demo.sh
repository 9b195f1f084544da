#!/usr/bin/env bash
# The main job on a fresh machine: set up, compile a C client to WebAssembly with
# `wassh cc`, and run it with `wassh run` against a local server, by name.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p build
echo "== compiling examples/hello_client.c for wasm32-wasi"
.venv/bin/wassh cc -O2 examples/hello_client.c -o build/hello_client.wasm
coproc SERVER { exec .venv/bin/python examples/demo_server.py --once; }
server_pid=$SERVER_PID
trap 'kill "$server_pid" 2>/dev/null || true' EXIT
read -r PORT <&"${SERVER[0]}"
echo "== wassh run build/hello_client.wasm -- demo.server $PORT"
echo "   (demo.server is mapped with --add-host; the guest resolves it through fake DNS)"
.venv/bin/wassh run --add-host demo.server=127.0.0.1 build/hello_client.wasm -- demo.server "$PORT"
