#!/usr/bin/env bash
# Build (or reuse) tcpconnect.wasm, tcplisten.wasm and tcpbug.wasm from Debian's
# tcputils source; prints their paths.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/python guests/debbuild.py tcputils "$@"
