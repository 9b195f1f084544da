#!/usr/bin/env bash
# Builds the wheels and sdists of all six distributions into build/dist, installs the
# wheels into a fresh virtual environment outside the workspace, and runs the test
# suite (all but the SSH showcase) against those installed packages: what a user
# gets from `pip install`, with the compiled fast path, not the editable checkout.
# Extra arguments go to pytest. WASSH_WHEELS_KEEP=1 keeps the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# The Debian packages the tests drive, and uv, as scripts/setup.sh has them.
bash scripts/system-deps.sh
export PATH="$HOME/.local/bin:$PATH"
if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet --user uv 2>/dev/null || python3 -m pip install --quiet uv
fi
# Nothing from the checkout may leak into the installed environment's imports.
unset PYTHONPATH VIRTUAL_ENV

WORK=$(mktemp -d "${TMPDIR:-/tmp}/wassh-wheels.XXXXXX")
VENV=$WORK/venv
cleanup() {
  if [ "${WASSH_WHEELS_KEEP:-}" = 1 ]; then
    echo "wheels.sh: kept $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

# The interpreter uv would choose for the workspace, so the wheel's extension
# matches the environment it is tested in.
uv venv --quiet --python "$(uv python find)" "$VENV"
PY=$VENV/bin/python

echo "--- building wheels and sdists into build/dist"
rm -rf build/dist
# The wheels are built from the sdists, so a file missing from an sdist fails here.
uv build --quiet --all-packages --python "$PY" -o build/dist
for dist in wassh wassh_transport_tcp wassh_transport_listen wassh_transport_websocket \
  wassh_transport_proxy wassh_resolver_dns; do
  ls build/dist/"$dist"-*.tar.gz build/dist/"$dist"-*.whl >/dev/null
done

echo "--- installing them into $VENV"
# Third-party versions as locked for the workspace; the test-only tools are the
# root project's dev group.
uv export --quiet --frozen --all-packages --group dev --no-emit-workspace --no-hashes \
  --no-header -o "$WORK/constraints.txt"
"$PY" - "$ROOT/pyproject.toml" >"$WORK/dev.txt" <<'EOF'
import sys
import tomllib

with open(sys.argv[1], "rb") as f:
    print("\n".join(tomllib.load(f)["dependency-groups"]["dev"]))
EOF
core_wheel=$(ls build/dist/wassh-*.whl)
uv pip install --quiet --python "$PY" --compile-bytecode -c "$WORK/constraints.txt" \
  -r "$WORK/dev.txt" "wassh[cc] @ file://$ROOT/$core_wheel" \
  build/dist/wassh_transport_*.whl build/dist/wassh_resolver_*.whl

echo "--- checking the tests will import the installed packages"
"$PY" - "$VENV" <<'EOF'
import importlib
import sys
import sysconfig
from pathlib import Path

venv = Path(sys.argv[1]).resolve()
site = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
for name in (
    "wassh",
    "wassh._fastpath",  # the wheel carries the compiled fast path
    "wassh_transport_tcp",
    "wassh_transport_listen",
    "wassh_transport_websocket",
    "wassh_transport_proxy",
    "wassh_resolver_dns",
):
    module = importlib.import_module(name)
    where = Path(module.__file__ or "").resolve()
    if not any(where.is_relative_to(s) for s in site):
        sys.exit(f"wheels.sh: {name} imports from {where}, not from {venv}'s site-packages")
    print(f"{name}: {where}")

from wassh import fastpath

if not fastpath.built():
    sys.exit("wheels.sh: the installed wassh runs without its compiled fast path")
EOF

echo "--- the test suite against the installed packages"
# From the checkout (its tests read sources there), but pytest's rootdir inserts
# nothing on sys.path (--import-mode=importlib), so wassh still comes from $VENV.
"$VENV/bin/pytest" -q -p no:cacheprovider -m "not ssh" tests plugins "$@"
