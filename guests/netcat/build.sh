#!/usr/bin/env bash
# Build (or reuse) nc.wasm from Debian's netcat (the classic netcat 1.10) source; prints its path.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/python guests/debbuild.py netcat "$@"
