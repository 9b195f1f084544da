#!/usr/bin/env bash
# Sets up (if needed) and runs the whole test suite, with the compiled fast path and without.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.local/bin:$PATH"
.venv/bin/python -m pytest "$@"
# Once more on the pure-Python host calls: the compiled fast path and the Python
# host must answer every test alike (docs/fastpath.md).
echo "--- again with WASSH_PURE_PYTHON=1"
WASSH_PURE_PYTHON=1 .venv/bin/python -m pytest "$@"
