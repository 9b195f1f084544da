#!/usr/bin/env bash
# Build (or reuse) ssh.wasm from Debian's openssh source; prints its path.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/python guests/debbuild.py openssh "$@"
