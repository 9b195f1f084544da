#!/usr/bin/env bash
# Build (or reuse) dbclient.wasm and dropbearconvert.wasm from Debian's dropbear
# source; prints their paths.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/python guests/debbuild.py dropbear "$@"
