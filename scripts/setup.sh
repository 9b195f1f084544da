#!/usr/bin/env bash
# Installs everything wassh needs on a fresh machine into .venv/ (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet --user uv 2>/dev/null || python3 -m pip install --quiet uv
  export PATH="$HOME/.local/bin:$PATH"
fi
# Byte-compiled at install: with PYTHONDONTWRITEBYTECODE set, as on CI machines,
# importing wasmtime's bindings from source would add ~100 ms to every start.
uv sync --all-packages --frozen --quiet --compile-bytecode
.venv/bin/python -m compileall -q core/src plugins/*/src >/dev/null
