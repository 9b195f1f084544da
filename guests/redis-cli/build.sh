#!/usr/bin/env bash
# Build (or reuse) redis-cli.wasm from Debian's redis source; prints its path.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/python guests/debbuild.py redis "$@"
