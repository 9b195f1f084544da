#!/usr/bin/env bash
# Build (or reuse) curl.wasm from Debian's curl source; prints its path.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/python guests/debbuild.py curl "$@"
