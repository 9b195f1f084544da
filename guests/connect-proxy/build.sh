#!/usr/bin/env bash
# Build (or reuse) connect-proxy.wasm from Debian's connect-proxy source; prints its path.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/python guests/debbuild.py connect-proxy "$@"
