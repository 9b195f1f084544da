#!/usr/bin/env bash
# Build (or reuse) wget.wasm from Debian's wget source; prints its path.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/python guests/debbuild.py wget "$@"
